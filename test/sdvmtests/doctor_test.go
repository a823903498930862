package sdvmtests_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/vmkit"
)

// doctorReport is the part of `cgdev doctor --json` the tests read.
type doctorReport struct {
	Mode      string `json:"mode"`
	Driver    string `json:"driver"`
	DriverWhy string `json:"driver_why"`
	Base      string `json:"base"`
	Limits    []struct {
		Property string `json:"property"`
		Enforced bool   `json:"enforced"`
		Why      string `json:"why"`
	} `json:"limits"`
	Delegation *struct {
		Cgroup string `json:"cgroup"`
		How    string `json:"how"`
	} `json:"delegation"`
	Checks []struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
		Fix    string `json:"fix"`
	} `json:"checks"`
}

func parseDoctor(t *testing.T, out string) doctorReport {
	t.Helper()
	var r doctorReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	return r
}

// check returns the named environment check; without it the test fails
// (and goes on: an empty check fails the caller's assertions too).
func (r doctorReport) check(t *testing.T, name string) (ok bool, detail, fix string) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c.OK, c.Detail, c.Fix
		}
	}
	t.Errorf("doctor has no %s check: %+v", name, r.Checks)
	return false, "", ""
}

func (r doctorReport) enforced(property string) bool {
	for _, l := range r.Limits {
		if l.Property == property {
			return l.Enforced
		}
	}
	return false
}

// TestDoctor: on the systemd host doctor picks the driver this pass must
// use (systemd where systemd owns the tree, direct inside a delegated unit),
// says why, says which controllers the manager delegates, and finds
// MemoryMax, TasksMax and CPUQuota enforceable.
func TestDoctor(t *testing.T) {
	pass := inPass(t, hostPasses...)
	r := vmkit.Run(t, time.Minute, cgdev(t, t.TempDir(), nil, "doctor", "--json"))
	if r.Code != 0 {
		t.Fatalf("doctor --json: exit %d\n%s", r.Code, r.Stderr)
	}
	d := parseDoctor(t, r.Stdout)
	text := vmkit.Run(t, time.Minute, cgdev(t, t.TempDir(), nil, "doctor")).Stdout
	t.Logf("cgdev doctor (%s pass):\n%s", pass, text)
	if want := wantDriver(pass); d.Driver != want {
		t.Errorf("driver %s (%s), want %s in the %s pass", d.Driver, d.DriverWhy, want, pass)
	}
	if d.Mode != "unified" {
		t.Errorf("mode %s, want unified", d.Mode)
	}
	for _, p := range []string{"MemoryMax", "TasksMax", "CPUQuota"} {
		if !d.enforced(p) {
			t.Errorf("%s not enforced: %+v", p, d.Limits)
		}
	}
	if d.Delegation == nil {
		t.Fatal("doctor reports no delegation finding on a host whose PID 1 is systemd")
	}
	switch pass {
	case "dev", "root":
		if d.Delegation.Cgroup != "" {
			t.Errorf("delegated cgroup %q in the %s pass, which runs in no Delegate=yes unit", d.Delegation.Cgroup, pass)
		}
		if _, detail, _ := d.check(t, "delegated_subtree"); !strings.Contains(detail, "direct driver is not available") {
			t.Errorf("delegated_subtree: %s", detail)
		}
		ok, detail, _ := d.check(t, "delegated_controllers")
		if !ok || !strings.Contains(detail, "cpu") || !strings.Contains(detail, "memory") || !strings.Contains(detail, "pids") {
			t.Errorf("delegated_controllers: ok=%v %s", ok, detail)
		}
		if pass == "dev" && !strings.Contains(detail, "user@1000.service") {
			t.Errorf("delegated_controllers does not name the user manager's cgroup: %s", detail)
		}
		if pass == "dev" && d.enforced("IOWeight") {
			t.Error("IOWeight enforced, but Debian's user@.service does not delegate io")
		}
	case "dev-delegate", "root-delegate":
		own, _ := os.ReadFile("/proc/self/cgroup")
		scope := strings.TrimPrefix(strings.TrimSpace(string(own)), "0::")
		if d.Delegation.Cgroup == "" || !strings.HasPrefix(scope, d.Delegation.Cgroup) {
			t.Errorf("delegated cgroup %q, want the pass's Delegate=yes scope (this test runs in %s)", d.Delegation.Cgroup, scope)
		}
		if !strings.HasPrefix(d.Base, d.Delegation.Cgroup+"/") {
			t.Errorf("base %s outside the delegated cgroup %s", d.Base, d.Delegation.Cgroup)
		}
	}
}

// TestDirectRefusedOutsideDelegation: where systemd owns the tree and
// delegated nothing to cgdev, --driver direct refuses, says why and what
// to do, and creates nothing.
func TestDirectRefusedOutsideDelegation(t *testing.T) {
	inPass(t, "dev", "root")
	if os.Getenv("CGDEV_DRIVER") != "" {
		t.Skip("this pass chooses the driver itself")
	}
	name := tag("refused")
	r := runCgdev(t, time.Minute, []string{"CGDEV_DRIVER=direct"}, "--name", name, "--", "/bin/sh", "-c", "echo ran")
	t.Logf("--driver direct: exit %d: %s", r.Code, strings.TrimSpace(r.Stderr))
	if r.Code == 0 || strings.Contains(r.Stdout, "ran") {
		t.Errorf("the command ran (exit %d)", r.Code)
	}
	for _, want := range []string{"systemd owns this machine's cgroup tree", "--driver systemd", "Delegate=yes"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, r.Stderr)
		}
	}
	if g := groupsTagged(name); len(g) > 0 {
		t.Errorf("left behind: %v", g)
	}
}

// TestDelegatedLeaf: in a delegated unit, the first limit moves the unit's
// own processes (the test, cgdev) into its init leaf, so that cgroup2 lets
// cgdev enable the controllers for its groups; the unit's cgroup then holds
// no process itself.
func TestDelegatedLeaf(t *testing.T) {
	inPass(t, "dev-delegate", "root-delegate")
	r := runCgdev(t, 2*time.Minute, nil, "-p", "MemoryMax=64M", "-p", "TasksMax=50", "--", "/bin/sh", "-c", "cat /proc/self/cgroup")
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	own, _ := os.ReadFile("/proc/self/cgroup")
	mine := strings.TrimPrefix(strings.TrimSpace(string(own)), "0::")
	t.Logf("the run was in %s; this test is now in %s", strings.TrimSpace(r.Stdout), mine)
	if !strings.HasSuffix(mine, "/init") {
		t.Errorf("the test's own process is in %s, not in the delegated unit's init leaf", mine)
	}
	unit := strings.TrimSuffix(mine, "/init")
	procs, _ := os.ReadFile(cgroupRoot + unit + "/cgroup.procs")
	sub, _ := os.ReadFile(cgroupRoot + unit + "/cgroup.subtree_control")
	t.Logf("%s: cgroup.procs %q, subtree_control %q", unit, strings.TrimSpace(string(procs)), strings.TrimSpace(string(sub)))
	if len(strings.TrimSpace(string(procs))) > 0 || !strings.Contains(string(sub), "memory") || !strings.Contains(string(sub), "pids") {
		t.Errorf("the delegated unit %s holds processes or lacks the controllers", unit)
	}
	if !strings.HasPrefix(strings.TrimSpace(r.Stdout), "0::"+unit+"/cgdev/run-") {
		t.Errorf("the run ran in %s, not under %s/cgdev", r.Stdout, unit)
	}
}
