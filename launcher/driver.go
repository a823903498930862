package launcher

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/fallback"
)

// DriverEnv names the driver when no --driver flag is given.
const DriverEnv = "CGDEV_DRIVER"

// drivers are the constructors by name, in the order auto considers them.
var drivers = []struct {
	name string
	open func(h *cgroup.Host) (cgroup.Driver, error)
}{
	{"direct", func(h *cgroup.Host) (cgroup.Driver, error) { return cgroup.NewDirect(h) }},
	{"systemd", func(h *cgroup.Host) (cgroup.Driver, error) { return cgroup.NewSystemd(h) }},
	{"fallback", func(h *cgroup.Host) (cgroup.Driver, error) { return fallback.New(h) }},
}

// DriverNames lists the accepted --driver values.
func DriverNames() []string {
	names := []string{"auto"}
	for _, d := range drivers {
		names = append(names, d.name)
	}
	return names
}

// OpenDriver returns the driver called name, or for "auto" (or "") the one
// AutoDriver picks. The name comes from --driver, else $CGDEV_DRIVER, else the
// config's driver: key, else auto: the caller resolves that order.
func OpenDriver(name string, h *cgroup.Host) (cgroup.Driver, error) {
	if name == "" || name == "auto" {
		name, _ = AutoDriver(h)
	}
	for _, d := range drivers {
		if d.name == name {
			return d.open(h)
		}
	}
	return nil, fmt.Errorf("unknown driver %q (choose one of %s)", name, strings.Join(DriverNames(), ", "))
}

// DriverName resolves the driver name from the flag, the environment and the
// config file, in that order of precedence.
func DriverName(flag, config string) string {
	for _, n := range []string{flag, os.Getenv(DriverEnv), config} {
		if n != "" {
			return n
		}
	}
	return "auto"
}

// AutoDriver says which driver "auto" picks on this host, and why, in words.
func AutoDriver(h *cgroup.Host) (name, why string) {
	if d := h.Delegation; d != nil && d.Cgroup != "" && h.BaseWritable {
		return "direct", fmt.Sprintf("cgdev runs inside %s, which systemd delegated (%s): cgdev creates its groups in it itself, under %s, without a round trip to the manager", d.Cgroup, d.How, h.Base)
	}
	sdOK, manager := cgroup.SystemdReachable(h)
	if sdOK && h.Cgroup2Mount != "" {
		if owned, whose := cgroup.SystemdOwns(h); owned {
			return "systemd", fmt.Sprintf("%s, and %s answers: cgdev asks it for transient scopes rather than writing into its tree", whose, manager)
		}
		if !h.BaseWritable {
			return "systemd", fmt.Sprintf("this user may not create cgroups under %s%s, but %s answers and creates scopes for it", h.Cgroup2Mount, filepath.Dir(h.Base), manager)
		}
	}
	if h.Cgroup2Mount != "" && h.BaseWritable {
		why := fmt.Sprintf("cgroup2 is mounted at %s and cgdev may create cgroups under %s", h.Cgroup2Mount, h.Base)
		if sdOK {
			why += fmt.Sprintf(", outside any tree systemd manages; %s answers too, and --driver systemd uses it", manager)
		}
		return "direct", why
	}
	const untracked = "services run in sessions of their own, tracked by their CGDEV_* environment markers through /proc; resource limits cannot be enforced"
	if h.Cgroup2Mount == "" {
		return "fallback", "this machine has no cgroup2 hierarchy mounted and no systemd manager to ask: " + untracked
	}
	if h.ReadOnly {
		return "fallback", fmt.Sprintf("%s is mounted read-only (a container's default) and no systemd manager answers: %s", h.Cgroup2Mount, untracked)
	}
	return "fallback", fmt.Sprintf("this user may not create cgroups under %s%s and no systemd manager offers them: %s", h.Cgroup2Mount, h.Base, untracked)
}

// DriverForProject opens the driver for project's commands. A name other than
// "auto" is obeyed. For "auto", the kernel and the managers are asked first:
// the first driver (in the order direct, systemd, fallback) that holds live
// groups of project is the one that started them, so `stop` and `status` find
// scopes after the state files were lost, whatever auto would pick today.
// Only when no driver holds any does AutoDriver decide.
func DriverForProject(name, project string, h *cgroup.Host) (cgroup.Driver, error) {
	if name != "" && name != "auto" {
		return OpenDriver(name, h)
	}
	for _, d := range drivers {
		drv, err := d.open(h)
		if err != nil {
			continue // not available on this machine
		}
		if groups, err := drv.Groups(project); err == nil && len(groups) > 0 {
			return drv, nil
		}
		drv.Close()
	}
	return OpenDriver("auto", h)
}
