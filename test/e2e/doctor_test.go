package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// TestDoctorJSON: doctor reports what the kernel shows, and for each limit
// the same verdict the driver gives when a run asks for it.
func TestDoctorJSON(t *testing.T) {
	h := testenv.CgroupBase(t)
	code, out, stderr := cgdevRun(t, "--driver", "direct", "doctor", "--json")
	if code != 0 {
		t.Fatalf("doctor --json: exit %d, %s", code, stderr)
	}
	var r struct {
		Mode         string `json:"mode"`
		Cgroup2Mount string `json:"cgroup2_mount"`
		Driver       string `json:"driver"`
		Limits       []struct {
			Property   string `json:"property"`
			Controller string `json:"controller"`
			Enforced   bool   `json:"enforced"`
			Why        string `json:"why"`
		} `json:"limits"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("doctor --json is not JSON: %v\n%s", err, out)
	}
	if r.Mode != string(h.Mode) || r.Cgroup2Mount != h.Cgroup2Mount || r.Driver != "direct" {
		t.Errorf("doctor says mode %q mount %q driver %q; detection says %q %q, and direct was asked for", r.Mode, r.Cgroup2Mount, r.Driver, h.Mode, h.Cgroup2Mount)
	}
	if len(r.Limits) != len(cgroup.PropertyNames()) {
		t.Fatalf("doctor lists %d limits; want %d", len(r.Limits), len(cgroup.PropertyNames()))
	}
	for _, l := range r.Limits {
		if l.Enforced != h.Has(l.Controller) {
			t.Errorf("%s: doctor says enforced=%v, but the %s controller is available=%v", l.Property, l.Enforced, l.Controller, h.Has(l.Controller))
		}
		if !l.Enforced && l.Why == "" {
			t.Errorf("%s: refused without a reason", l.Property)
		}
	}
	code, text, _ := cgdevRun(t, "doctor")
	if code != 0 || !strings.Contains(text, "driver: ") || !strings.Contains(text, h.Cgroup2Mount) {
		t.Errorf("doctor (text): exit %d\n%s", code, text)
	}
	assertNoGroups(t, h)
}

// TestDoctorOnHybridHost holds the hybrid-host row of docs/environments.md:
// where PID 1 is not systemd and cgroup v1 holds the controllers, auto
// picks the direct driver, every limit is refused with the reason and the
// fix, and doctor's text names the hybrid mode and how to leave it.
func TestDoctorOnHybridHost(t *testing.T) {
	h := testenv.CgroupBase(t)
	if h.Mode != cgroup.Hybrid || h.Systemd.Booted || !h.BaseWritable {
		t.Skipf("not a hybrid host without systemd as PID 1 (mode %s, systemd PID 1 %v)", h.Mode, h.Systemd.Booted)
	}
	t.Setenv(launcher.DriverEnv, "auto")
	code, out, stderr := cgdevRun(t, "doctor", "--json")
	if code != 0 {
		t.Fatalf("doctor --json: exit %d, %s", code, stderr)
	}
	var r struct {
		Driver string `json:"driver"`
		Limits []struct {
			Property   string `json:"property"`
			Controller string `json:"controller"`
			Enforced   bool   `json:"enforced"`
			Why        string `json:"why"`
			Fix        string `json:"fix"`
		} `json:"limits"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("doctor --json is not JSON: %v\n%s", err, out)
	}
	if r.Driver != "direct" {
		t.Errorf("auto picks %q on a hybrid host without systemd; want direct", r.Driver)
	}
	for _, l := range r.Limits {
		if h.Has(l.Controller) {
			continue
		}
		if l.Enforced || !strings.Contains(l.Why, "cgroup v1") || !strings.Contains(l.Fix, "cgroup_no_v1=all") {
			t.Errorf("%s on a hybrid host: %+v; want refused, naming cgroup v1 and the boot option", l.Property, l)
		}
	}
	code, text, _ := cgdevRun(t, "doctor")
	for _, want := range []string{"This kernel runs hybrid cgroups", "Fix: boot with cgroup_no_v1=all or systemd.unified_cgroup_hierarchy=1"} {
		if code != 0 || !strings.Contains(text, want) {
			t.Errorf("doctor (exit %d) does not say %q:\n%s", code, want, text)
		}
	}
	assertNoGroups(t, h)
}
