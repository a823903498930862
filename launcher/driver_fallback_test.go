package launcher_test

import (
	"strings"
	"testing"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
)

// TestAutoDriverFallback: with no cgroup2 mount, or one this user may not
// write and no systemd manager, auto picks fallback and says why; the name
// opens the fallback driver.
func TestAutoDriverFallback(t *testing.T) {
	for _, tc := range []struct {
		host cgroup.Host
		why  string
	}{
		{cgroup.Host{Mode: cgroup.Legacy}, "no cgroup2 hierarchy"},
		{cgroup.Host{Mode: cgroup.Hybrid, Cgroup2Mount: "/nonexistent/cgdev-test", Base: "/cgdev"}, "may not create cgroups under /nonexistent/cgdev-test/cgdev"},
	} {
		name, why := launcher.AutoDriver(&tc.host)
		if name != "fallback" || !strings.Contains(why, tc.why) || !strings.Contains(why, "limits cannot be enforced") {
			t.Errorf("%+v: auto = %s (%s); want fallback, saying %q", tc.host, name, why, tc.why)
		}
		drv, err := launcher.OpenDriver("auto", &tc.host)
		if err != nil || drv.Name() != "fallback" {
			t.Errorf("OpenDriver(auto) = %v, %v", drv, err)
		}
	}
	if drv, err := launcher.OpenDriver("fallback", &cgroup.Host{}); err != nil || drv.Name() != "fallback" {
		t.Errorf("OpenDriver(fallback) = %v, %v", drv, err)
	}
}
