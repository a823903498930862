package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cgdev/cgdev/cgroup"
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
