package main

import (
	"strings"
	"testing"

	"github.com/cgdev/cgdev/cgroup"
)

// TestDoctorWithoutCgroups: on a machine with no cgroup2 mount (cgroup v1
// only, or none), doctor picks the fallback driver, refuses every limit with
// the reason, and says what would give cgdev cgroups.
func TestDoctorWithoutCgroups(t *testing.T) {
	r := diagnose(&cgroup.Host{Mode: cgroup.Legacy, V1Controllers: []string{"memory", "pids"}}, "auto")
	if r.Driver != "fallback" || !strings.Contains(r.DriverWhy, "no cgroup2 hierarchy") {
		t.Errorf("driver %s (%s), want fallback for want of cgroup2", r.Driver, r.DriverWhy)
	}
	for _, l := range r.Limits {
		if l.Enforced || l.Why == "" {
			t.Errorf("%s: enforced=%v why=%q, want refused with a reason", l.Property, l.Enforced, l.Why)
		}
	}
	var b strings.Builder
	r.print(&b)
	if !strings.Contains(b.String(), "No cgroup2 tree is mounted") || !strings.Contains(b.String(), "Fix: boot with systemd.unified_cgroup_hierarchy=1") {
		t.Errorf("doctor's text does not say what is missing and what would fix it:\n%s", b.String())
	}
}
