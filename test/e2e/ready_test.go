package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
)

// TestExecCheckLeavesNothing: an exec readiness check that passes while a
// process it started runs on (in the background, in a session of its own)
// leaves nothing behind once start returns, with every driver; it runs in
// a group of its own, marked as the project's but not as the service
// (web.ready.…), so what it starts never passes for the service's.
func TestExecCheckLeavesNothing(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, `services:
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
    ready: {exec: 'setsid sleep 301 & echo $! >> p/check; echo "$CGDEV_PROJECT $CGDEV_SERVICE" > p/checkenv; true'}
`)
		p.mustCgdev("start")
		check := p.waitPids("check", 1)[0]
		testenv.KillOnCleanup(t, check)
		if testenv.Alive(check) {
			t.Errorf("the check's background process %d (%s) survived the start, markers %+v", check, proc.Cmdline(check), proc.ReadMarker(check))
		}
		b, _ := os.ReadFile(filepath.Join(p.dir, "p", "checkenv"))
		project, service, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		if project != p.id || !strings.HasPrefix(service, "web.ready.") {
			t.Errorf("the check ran with CGDEV_PROJECT=%q CGDEV_SERVICE=%q, want %s and web.ready.…", project, service, p.id)
		}
		if st := p.statusJSON(); len(st) != 1 {
			t.Errorf("status shows %d services, want web alone: %+v", len(st), st)
		}
		p.mustCgdev("stop")
		p.assertNothingLeft("web", "check")
	})
}

// TestKilledStartMidCheck: cgdev start SIGKILLed while a slow exec check
// runs (one that has started a process in a session of its own) leaves the
// check's group behind; a later stop finds it by the project, and leaves 0
// processes and 0 groups; so does a stop of the service by name, which
// takes its helper groups with it.
func TestKilledStartMidCheck(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, slowCheck)
		killStartMidCheck(t, p)
		p.mustCgdev("stop")
		p.assertNothingLeft("web", "check")
	})
	t.Run("stop web", func(t *testing.T) {
		p := newSvcProject(t, slowCheck)
		killStartMidCheck(t, p)
		p.mustCgdev("stop", "web")
		p.assertNoProcessLeft("web", "check")
	})
}

// TestInterruptedStartMidCheck, with each driver: Ctrl-C to cgdev start
// while a slow exec check runs ends the start, and by the time cgdev has
// exited the check's group is emptied: nothing it started half-way runs on
// (it once returned with the check still being killed, and exited first).
func TestInterruptedStartMidCheck(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, slowCheck)
		for _, pid := range signalStartMidCheck(t, p, syscall.SIGINT) {
			if p.ours(pid) {
				t.Errorf("check process %d (%s) runs on after the interrupted start exited", pid, proc.Cmdline(pid))
			}
		}
		p.mustCgdev("stop")
		p.assertNothingLeft("web", "check")
	})
}

// TestStartCollectsStaleHelpers, with each driver: after cgdev start was
// SIGKILLed mid-check, the next start (the service still runs: left as it
// is) finds the check's group, whose cgdev is gone by the PID in its name,
// kills what it holds and removes it, and says so; a stop then has nothing
// of it left to find.
func TestStartCollectsStaleHelpers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, slowCheck)
		killStartMidCheck(t, p)
		out := p.mustCgdev("start")
		if !strings.Contains(out, "web.ready.") || !strings.Contains(out, "is gone; killed 3 process(es) it left") {
			t.Errorf("start does not say it collected the check's group:\n%s", out)
		}
		for _, pid := range p.pids("check") {
			if p.ours(pid) {
				t.Errorf("check process %d survived the next start (%s)", pid, proc.Cmdline(pid))
			}
		}
		if !p.ours(p.pids("web")[0]) {
			t.Errorf("web, running before, was stopped by the start")
		}
		p.mustCgdev("stop")
		p.assertNothingLeft("web", "check")
	})
}

const slowCheck = `services:
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
    ready: {exec: 'echo $$ >> p/check; setsid sleep 302 & echo $! >> p/check; sleep 1000', timeout: 5m}
`

// killStartMidCheck runs cgdev start of slowCheck and SIGKILLs it once the
// check has started its processes, which must then be found as the project's.
func killStartMidCheck(t *testing.T, p *svcProject) {
	t.Helper()
	for _, pid := range signalStartMidCheck(t, p, syscall.SIGKILL) {
		if !p.ours(pid) {
			t.Fatalf("check process %d is not found as the project's (%s, markers %+v): stop could not find it", pid, proc.Cmdline(pid), proc.ReadMarker(pid))
		}
	}
}

// signalStartMidCheck runs cgdev start of slowCheck, sends it sig once the
// check has started its processes, and returns their PIDs once cgdev has
// exited.
func signalStartMidCheck(t *testing.T, p *svcProject, sig syscall.Signal) []int {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), "start")
	cmd.Dir = p.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	check := p.waitPids("check", 2)
	for _, pid := range check {
		testenv.KillOnCleanup(t, pid)
	}
	cmd.Process.Signal(sig)
	cmd.Wait()
	return check
}
