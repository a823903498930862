package fallback_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/fallback"
	"github.com/cgdev/cgdev/test/testenv"
)

// TestStopHardCases: every hard case is in the group; SIGTERM, a wait that
// runs out (one ignores SIGTERM), then Kill leave no survivor, while a
// bystander called vitest is never signalled.
func TestStopHardCases(t *testing.T) {
	d := newDriver(t)
	proj := project(t)
	bystander := startBystander(t)
	g, cmd, pids := startHardCases(t, d, proj, "web")

	members, err := g.Procs()
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range append(pids, cmd.Process.Pid) {
		if !contains(members, pid) {
			t.Errorf("PID %d (%s) is not in the group %v", pid, fallback.Cmdline(pid), members)
		}
	}
	if contains(members, bystander.PID) {
		t.Fatalf("bystander %d counted in the group", bystander.PID)
	}
	checkReasons(t, g.(*fallback.Group), cmd.Process.Pid, pids)

	n, err := g.Signal(syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}
	if n < len(pids)+1 {
		t.Errorf("SIGTERM reached %d processes, want at least %d", n, len(pids)+1)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	err = g.WaitEmpty(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEmpty after SIGTERM = %v; want the deadline (a member ignores SIGTERM)", err)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, g)
	for _, pid := range pids {
		if testenv.Alive(pid) {
			t.Errorf("PID %d (%s) survived", pid, fallback.Cmdline(pid))
		}
	}
	if !bystander.Alive() {
		t.Errorf("bystander vitest %d was killed", bystander.PID)
	}
	t.Logf("reached: %s", fallback.Summarize(g.(*fallback.Group).Reached()))
}

// checkReasons: the leader is counted as such, the double-forked daemon that
// left the session is found by its marker only, and the process without a
// marker (env -i) through its ties to the leader.
func checkReasons(t *testing.T, g *fallback.Group, leader int, pids []int) {
	t.Helper()
	ms, err := g.Members()
	if err != nil {
		t.Fatal(err)
	}
	why := map[int]fallback.Reason{}
	escapees := 0
	for _, m := range ms {
		why[m.PID] = m.Why
		if m.Why == fallback.ByMarker && m.SID == m.PID {
			escapees++
		}
	}
	if why[leader] != fallback.ByLeader {
		t.Errorf("leader %d counted as %q", leader, why[leader])
	}
	if escapees == 0 {
		t.Errorf("no member found by its marker alone; the setsid double-fork should be: %s", fallback.Summarize(ms))
	}
	for _, pid := range pids {
		if fallback.ReadMarker(pid) == (fallback.Marker{}) && why[pid] == fallback.ByMarker {
			t.Errorf("PID %d has no marker yet was counted by it", pid)
		}
	}
}

func waitEmpty(t *testing.T, g cgroup.Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := g.WaitEmpty(ctx); err != nil {
		pids, _ := g.Procs()
		t.Fatalf("group %s not empty: %v (left: %v)", g.Name(), err, pids)
	}
}

// TestGroupsRediscover: a second cgdev (a fresh driver, no state) finds the
// service by its marker alone and stops all of it with the standard stop.
func TestGroupsRediscover(t *testing.T) {
	proj := project(t)
	bystander := startBystander(t)
	_, cmd, pids := startHardCases(t, newDriver(t), proj, "api")

	groups, err := newDriver(t).Groups(proj)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Name() != "api" || groups[0].Path() != "" {
		t.Fatalf("Groups(%s) = %v; want one group api without a path", proj, groups)
	}
	g := groups[0]
	if l := g.(*fallback.Group).Leaders(); len(l) != 1 || l[0].PID != cmd.Process.Pid {
		t.Errorf("rediscovered leaders %v; want the service's first process %d", l, cmd.Process.Pid)
	}
	checkReasons(t, g.(*fallback.Group), cmd.Process.Pid, pids)
	members, _ := g.Procs()
	for _, pid := range append(pids, cmd.Process.Pid) {
		if !contains(members, pid) {
			t.Errorf("rediscovered group lacks PID %d (%s)", pid, fallback.Cmdline(pid))
		}
	}
	res, err := cleanup.StopGroup(t.Context(), g, syscall.SIGTERM, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Forced {
		t.Error("stop was not forced, yet one member ignores SIGTERM")
	}
	for _, pid := range pids {
		if testenv.Alive(pid) {
			t.Errorf("PID %d (%s) survived the stop", pid, fallback.Cmdline(pid))
		}
	}
	if !bystander.Alive() {
		t.Errorf("bystander vitest %d was killed", bystander.PID)
	}
	if groups, _ := newDriver(t).Groups(proj); len(groups) != 0 {
		t.Errorf("groups left after the stop: %v", groups)
	}
}

// TestRecycledPIDNeverSignalled: an identity whose start time does not match
// the live process at its PID (what a recycled PID looks like) reaches nothing.
func TestRecycledPIDNeverSignalled(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 1000 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	var child int
	testenv.Eventually(5*time.Second, func() bool {
		t, _ := fallback.Snapshot()
		if c := t.Children(cmd.Process.Pid); len(c) == 1 {
			child = c[0]
		}
		return child != 0
	})
	if child == 0 {
		t.Fatal("the sleep child did not appear")
	}
	killOnCleanup(t, child)
	live := identity(t, cmd.Process.Pid)
	stale := fallback.Identity{PID: live.PID, StartTicks: live.StartTicks - 1}

	if ok, err := stale.Signal(syscall.SIGKILL); ok || err != nil {
		t.Errorf("Signal through a stale identity = %v, %v; want false, nil", ok, err)
	}
	g := fallback.TreeGroup(stale)
	if pids, _ := g.Procs(); len(pids) != 0 {
		t.Errorf("tree of a stale identity lists %v", pids)
	}
	if n, err := g.Signal(syscall.SIGKILL); n != 0 || err != nil {
		t.Errorf("Signal = %d, %v", n, err)
	}
	if err := g.Kill(); err != nil {
		t.Error(err)
	}
	for _, pid := range []int{live.PID, child} {
		if !testenv.Alive(pid) {
			t.Errorf("PID %d was killed through a stale identity", pid)
		}
	}
}

// TestCheckRefusesLimits: without a cgroup, no limit can be enforced, and
// the error says which, why and what would help.
func TestCheckRefusesLimits(t *testing.T) {
	h := &cgroup.Host{}
	d, err := fallback.New(h)
	if err != nil {
		t.Fatal(err)
	}
	var l cgroup.Limits
	if err := d.Check(&l); err != nil {
		t.Errorf("Check(no limits) = %v", err)
	}
	for _, p := range []string{"MemoryMax=1G", "CPUQuota=50%"} {
		if err := l.Set(p); err != nil {
			t.Fatal(err)
		}
	}
	err = d.Check(&l)
	var u *cgroup.UnsupportedError
	if !errors.As(err, &u) {
		t.Fatalf("Check = %v; want *cgroup.UnsupportedError", err)
	}
	if got := strings.Join(u.Properties(), ","); got != "MemoryMax,CPUQuota" && got != "CPUQuota,MemoryMax" {
		t.Errorf("refused %s", got)
	}
	for _, want := range []string{"MemoryMax", "without cgroups", "no cgroup2 hierarchy", "--driver direct"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	cmd := exec.Command("true")
	if _, err := d.Start(t.Context(), cgroup.Spec{Project: project(t), Name: "x", Limits: l}, cmd); !errors.As(err, &u) || cmd.Process != nil {
		t.Errorf("Start with limits = %v (started: %v)", err, cmd.Process != nil)
	}
}

// TestStartFailureLeavesNothing: a command that cannot start leaves no group.
func TestStartFailureLeavesNothing(t *testing.T) {
	d := newDriver(t)
	proj := project(t)
	_, err := d.Start(t.Context(), cgroup.Spec{Project: proj, Name: "bad"}, exec.Command("/nonexistent/cgdev-test-cmd"))
	if err == nil {
		t.Fatal("Start of a missing command succeeded")
	}
	if groups, _ := d.Groups(proj); len(groups) != 0 {
		t.Errorf("groups after a failed start: %v", groups)
	}
	if _, err := d.Start(t.Context(), cgroup.Spec{Project: proj}, exec.Command("true")); err == nil {
		t.Error("Start without a name succeeded")
	}
}

// TestStartRefusesRunningService: a service that already has processes is
// not started twice.
func TestStartRefusesRunningService(t *testing.T) {
	d := newDriver(t)
	proj := project(t)
	first := exec.Command("sleep", "1000")
	g, err := d.Start(t.Context(), cgroup.Spec{Project: proj, Name: "db"}, first)
	if err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, first.Process.Pid)
	go first.Wait()
	second := exec.Command("sleep", "1000")
	if _, err := d.Start(t.Context(), cgroup.Spec{Project: proj, Name: "db"}, second); err == nil || second.Process != nil {
		second.Process.Kill()
		t.Errorf("second start of a running service = %v", err)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, g)
}

// TestMarkers: a service gets its project and service markers and loses an
// inherited run marker; a run gets its run marker; the leader has a session
// of its own.
func TestMarkers(t *testing.T) {
	d := newDriver(t)
	proj := project(t)
	script := `echo "$CGDEV_PROJECT|$CGDEV_SERVICE|$CGDEV_RUN|$(ps -o sid= -p $$ | tr -d ' ')"`
	for _, tc := range []struct {
		spec cgroup.Spec
		want string
	}{
		{cgroup.Spec{Project: proj, Name: "web"}, proj + "|web||"},
		{cgroup.Spec{Name: "run-" + proj}, "outer|svc|run-" + proj + "|"},
	} {
		var out bytes.Buffer
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(withoutMarkers(os.Environ()), "CGDEV_RUN=outer-run", "CGDEV_PROJECT=outer", "CGDEV_SERVICE=svc")
		cmd.Stdout = &out
		if _, err := d.Start(t.Context(), tc.spec, cmd); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		got := strings.TrimSpace(out.String())
		want := tc.want + strconv.Itoa(cmd.Process.Pid)
		if got != want {
			t.Errorf("%+v: markers|sid = %q; want %q", tc.spec, got, want)
		}
	}
}

// TestGroupsFindsRuns: with project "" Groups lists runs by CGDEV_RUN.
func TestGroupsFindsRuns(t *testing.T) {
	d := newDriver(t)
	name := "run-" + project(t)
	cmd := exec.Command("sleep", "1000")
	if _, err := d.Start(t.Context(), cgroup.Spec{Name: name}, cmd); err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	groups, err := d.Groups("")
	if err != nil {
		t.Fatal(err)
	}
	var g cgroup.Group
	for _, x := range groups {
		if x.Name() == name {
			g = x
		}
	}
	if g == nil {
		t.Fatalf("run %s not among %d runs found", name, len(groups))
	}
	st, err := g.Stats()
	if err != nil || st.Procs != 1 || st.MemoryCurrent == 0 || st.TasksCurrent != 1 {
		t.Errorf("Stats = %+v, %v; want 1 process with its RSS and 1 thread", st, err)
	}
	if _, err := cleanup.StopGroup(t.Context(), g, syscall.SIGTERM, time.Second); err != nil {
		t.Fatal(err)
	}
	if testenv.Alive(cmd.Process.Pid) {
		t.Error("run survived its stop")
	}
}

// TestKillWhileForking: a service that forks continuously is emptied by Kill.
func TestKillWhileForking(t *testing.T) {
	d := newDriver(t)
	proj := project(t)
	cmd := exec.Command("sh", "-c", `trap "" TERM; i=0; while [ $i -lt 500 ]; do sleep 1000 & sh -c 'sleep 1000 & sleep 1000' & i=$((i+1)); done; wait`)
	g, err := d.Start(t.Context(), cgroup.Spec{Project: proj, Name: "forker"}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	testenv.Eventually(5*time.Second, func() bool {
		pids, _ := g.Procs()
		return len(pids) > 30
	})
	if _, err := g.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, g)
}

// TestDeadLeaderGroup: after the leader exits and is reaped, a child exec'd
// with an empty environment (no marker) and orphaned is still found through
// the leader's process group, which a marked sibling confirms is the same.
func TestDeadLeaderGroup(t *testing.T) {
	d := newDriver(t)
	pidFile := filepath.Join(t.TempDir(), "pids")
	cmd := exec.Command("sh", "-c", `env -i sleep 1000 & echo $! > "$1"; sleep 1000 & wait $!`, "x", pidFile)
	g, err := d.Start(t.Context(), cgroup.Spec{Name: "run-" + project(t)}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	var unmarked int
	if !testenv.Eventually(5*time.Second, func() bool {
		p := readPids(pidFile)
		if len(p) == 1 {
			unmarked = p[0]
		}
		return unmarked != 0
	}) {
		t.Fatal("no PID written")
	}
	killOnCleanup(t, unmarked)
	if !testenv.Eventually(5*time.Second, func() bool { return fallback.ReadMarker(unmarked) == (fallback.Marker{}) }) {
		t.Fatal("env -i did not exec sleep")
	}
	cmd.Process.Signal(syscall.SIGTERM) // the leader only
	cmd.Wait()
	if pids, _ := g.Procs(); !contains(pids, unmarked) {
		t.Fatalf("orphaned unmarked child %d not in the group %v after its leader was reaped", unmarked, pids)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, g)
	if testenv.Alive(unmarked) {
		t.Errorf("PID %d survived", unmarked)
	}
}

// TestOtherGroupsChildrenAreTheirs: a process that carries the marker of
// another group of the same project, and what it forks, is not a member of
// its parent's group (the supervisor and the services it starts), while a
// plain child is.
func TestOtherGroupsChildrenAreTheirs(t *testing.T) {
	d := newDriver(t)
	proj := project(t)
	dir := t.TempDir()
	script := `sleep 1000 & echo $! >> "$0/plain"
CGDEV_SERVICE=web sh -c 'sleep 1000 & echo $! >> "$0/web"; echo $$ >> "$0/web"; wait' "$0" &
wait`
	cmd := exec.Command("sh", "-c", script, dir)
	cmd.Env = withoutMarkers(os.Environ())
	sup, err := d.Start(t.Context(), cgroup.Spec{Project: proj, Name: "_supervisor"}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	var plain, web []int
	if !testenv.Eventually(10*time.Second, func() bool {
		plain, web = readPids(filepath.Join(dir, "plain")), readPids(filepath.Join(dir, "web"))
		return len(plain) == 1 && len(web) == 2
	}) {
		t.Fatalf("pids: plain %v, web %v", plain, web)
	}
	members, err := sup.Procs()
	if err != nil {
		t.Fatal(err)
	}
	if !contains(members, cmd.Process.Pid) || !contains(members, plain[0]) {
		t.Errorf("the group %v lacks its leader %d or its plain child %d", members, cmd.Process.Pid, plain[0])
	}
	for _, pid := range web {
		if contains(members, pid) {
			t.Errorf("PID %d, marked for web (or forked by it), counted in _supervisor: %v", pid, members)
		}
	}
	groups, err := d.Groups(proj)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Name() == "web" {
			if got, _ := g.Procs(); !contains(got, web[0]) || !contains(got, web[1]) {
				t.Errorf("web's group %v lacks %v", got, web)
			}
		}
		g.Kill()
	}
}
