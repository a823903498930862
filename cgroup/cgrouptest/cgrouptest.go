// Package cgrouptest checks that a cgroup.Driver keeps the contract written
// in package cgroup, the way testing/fstest checks an fs.FS: TestDriver runs
// one subtest per clause, with real processes on the real kernel (and the
// real manager, for systemd). Every driver's tests call it; a new driver's
// must too.
package cgrouptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
)

// Harness is what TestDriver needs to know of a driver.
type Harness struct {
	// Setup, when set, runs first in every subtest, for what all the
	// subtest's drivers share (a private cgroup base, say). It may skip.
	Setup func(t *testing.T)
	// Open returns a driver, or skips the test. A subtest may call it more
	// than once: each driver must find the groups the others started, as a
	// second cgdev would. TestDriver closes every driver.
	Open func(t *testing.T) cgroup.Driver
	// NoCgroup says the driver keeps groups without a cgroup (fallback):
	// the processes of an Untracked hard case cannot be followed.
	NoCgroup bool
}

// TestDriver checks each clause of the Driver and Group contract.
func TestDriver(t *testing.T, h Harness) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, e *env)
	}{
		{"StartsInItsGroup", startsInItsGroup},
		{"SetsMarkers", setsMarkers},
		{"HardCases", hardCases},
		{"FindsGroupsAgain", findsGroupsAgain},
		{"StoppedProcessStopsOnSignal", stoppedProcess},
		{"KillWhileForking", killWhileForking},
		{"RemoveRefusesPopulated", removeRefusesPopulated},
		{"RefusesInvalidNames", refusesInvalidNames},
		{"FailedStartLeavesNothing", failedStartLeavesNothing},
		{"RefusesRunningService", refusesRunningService},
		{"DoneContextStartsNothing", doneContext},
	} {
		t.Run(c.name, func(t *testing.T) {
			if h.Setup != nil {
				h.Setup(t)
			}
			c.test(t, newEnv(t, h))
		})
	}
}

// env is one subtest's driver and project.
type env struct {
	h       Harness
	d       cgroup.Driver
	project string // unique to the subtest
	dir     string // a temporary directory
}

func newEnv(t *testing.T, h Harness) *env {
	b := make([]byte, 4)
	rand.Read(b)
	e := &env{h: h, project: "ct-" + hex.EncodeToString(b), dir: t.TempDir()}
	t.Cleanup(func() { e.leftBehind(t) })
	e.d = e.open(t)
	return e
}

// open returns a driver that is closed when the test ends.
func (e *env) open(t *testing.T) cgroup.Driver {
	t.Helper()
	d := e.h.Open(t)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// run is a run's name unique to the subtest.
func (e *env) run(name string) string { return e.project + "-" + name }

// leftBehind fails the test for every group of its project, or run named
// after it, that outlives it, and then stops and removes that group.
func (e *env) leftBehind(t *testing.T) {
	d := e.h.Open(t)
	defer d.Close()
	groups, err := d.Groups(e.project)
	if err != nil {
		t.Errorf("listing the groups left: %v", err)
	}
	runs, _ := d.Groups("")
	for _, g := range runs {
		if strings.HasPrefix(g.Name(), e.project) {
			groups = append(groups, g)
		}
	}
	for _, g := range groups {
		pids, _ := g.Procs()
		t.Errorf("group %s left behind, holding %v; stopping it", g.Name(), pids)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cleanup.Kill(ctx, g)
		cancel()
		g.Remove()
	}
}

// start starts cmd through the subtest's driver, failing the test on error.
// Every process it starts is killed when the test ends, in case the driver
// failed to.
func (e *env) start(t *testing.T, spec cgroup.Spec, cmd *exec.Cmd) cgroup.Group {
	t.Helper()
	g, err := e.d.Start(context.Background(), spec, cmd)
	if err != nil {
		t.Fatalf("Start(%+v): %v", spec, err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	return g
}

// startSleep starts a sleep as the service name and waits for it (as the
// driver's caller must) in the background.
func (e *env) startSleep(t *testing.T, name string) (cgroup.Group, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	g := e.start(t, cgroup.Spec{Project: e.project, Name: name}, cmd)
	go cmd.Wait()
	return g, cmd
}

// killOnCleanup SIGKILLs the process pid names now when the test ends, if
// it still is the same process (never a recycled PID).
func killOnCleanup(t *testing.T, pid int) {
	if p, err := proc.ReadProc(pid); err == nil {
		t.Cleanup(func() { p.Identity().Signal(syscall.SIGKILL) })
	}
}

// waitEmpty fails the test unless g empties within 10 s.
func waitEmpty(t *testing.T, g cgroup.Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.WaitEmpty(ctx); err != nil {
		pids, _ := g.Procs()
		t.Fatalf("%s is not empty: %v (left: %v)", g.Name(), err, pids)
	}
}

// names lists the names of groups.
func names(groups []cgroup.Group) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g.Name())
	}
	return out
}

