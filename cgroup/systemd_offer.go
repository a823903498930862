package cgroup

import (
	"os"
	"path/filepath"
	"strings"
)

// Offer returns the manager's cgroup and the controllers it can give its
// units ("" and nil when the manager does not say), as doctor reports them.
// The system manager owns the root, which it reports as "".
func (d *Systemd) Offer() (cgroup string, controllers []string) {
	cg, ctl := d.offered()
	if cg == "" && d.ep.manager == "system" {
		if b, err := os.ReadFile(filepath.Join(d.host.Cgroup2Mount, "cgroup.controllers")); err == nil {
			return "/", strings.Fields(string(b))
		}
	}
	return cg, ctl
}
