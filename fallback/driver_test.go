package fallback_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cgroup/cgrouptest"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/fallback"
	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
)

// TestFallbackDriver runs the conformance test, with the fallback driver's
// documented exception: a process that clears its environment and leaves
// the process tree cannot be followed.
func TestFallbackDriver(t *testing.T) {
	cgrouptest.TestDriver(t, cgrouptest.Harness{
		Open:     func(t *testing.T) cgroup.Driver { return newDriver(t) },
		NoCgroup: true,
	})
}

// TestMembershipReasons: each hard case is counted for the first reason
// that ties it to the leader: the leader as such, the double fork that left
// the session by its marker alone, and a process without a marker never by
// it. A driver with no state (a second cgdev) finds the leader again.
func TestMembershipReasons(t *testing.T) {
	proj := project(t)
	g, leader, pids := cgrouptest.StartHardCases(t, newDriver(t), cgroup.Spec{Project: proj, Name: "web"}, t.TempDir())
	groups, err := newDriver(t).Groups(proj)
	if err != nil || len(groups) != 1 {
		t.Fatalf("Groups(%s) = %v, %v; want the one group", proj, groups, err)
	}
	if l := groups[0].(*fallback.Group).Leaders(); len(l) != 1 || l[0].PID != leader {
		t.Errorf("rediscovered leaders %v; want the service's first process %d", l, leader)
	}
	for _, fg := range []*fallback.Group{g.(*fallback.Group), groups[0].(*fallback.Group)} {
		ms, err := fg.Members()
		if err != nil {
			t.Fatal(err)
		}
		why := map[int]fallback.Reason{}
		for _, m := range ms {
			why[m.PID] = m.Why
		}
		if why[leader] != fallback.ByLeader {
			t.Errorf("leader %d counted as %q", leader, why[leader])
		}
		if escapee := pids["session-daemon"][0]; why[escapee] != fallback.ByMarker {
			t.Errorf("the double fork that left the session, %d, counted as %q; want %q: %s", escapee, why[escapee], fallback.ByMarker, fallback.Summarize(ms))
		}
		for _, pid := range pids["envless"] {
			if why[pid] == fallback.ByMarker || why[pid] == "" {
				t.Errorf("PID %d has no marker, yet was counted as %q", pid, why[pid])
			}
		}
	}
	if _, err := cleanup.StopGroup(t.Context(), groups[0], syscall.SIGTERM, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	reached := groups[0].(*fallback.Group).Reached()
	if s := fallback.Summarize(reached); !strings.Contains(s, "found by the marker: "+strconv.Itoa(pids["session-daemon"][0])) {
		t.Errorf("Summarize does not name the escapee: %s", s)
	}
}

// TestWaitEmptyAcrossHandOff: a service whose main process double-forks a
// daemon and exits hands its group over to the daemon, possibly while a scan
// of /proc runs: the main process and the intermediate one listed, then gone
// before they are read, the daemon forked after the listing. WaitEmpty must
// not take such a scan for an empty group (which made a daemonizing
// service's start fail now and then: "no process left in its group").
func TestWaitEmptyAcrossHandOff(t *testing.T) {
	d := newDriver(t)
	proj := project(t)
	var groups []cgroup.Group
	defer func() {
		var wg sync.WaitGroup
		for _, g := range groups {
			wg.Go(func() {
				if err := cleanup.Kill(t.Context(), g); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}()
	for i := range 20 {
		cmd := exec.Command("sh", "-c", `(sleep 1000 &) & wait`)
		g, err := d.Start(t.Context(), cgroup.Spec{Project: proj, Name: "daemon" + strconv.Itoa(i)}, cmd)
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g)
		go cmd.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		err = g.WaitEmpty(ctx)
		cancel()
		if err == nil {
			pids, _ := g.Procs()
			t.Errorf("start %d: WaitEmpty returned while the group holds %v", i, pids)
		}
	}
}

// TestRecycledPIDNeverSignalled: a tree whose root identity's start time does
// not match the live process at its PID (what a recycled PID looks like)
// holds and reaches nothing.
func TestRecycledPIDNeverSignalled(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 1000 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	var child int
	testenv.Eventually(5*time.Second, func() bool {
		t, _ := proc.Snapshot()
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
	g := fallback.TreeGroup(proc.Identity{PID: live.PID, StartTicks: live.StartTicks - 1})
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

// TestLeaderSessionAndStats: the leader has a session of its own; Stats sums
// the members' resident memory and threads.
func TestLeaderSessionAndStats(t *testing.T) {
	d := newDriver(t)
	sid := filepath.Join(t.TempDir(), "sid")
	cmd := exec.Command("sh", "-c", `ps -o sid= -p $$ | tr -d ' ' > "$1"; exec sleep 1000`, "x", sid)
	g, err := d.Start(t.Context(), cgroup.Spec{Project: project(t), Name: "web"}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	testenv.WaitCmdline(t, cmd.Process.Pid, "sleep 1000")
	if got, _ := os.ReadFile(sid); strings.TrimSpace(string(got)) != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("the leader's session is %q; want its own, %d", got, cmd.Process.Pid)
	}
	st, err := g.Stats()
	if err != nil || st.Procs != 1 || st.MemoryCurrent == 0 || st.TasksCurrent != 1 {
		t.Errorf("Stats = %+v, %v; want 1 process with its RSS and 1 thread", st, err)
	}
	if err := cleanup.Kill(t.Context(), g); err != nil {
		t.Fatal(err)
	}
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
		b, _ := os.ReadFile(pidFile)
		unmarked, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return unmarked != 0
	}) {
		t.Fatal("no PID written")
	}
	killOnCleanup(t, unmarked)
	testenv.WaitCmdline(t, unmarked, "sleep 1000")
	if proc.ReadMarker(unmarked) != (proc.Marker{}) {
		t.Fatal("env -i left a marker")
	}
	cmd.Process.Signal(syscall.SIGTERM) // the leader only
	cmd.Wait()
	if pids, _ := g.Procs(); !contains(pids, unmarked) {
		t.Fatalf("orphaned unmarked child %d not in the group %v after its leader was reaped", unmarked, pids)
	}
	if err := cleanup.Kill(t.Context(), g); err != nil {
		t.Fatal(err)
	}
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
	cmd.Env = proc.StripMarkers(os.Environ())
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