// groupsNamed returns the groups of project that another driver finds
// under name.
func (e *env) groupsNamed(t *testing.T, project, name string) []cgroup.Group {
	t.Helper()
	groups, err := e.open(t).Groups(project)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(groups, func(g cgroup.Group) bool { return g.Name() != name })
}

// startsInItsGroup: the command's first instruction already runs in the
// group (for a cgroup: /proc/self/cgroup names it); its output and exit
// status reach the caller, who waits; Remove deletes the emptied group, and
// a second Remove is no error.
func startsInItsGroup(t *testing.T, e *env) {
	var out bytes.Buffer
	cmd := exec.Command("sh", "-c", "cat /proc/self/cgroup; exit 7")
	cmd.Stdout = &out
	g := e.start(t, cgroup.Spec{Name: e.run("first")}, cmd)
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("Wait = %v; want exit status 7", err)
	}
	if g.Name() != e.run("first") {
		t.Errorf("Name() = %q", g.Name())
	}
	if g.Path() != "" {
		var inside bool
		for _, line := range strings.Split(out.String(), "\n") {
			cg, ok := strings.CutPrefix(line, "0::")
			inside = inside || ok && cg != "/" && strings.HasSuffix(g.Path(), cg)
		}
		if !inside {
			t.Errorf("the command's first instruction ran outside %s: /proc/self/cgroup = %q", g.Path(), out.String())
		}
	} else if !e.h.NoCgroup {
		t.Error("Path() is empty for a driver with cgroups")
	}
	waitEmpty(t, g)
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if len(e.groupsNamed(t, "", g.Name())) != 0 {
		t.Error("Groups still lists the group after Remove")
	}
	if err := g.Remove(); err != nil {
		t.Errorf("Remove of a group already gone = %v", err)
	}
}

// setsMarkers: a service's processes carry its project and service and no
// inherited run; a run's carry the run and keep inherited service markers.
func setsMarkers(t *testing.T, e *env) {
	for _, c := range []struct {
		spec cgroup.Spec
		want string
	}{
		{cgroup.Spec{Project: e.project, Name: "web"}, e.project + "|web|"},
		{cgroup.Spec{Name: e.run("run")}, "outer|svc|" + e.run("run")},
	} {
		var out bytes.Buffer
		cmd := exec.Command("sh", "-c", `echo "$CGDEV_PROJECT|$CGDEV_SERVICE|$CGDEV_RUN"`)
		cmd.Env = append(os.Environ(), "CGDEV_RUN=outer-run", "CGDEV_PROJECT=outer", "CGDEV_SERVICE=svc")
		cmd.Stdout = &out
		g := e.start(t, c.spec, cmd)
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out.String()); got != c.want {
			t.Errorf("%+v: markers %q; want %q", c.spec, got, c.want)
		}
		waitEmpty(t, g)
		if err := g.Remove(); err != nil {
			t.Error(err)
		}
	}
}

