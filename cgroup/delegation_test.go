package cgroup_test

import (
	"testing"

	"github.com/cgdev/cgdev/cgroup"
)

// BenchmarkDelegationLookup is what every cgdev command pays on a systemd
// host whose manager marks no delegation with an xattr (user managers before
// systemd 253): a connection to the manager and the question which unit
// cgdev runs in. Here the private user manager of with-manager.sh answers
// that this process is in none of its units.
func BenchmarkDelegationLookup(b *testing.B) {
	h, err := cgroup.Detect()
	if err != nil {
		b.Fatal(err)
	}
	if !h.Systemd.UserBus {
		b.Skip(noManager)
	}
	for b.Loop() {
		if d := h.AskDelegation("/app.slice/terminal.scope"); d.Cgroup != "" {
			b.Fatalf("delegation %+v outside any unit of the manager", d)
		}
	}
}
