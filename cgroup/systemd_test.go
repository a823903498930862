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
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/test/testenv"
)

const noManager = "no systemd user manager reachable; run under test/systemd/with-manager.sh"

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

// TestSystemdScopeProcsSignalKill: the hard cases (a background child, a
// setsid'd one, a double fork, a TERM-ignorer) are all in the scope, and
// cgroup.kill ends them.
func TestSystemdScopeProcsSignalKill(t *testing.T) {
	d := newSystemd(t)
	start := func(cmd *exec.Cmd, s cgroup.Spec) (cgroup.Group, error) { return d.Start(context.Background(), s, cmd) }
	g, _, pids := startTree(t, cgroup.Spec{Project: uniq("proj-"), Name: "svc"}, start)
	track(t, d, g)
	got, err := g.Procs()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if !containsInt(got, p) {
			t.Errorf("Procs() = %v misses %d", got, p)
		}
	}
	if n, err := g.Signal(syscall.SIGTERM); err != nil || n < len(pids) {
		t.Fatalf("Signal(TERM) reached %d, %v", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := g.WaitEmpty(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEmpty with a TERM-ignoring member = %v; want deadline exceeded", err)
	}
	stopAndRemove(t, g)
	for _, p := range pids {
		if testenv.Alive(p) {
			t.Errorf("pid %d survived cgroup.kill", p)
		}
	}
}

// TestSystemdGroupsDiscovery: Groups finds a project's scopes through the
// manager alone, and tells apart a project whose id extends another's.
func TestSystemdGroupsDiscovery(t *testing.T) {
	d := newSystemd(t)
	proj := uniq("p-") // a '-' escapes to \x2d, as in real project ids
	specs := []cgroup.Spec{
		{Project: proj, Name: "api"},
		{Project: proj, Name: "web-ui"},
		{Project: proj + "-x", Name: "other"},
		{Name: uniq("run-")},
	}
	var groups []cgroup.Group
	for _, s := range specs {
		g := startScope(t, d, s, exec.Command("sleep", "1000"))
		groups = append(groups, g)
	}
	t.Cleanup(func() {
		for _, g := range groups {
			g.Kill()
			g.WaitEmpty(context.Background())
			g.Remove()
		}
	})
	found, err := d.Groups(proj)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range found {
		names = append(names, g.Name())
	}
	if strings.Join(names, ",") != "api,web-ui" {
		t.Fatalf("Groups(%s) = %v; want [api web-ui]", proj, names)
	}
	if found[1].Path() != groups[1].Path() {
		t.Errorf("found web-ui at %s; started at %s", found[1].Path(), groups[1].Path())
	}
	if pids, _ := found[0].Procs(); len(pids) != 1 {
		t.Errorf("found api holds %v; want its one sleep", pids)
	}
	runs, err := d.Groups("")
	if err != nil {
		t.Fatal(err)
	}
	var sawRun bool
	for _, g := range runs {
		sawRun = sawRun || g.Name() == specs[3].Name
	}
	if !sawRun {
		t.Errorf("Groups(\"\") misses the run %s", specs[3].Name)
	}
	// A discovered group stops like the original.
	stopAndRemove(t, found[0])
	if again, _ := d.Groups(proj); len(again) != 1 {
		t.Errorf("after removing api, Groups = %d groups; want 1", len(again))
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

// TestSystemdNameInUse: a second start of a running service is refused and
// harms nothing; a failed unit of that name is reset and the start retried.
func TestSystemdNameInUse(t *testing.T) {
	d := newSystemd(t)
	spec := cgroup.Spec{Project: uniq("p"), Name: "api"}
	first := exec.Command("sleep", "1000")
	g := startScope(t, d, spec, first)
	second := exec.Command("true")
	_, err := d.Start(context.Background(), spec, second)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second Start of a running service = %v; want 'already exists'", err)
	}
	if second.ProcessState == nil {
		t.Error("the refused command's held process was not reaped")
	}
	if pids, _ := g.Procs(); len(pids) != 1 || pids[0] != first.Process.Pid {
		t.Errorf("the refused start changed the running scope: %v", pids)
	}
	go first.Wait()
	stopAndRemove(t, g)

	// A scope that failed (stop timeout: its process ignored SIGTERM) and was
	// kept by the manager blocks the name until reset.
	unit := cgroup.UnitName(spec.Project, spec.Name)
	failScope(t, unit)
	if _, active, _ := d.UnitState(unit); active != "failed" {
		t.Fatalf("could not make a failed %s (state %s)", unit, active)
	}
	g = startScope(t, d, spec, exec.Command("sleep", "1000"))
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
	run := exec.Command("systemd-run", "--user", "--scope", "-q", "--unit", unit,
		"-p", "TimeoutStopSec=50ms", "-p", "CollectMode=inactive",
		"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, run.Process.Pid)
	defer run.Wait()
	if !testenv.Eventually(5*time.Second, func() bool {
		return exec.Command("systemctl", "--user", "is-active", "-q", unit).Run() == nil
	}) {
		t.Fatalf("systemd-run did not start %s", unit)
	}
	if out, err := exec.Command("systemctl", "--user", "stop", unit).CombinedOutput(); err != nil {
		t.Logf("systemctl stop %s: %v %s", unit, err, out)
	}
	t.Cleanup(func() { exec.Command("systemctl", "--user", "reset-failed", unit).Run() })
}

// TestSystemdCanceledStartLeavesNothing: a start whose context is already
// done never runs the command and leaves no process and no unit.
func TestSystemdCanceledStartLeavesNothing(t *testing.T) {
	d := newSystemd(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	marker := filepath.Join(t.TempDir(), "ran")
	name := uniq("canceled-")
	cmd := exec.Command("touch", marker)
	if _, err := d.Start(ctx, cgroup.Spec{Name: name}, cmd); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a canceled context = %v; want context.Canceled", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran")
	}
	if cmd.Process != nil && cmd.ProcessState == nil {
		t.Error("the held process was not reaped")
	}
	if load, _, _ := d.UnitState(cgroup.UnitName("", name)); load != "not-found" {
		t.Errorf("a unit is left (%s)", load)
	}
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