// StartHardCases starts the hard-case tree (TreeScript of HardCases)
// through d as the group of spec, in dir, and waits until every case has
// written its PIDs. It returns the group, the leader's PID and the cases'
// PIDs. Every process is killed when the test ends.
func StartHardCases(t *testing.T, d cgroup.Driver, spec cgroup.Spec, dir string) (cgroup.Group, int, map[string][]int) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed (a hard case renames itself with exec -a)")
	}
	file := filepath.Join(dir, "pids")
	cmd := exec.Command("sh", "-c", TreeScript(HardCases))
	cmd.Env = append(os.Environ(), PIDsEnv+"="+file)
	cmd.Dir = dir
	g, err := d.Start(context.Background(), spec, cmd)
	if err != nil {
		t.Fatalf("Start(%+v): %v", spec, err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	var pids map[string][]int
	seen := map[int]bool{}
	if !testenv.Eventually(10*time.Second, func() bool {
		pids = ReadPIDs(file)
		for _, ps := range pids {
			for _, pid := range ps {
				if !seen[pid] {
					seen[pid] = true
					killOnCleanup(t, pid)
				}
			}
		}
		return Started(HardCases, pids)
	}) {
		t.Fatalf("the hard cases did not all start: %v", pids)
	}
	return g, cmd.Process.Pid, pids
}

func (e *env) startHardCases(t *testing.T, svc string) (cgroup.Group, int, map[string][]int) {
	t.Helper()
	return StartHardCases(t, e.d, cgroup.Spec{Project: e.project, Name: svc}, e.dir)
}

// tracked lists the PIDs of the cases the driver must follow.
func (e *env) tracked(pids map[string][]int) []int {
	var out []int
	for _, c := range HardCases {
		if !(c.Untracked && e.h.NoCgroup) {
			out = append(out, pids[c.Name]...)
		}
	}
	return out
}

// startBystander starts a copy of sleep called vitest, without markers, in a
// session of its own: a process no group may ever count.
func (e *env) startBystander(t *testing.T) proc.Identity {
	t.Helper()
	vitest := filepath.Join(e.dir, "vitest")
	if out, err := exec.Command("cp", "/bin/sleep", vitest).CombinedOutput(); err != nil {
		t.Skipf("copying sleep: %v %s", err, out)
	}
	cmd := exec.Command(vitest, "1000")
	cmd.Env = proc.StripMarkers(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	p, err := proc.ReadProc(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return p.Identity()
}

// hardCases: every hard case is in the group, and no bystander; the stop
// signal reaches them all; the group does not empty while a member ignores
// it; cleanup.Kill (Group.Kill, repeated) empties it; then it is removed.
func hardCases(t *testing.T, e *env) {
	bystander := e.startBystander(t)
	g, leader, pids := e.startHardCases(t, "svc")
	members, err := g.Procs()
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range append(e.tracked(pids), leader) {
		if !slices.Contains(members, pid) {
			t.Errorf("PID %d (%s) is not in the group", pid, proc.Cmdline(pid))
		}
	}
	if slices.Contains(members, bystander.PID) {
		t.Errorf("the bystander %d is counted in the group", bystander.PID)
	}
	if n, err := g.Signal(syscall.SIGTERM); err != nil || n < len(HardCases) {
		t.Errorf("Signal(SIGTERM) reached %d, %v; want at least %d", n, err, len(HardCases))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = g.WaitEmpty(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEmpty while a member ignores SIGTERM = %v; want the deadline", err)
	}
	if err := cleanup.Kill(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	for _, pid := range append(e.tracked(pids), leader) {
		if testenv.Alive(pid) {
			t.Errorf("PID %d (%s) survived", pid, proc.Cmdline(pid))
		}
	}
	if !bystander.Alive() {
		t.Error("the bystander was killed")
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
}

// findsGroupsAgain: another driver (a second cgdev, without state) finds the
// service under its project and the run with the runs, with what runs in
// them; a stop through the group found stops it all.
func findsGroupsAgain(t *testing.T, e *env) {
	_, leader, pids := e.startHardCases(t, "api")
	webUI, cmd := e.startSleep(t, "web-ui")
	run := exec.Command("sleep", "1000")
	e.start(t, cgroup.Spec{Name: e.run("run")}, run)
	go run.Wait()
	// Another project, whose id extends this one's.
	longer := exec.Command("sleep", "1000")
	e.start(t, cgroup.Spec{Project: e.project + "-x", Name: "api"}, longer)
	go longer.Wait()
	defer func() {
		for _, g := range e.groupsNamed(t, e.project+"-x", "api") {
			cleanup.StopGroup(context.Background(), g, syscall.SIGKILL, 0)
		}
	}()

	groups, err := e.open(t).Groups(e.project)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(groups); !slices.Equal(got, []string{"api", "web-ui"}) {
		t.Fatalf("Groups(project) = %v; want [api web-ui]", got)
	}
	if groups[1].Path() != webUI.Path() {
		t.Errorf("found web-ui at %q; started at %q", groups[1].Path(), webUI.Path())
	}
	if p, _ := groups[1].Procs(); !slices.Equal(p, []int{cmd.Process.Pid}) {
		t.Errorf("found web-ui holding %v; want its one sleep %d", p, cmd.Process.Pid)
	}
	if len(e.groupsNamed(t, "", e.run("run"))) != 1 {
		t.Errorf("Groups(\"\") does not list the run %s", e.run("run"))
	}
	members, _ := groups[0].Procs()
	for _, pid := range append(e.tracked(pids), leader) {
		if !slices.Contains(members, pid) {
			t.Errorf("the group found again lacks PID %d (%s)", pid, proc.Cmdline(pid))
		}
	}
	for _, g := range append(groups, e.groupsNamed(t, "", e.run("run"))...) {
		res, err := cleanup.StopGroup(context.Background(), g, syscall.SIGTERM, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if g.Name() == "api" && !res.Forced {
			t.Error("the stop of api was not forced, yet a member ignores SIGTERM")
		}
	}
	for _, pid := range append(e.tracked(pids), leader) {
		if testenv.Alive(pid) {
			t.Errorf("PID %d (%s) survived the stop", pid, proc.Cmdline(pid))
		}
	}
	if groups, _ := e.open(t).Groups(e.project); len(groups) != 0 {
		t.Errorf("groups left after the stop: %v", names(groups))
	}
}

// stoppedProcess: a stopped process keeps SIGTERM pending; the stop
// (cleanup.StopGroup: SIGTERM, then SIGCONT) ends it on the signal, not by
// the kill after its 5 s grace.
func stoppedProcess(t *testing.T, e *env) {
	g, cmd := e.startSleep(t, "paused")
	cmd.Process.Signal(syscall.SIGSTOP)
	if !testenv.Eventually(5*time.Second, func() bool {
		p, err := proc.ReadProc(cmd.Process.Pid)
		return err == nil && p.State == 'T'
	}) {
		t.Fatal("the sleep did not stop")
	}
	res, err := cleanup.StopGroup(context.Background(), g, syscall.SIGTERM, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Forced {
		t.Errorf("the stopped process needed the kill after its grace (%+v)", res)
	}
}

// killWhileForking: a group that forks all the time, also while it is
// killed, is emptied by cleanup.Kill.
func killWhileForking(t *testing.T, e *env) {
	cmd := exec.Command("sh", "-c", `trap "" TERM; i=0; while [ $i -lt 500 ]; do sleep 1000 & sh -c 'sleep 1000 & sleep 1000' & i=$((i+1)); done; wait`)
	g := e.start(t, cgroup.Spec{Project: e.project, Name: "forker"}, cmd)
	go cmd.Wait()
	testenv.Eventually(5*time.Second, func() bool {
		pids, _ := g.Procs()
		return len(pids) > 30
	})
	if err := cleanup.Kill(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	if pids, _ := g.Procs(); len(pids) > 0 {
		t.Fatalf("processes left after cleanup.Kill: %v", pids)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
}

// removeRefusesPopulated: Remove of a group that holds processes returns
// ErrPopulated and leaves group and processes as they are.
func removeRefusesPopulated(t *testing.T, e *env) {
	g, cmd := e.startSleep(t, "busy")
	if err := g.Remove(); !errors.Is(err, cgroup.ErrPopulated) {
		t.Fatalf("Remove of a populated group = %v; want ErrPopulated", err)
	}
	time.Sleep(50 * time.Millisecond) // a signal sent by Remove would have been delivered
	if !testenv.Alive(cmd.Process.Pid) {
		t.Fatal("Remove harmed the group's process")
	}
	if len(e.groupsNamed(t, e.project, "busy")) != 1 {
		t.Fatal("the group is gone after a refused Remove")
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, g)
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
}

// refusesInvalidNames: names Spec.Validate refuses start nothing.
func refusesInvalidNames(t *testing.T, e *env) {
	for _, spec := range []cgroup.Spec{
		{Name: ""}, {Name: "../escape"}, {Name: "a/b"}, {Name: ".."}, {Name: "sp ace"}, {Name: "a=b"},
		{Project: "p/q", Name: "x"}, {Project: e.project, Name: strings.Repeat("x", 101)},
	} {
		if spec.Validate() == nil {
			t.Errorf("Validate(%+v) accepts it", spec)
		}
		cmd := exec.Command("true")
		if _, err := e.d.Start(context.Background(), spec, cmd); err == nil || cmd.Process != nil {
			t.Errorf("Start(%+v) = %v (started: %v); want it refused", spec, err, cmd.Process != nil)
		}
	}
}

// failedStartLeavesNothing: a command that cannot start leaves no group.
func failedStartLeavesNothing(t *testing.T, e *env) {
	cmd := exec.Command(filepath.Join(e.dir, "no-such-program"))
	if _, err := e.d.Start(context.Background(), cgroup.Spec{Project: e.project, Name: "bad"}, cmd); err == nil {
		t.Fatal("Start of a missing program succeeded")
	}
	if groups, _ := e.open(t).Groups(e.project); len(groups) != 0 {
		t.Errorf("a failed start left %v", names(groups))
	}
}

// refusesRunningService: a second start of a service whose group holds
// processes is refused, runs nothing and harms nothing.
func refusesRunningService(t *testing.T, e *env) {
	g, first := e.startSleep(t, "db")
	ran := filepath.Join(e.dir, "ran")
	second := exec.Command("touch", ran)
	if _, err := e.d.Start(context.Background(), cgroup.Spec{Project: e.project, Name: "db"}, second); err == nil {
		second.Wait()
		t.Error("a second start of a running service succeeded")
	}
	if second.Process != nil && second.ProcessState == nil {
		t.Error("the refused command's process was not reaped")
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("the refused command ran")
	}
	if pids, _ := g.Procs(); !slices.Equal(pids, []int{first.Process.Pid}) {
		t.Errorf("the refused start changed the running group: %v", pids)
	}
	if err := cleanup.Kill(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
}

// doneContext: a start whose context is done runs nothing, leaves nothing
// and says why.
func doneContext(t *testing.T, e *env) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := filepath.Join(e.dir, "ran")
	cmd := exec.Command("touch", ran)
	if _, err := e.d.Start(ctx, cgroup.Spec{Project: e.project, Name: "late"}, cmd); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a cancelled context = %v; want context.Canceled", err)
	}
	if cmd.Process != nil && cmd.ProcessState == nil {
		t.Error("a held process was not reaped")
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("the command ran")
	}
	if groups, _ := e.open(t).Groups(e.project); len(groups) != 0 {
		t.Errorf("a cancelled start left %v", names(groups))
	}
}
