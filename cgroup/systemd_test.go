package cgroup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cgroup/cgrouptest"
	"github.com/cgdev/cgdev/test/testenv"
)

const noManager = "no systemd user manager reachable; run under test/systemd/with-manager.sh"

// TestSystemdDriver runs the conformance test on the systemd driver, when a
// user manager answers (test/systemd/with-manager.sh starts one).
func TestSystemdDriver(t *testing.T) {
	cgrouptest.TestDriver(t, cgrouptest.Harness{Open: func(t *testing.T) cgroup.Driver { return newSystemd(t) }})
}

// newSystemd connects to the reachable user manager, or skips. Every unit
// the test names through track must be gone when the test ends; one that is
// not is killed through its cgroup, stopped, and fails the test.
func newSystemd(t *testing.T) *cgroup.Systemd {
	t.Helper()
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	if !h.Systemd.UserBus {
		t.Skip(noManager)
	}
	d, err := cgroup.NewSystemd(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// uniq returns a name no other test (or concurrent test run) uses.
func uniq(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// track makes the test fail (after cleaning up) if the group's unit or cgroup
// outlives the test.
func track(t *testing.T, d *cgroup.Systemd, g cgroup.Group) {
	unit := g.(interface{ Unit() string }).Unit()
	t.Cleanup(func() {
		load, _, err := d.UnitState(unit)
		if err != nil {
			t.Errorf("looking up %s: %v", unit, err)
			return
		}
		if load != "not-found" {
			t.Errorf("unit %s outlived the test (%s); removing it", unit, load)
			g.Kill()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			g.WaitEmpty(ctx)
			g.Remove()
		}
		if _, err := os.Stat(g.Path()); err == nil {
			t.Errorf("cgroup %s outlived the test", g.Path())
		}
	})
}

func startScope(t *testing.T, d *cgroup.Systemd, spec cgroup.Spec, cmd *exec.Cmd) cgroup.Group {
	t.Helper()
	g, err := d.Start(context.Background(), spec, cmd)
	if err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	track(t, d, g)
	return g
}

func stopAndRemove(t *testing.T, g cgroup.Group) {
	t.Helper()
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.WaitEmpty(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
}

// TestSystemdStartIntoScope: the command's first action reads
// /proc/self/cgroup, which must already name the scope; the scope is gone
// from the manager and from cgroupfs after Remove.
func TestSystemdStartIntoScope(t *testing.T) {
	d := newSystemd(t)
	name := uniq("first-")
	var out bytes.Buffer
	cmd := exec.Command("cat", "/proc/self/cgroup")
	cmd.Stdout = &out
	g := startScope(t, d, cgroup.Spec{Name: name}, cmd)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	unit := cgroup.UnitName("", name)
	if want := "/" + unit + "\n"; !strings.Contains(out.String(), want) {
		t.Errorf("/proc/self/cgroup = %q; want the scope %s", out.String(), unit)
	}
	if !strings.HasSuffix(g.Path(), "/"+unit) {
		t.Errorf("Path() = %s; want the scope's cgroup", g.Path())
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if load, _, _ := d.UnitState(unit); load != "not-found" {
		t.Errorf("%s is still %s after Remove", unit, load)
	}
	if _, err := os.Stat(g.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after Remove", g.Path())
	}
}

// TestSystemdRefusesUnenforcedLimit: on this host systemd accepts MemoryMax
// for a scope whose cgroup has no memory.max. Check refuses it beforehand;
// and when the pre-check is bypassed, the check after the job refuses it,
// the command never runs, and neither process nor unit is left.
func TestSystemdRefusesUnenforcedLimit(t *testing.T) {
	d := newSystemd(t)
	var l cgroup.Limits
	l.Set("MemoryMax=64M")
	var u *cgroup.UnsupportedError
	err := d.Check(&l)
	if err == nil {
		t.Skip("the manager here offers the memory controller; nothing to refuse")
	}
	if !errors.As(err, &u) || u.Properties()[0] != "MemoryMax" {
		t.Fatalf("Check(MemoryMax) = %v; want an UnsupportedError naming MemoryMax", err)
	}

	d.PretendControllers([]string{"memory"})
	marker := filepath.Join(t.TempDir(), "ran")
	name := uniq("capped-")
	cmd := exec.Command("touch", marker)
	_, err = d.Start(context.Background(), cgroup.Spec{Name: name, Limits: l}, cmd)
	if !errors.As(err, &u) || u.Missing[0].File != "memory.max" {
		t.Fatalf("Start with an unenforceable MemoryMax = %v; want an UnsupportedError for memory.max", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although its limit was refused")
	}
	if cmd.ProcessState == nil {
		t.Error("the held process was not reaped")
	}
	if load, _, _ := d.UnitState(cgroup.UnitName("", name)); load != "not-found" {
		t.Errorf("the refused scope is still loaded (%s)", load)
	}
}

// TestSystemdResetsFailedUnit: a scope that failed (stop timeout: its
// process ignored SIGTERM) and was kept by the manager blocks its name until
// reset; Start resets it and retries.
func TestSystemdResetsFailedUnit(t *testing.T) {
	d := newSystemd(t)
	spec := cgroup.Spec{Project: uniq("p"), Name: "api"}
	unit := cgroup.UnitName(spec.Project, spec.Name)
	failScope(t, unit)
	if _, active, _ := d.UnitState(unit); active != "failed" {
		t.Fatalf("could not make a failed %s (state %s)", unit, active)
	}
	cmd := exec.Command("sleep", "1000")
	g := startScope(t, d, spec, cmd)
	go cmd.Wait()
	stopAndRemove(t, g)
}

// failScope leaves a failed scope called unit with systemd-run and systemctl,
// as an earlier crashed tool might have.
func failScope(t *testing.T, unit string) {
	t.Helper()
	for _, tool := range []string{"systemd-run", "systemctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	// The shell says when its trap is in place: a scope merely active may
	// still run a shell that has not read its trap, which SIGTERM ends at
	// once, leaving the scope inactive instead of failed.
	trapped := filepath.Join(t.TempDir(), "trapped")
	run := exec.Command("systemd-run", "--user", "--scope", "-q", "--unit", unit,
		"-p", "TimeoutStopSec=50ms", "-p", "CollectMode=inactive",
		"sh", "-c", "trap '' TERM; : > \"$0\"; while :; do sleep 0.05; done", trapped)
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, run.Process.Pid)
	defer run.Wait()
	if !testenv.Eventually(30*time.Second, func() bool {
		_, err := os.Stat(trapped)
		return err == nil && exec.Command("systemctl", "--user", "is-active", "-q", unit).Run() == nil
	}) {
		t.Fatalf("systemd-run did not start %s with its TERM trap in place", unit)
	}
	if out, err := exec.Command("systemctl", "--user", "stop", unit).CombinedOutput(); err != nil {
		t.Logf("systemctl stop %s: %v %s", unit, err, out)
	}
	t.Cleanup(func() { exec.Command("systemctl", "--user", "reset-failed", unit).Run() })
}

// TestSystemdUnreachable: without a manager to ask, NewSystemd says so.
func TestSystemdUnreachable(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	if h.Systemd.Booted {
		t.Skip("PID 1 is systemd: the system manager is reachable")
	}
	if h.Cgroup2Mount == "" {
		t.Skip("no cgroup2 hierarchy mounted")
	}
	_, err = cgroup.NewSystemd(h)
	if err == nil || !strings.Contains(err.Error(), "no systemd manager reachable") {
		t.Fatalf("NewSystemd without a manager = %v; want 'no systemd manager reachable'", err)
	}
	// A socket path that is given but dead is named in the error.
	h.Systemd.UserBus, h.Systemd.UserBusSocket = true, filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "bus")
	_, err = cgroup.NewSystemd(h)
	if err == nil || !strings.Contains(err.Error(), h.Systemd.UserBusSocket+": no such socket") {
		t.Fatalf("NewSystemd with a dead socket = %v; want it named, with 'no such socket'", err)
	}
}

func TestUnitNames(t *testing.T) {
	for _, c := range []struct{ project, name, unit string }{
		{"web-1a2b3c4d", "api", `cgdev-web\x2d1a2b3c4d-api.scope`},
		{"web", "api-v2", `cgdev-web-api\x2dv2.scope`},
		{"", "true-0a1b2c", `cgdev-run-true\x2d0a1b2c.scope`},
		{"app", ".hidden", `cgdev-app-\x2ehidden.scope`},
	} {
		u := cgroup.UnitName(c.project, c.name)
		if u != c.unit {
			t.Errorf("UnitName(%q, %q) = %s; want %s", c.project, c.name, u, c.unit)
		}
		if name, ok := cgroup.NameFromUnit(c.project, u); !ok || name != c.name {
			t.Errorf("NameFromUnit(%q, %s) = %q, %v; want %q", c.project, u, name, ok, c.name)
		}
	}
	if _, ok := cgroup.NameFromUnit("web", `cgdev-web\x2dadmin-api.scope`); ok {
		t.Error("project web claimed a scope of project web-admin")
	}
	if p := cgroup.UnitPattern("web-1"); p != `cgdev-web\x2d1-*.scope` {
		t.Errorf("UnitPattern = %s; want the escaped id as is (systemd matches with FNM_NOESCAPE)", p)
	}
}

func TestLimitProperties(t *testing.T) {
	var l cgroup.Limits
	for _, a := range []string{"MemoryMax=64M", "MemoryHigh=infinity", "TasksMax=50", "CPUQuota=150%", "CPUWeight=20", "IOWeight=300", "MemorySwapMax=0"} {
		if err := l.Set(a); err != nil {
			t.Fatal(err)
		}
	}
	props, err := cgroup.LimitProps(&l)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{
		"MemoryMax": 64 << 20, "MemoryHigh": math.MaxUint64, "MemorySwapMax": 0, "TasksMax": 50,
		"CPUQuotaPerSecUSec": 1500000, "CPUWeight": 20, "IOWeight": 300,
	}
	if len(props) != len(want) {
		t.Fatalf("got %d properties; want %d", len(props), len(want))
	}
	for _, p := range props {
		v, ok := p.Value.Value().(uint64)
		if !ok || v != want[p.Name] {
			t.Errorf("%s = %#v; want uint64 %d", p.Name, p.Value.Value(), want[p.Name])
		}
	}
}

func TestSystemdOwns(t *testing.T) {
	for _, c := range []struct {
		base  string
		owned bool
	}{
		{"/cgdev", false},
		{"/cgdev-test-1", false},
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/cgdev", true},
		{"/system.slice/ssh.service/cgdev", true},
		{"/box/cgdev", false},
	} {
		h := &cgroup.Host{Base: c.base}
		if owned, why := cgroup.SystemdOwns(h); owned != c.owned {
			t.Errorf("SystemdOwns(Base %s) = %v (%s); want %v", c.base, owned, why, c.owned)
		}
	}
}
