package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
	"golang.org/x/sys/unix"
)

// stubbornConfig is a project whose one service, and its child, ignore
// SIGTERM: a stop sits in its grace until the kill.
func stubbornConfig(grace string) string {
	return `grace: ` + grace + `
services:
  stubborn:
    command: 'trap "" TERM; sleep 1000 & echo $! >> p/stubborn; echo $$ >> p/stubborn; wait'
`
}

// bgCgdev is a cgdev command the test runs in the background, its output
// collected as it comes.
type bgCgdev struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	exited chan struct{}
}

// startCgdev starts cgdev args in p's directory (SIGKILLed at cleanup if
// it is still running).
func (p *svcProject) startCgdev(t *testing.T, args ...string) *bgCgdev {
	t.Helper()
	return startCgdevIn(t, p.dir, args...)
}

// startCgdevIn starts cgdev args in dir (SIGKILLed at cleanup if it is
// still running).
func startCgdevIn(t *testing.T, dir string, args ...string) *bgCgdev {
	t.Helper()
	b := &bgCgdev{t: t, cmd: exec.Command(testenv.Binary(t), args...), exited: make(chan struct{})}
	b.cmd.Dir = dir
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, b.cmd.Process.Pid)
	go func() { b.cmd.Wait(); close(b.exited) }()
	return b
}

func (b *bgCgdev) output() string {
	return "stdout:\n" + b.stdout.String() + "stderr:\n" + b.stderr.String()
}

// waitFor waits until the command has written want (stdout or stderr).
func (b *bgCgdev) waitFor(want string) {
	b.t.Helper()
	has := func() bool { return strings.Contains(b.stdout.String()+b.stderr.String(), want) }
	testenv.Eventually(20*time.Second, func() bool { return has() || !b.running() })
	if !has() {
		b.t.Fatalf("cgdev %s did not write %q:\n%s", strings.Join(b.cmd.Args[1:], " "), want, b.output())
	}
}

func (b *bgCgdev) signal(sig syscall.Signal) {
	b.t.Helper()
	if err := b.cmd.Process.Signal(sig); err != nil {
		b.t.Fatalf("%v to cgdev %s: %v\n%s", sig, strings.Join(b.cmd.Args[1:], " "), err, b.output())
	}
}

// wait returns the command's exit status, failing the test when it has not
// exited within limit (it is then killed) or was killed by a signal.
func (b *bgCgdev) wait(limit time.Duration) int {
	b.t.Helper()
	select {
	case <-b.exited:
	case <-time.After(limit):
		b.cmd.Process.Kill()
		<-b.exited
		b.t.Fatalf("cgdev %s still running after %s:\n%s", strings.Join(b.cmd.Args[1:], " "), limit, b.output())
	}
	if ws := b.cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
		b.t.Fatalf("cgdev %s died of %v:\n%s", strings.Join(b.cmd.Args[1:], " "), ws.Signal(), b.output())
	}
	return b.cmd.ProcessState.ExitCode()
}

// running reports whether the command has not exited yet.
func (b *bgCgdev) running() bool {
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

const stopNote = "cgdev: stopping; press Ctrl-C again to force"

// startStubborn starts stubbornConfig's service and waits for its two PIDs.
func (p *svcProject) startStubborn() {
	p.t.Helper()
	p.mustCgdev("start")
	p.waitPids("stubborn", 2)
}

// forceStop sends first once the command's stop has begun, waits until it
// is noted, then sends second.
func (b *bgCgdev) forceStop(first, second syscall.Signal) {
	b.t.Helper()
	b.waitFor("[1/5]")
	b.signal(first)
	b.waitFor(stopNote)
	b.signal(second)
}

// assertForced fails unless the stop's report shows the kill the second
// signal forced, and the verify after it.
func (b *bgCgdev) assertForced() {
	b.t.Helper()
	if out := b.stdout.String(); !strings.Contains(out, "stubborn (forced by a second signal)") || !strings.Contains(out, "[5/5] verify: no process left") {
		b.t.Errorf("the report does not show the forced kill and the verify:\n%s", b.output())
	}
}

// TestStopSurvivesOneSignal, with each driver and each of SIGINT, SIGTERM
// and SIGHUP: a signal to `cgdev stop` while it waits out the grace of a
// service ignoring SIGTERM is noted on stderr, and the stop goes on: the
// kill after the grace, the sweep, the verify; it exits 0 with nothing left.
func TestStopSurvivesOneSignal(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
			t.Run(unix.SignalName(sig), func(t *testing.T) {
				p := newDriverProject(t, driver, stubbornConfig("3s"))
				p.startStubborn()
				stop := p.startCgdev(t, "stop")
				stop.waitFor("[1/5]")
				stop.signal(sig)
				stop.waitFor(stopNote)
				if code := stop.wait(60 * time.Second); code != 0 {
					t.Errorf("stop after %v: exit %d, want 0 (the stop completed):\n%s", sig, code, stop.output())
				}
				out := stop.stdout.String()
				if !strings.Contains(out, "stubborn (still running after its 3s grace)") || !strings.Contains(out, "[5/5] verify: no process left") {
					t.Errorf("the stop did not wait out the grace, kill and verify:\n%s", stop.output())
				}
				p.assertNothingLeft("stubborn")
			})
		}
	})
}

// TestStopSecondSignalForces, with each driver: a second signal to a stop
// sitting in a 60 s grace is --force: what is left is killed at once, and
// the stop still verifies and reports, exit 0, well before the grace.
func TestStopSecondSignalForces(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, stubbornConfig("60s"))
		p.startStubborn()
		stop := p.startCgdev(t, "stop")
		stop.forceStop(syscall.SIGINT, syscall.SIGTERM)
		if code := stop.wait(30 * time.Second); code != 0 {
			t.Errorf("stop after two signals: exit %d, want 0:\n%s", code, stop.output())
		}
		stop.assertForced()
		p.assertNothingLeft("stubborn")
	})
}

// TestRestartInterruptedStops, with each driver: a signal during restart's
// stop lets the stop finish (a second one forces it) and then does not
// start the services again: exit 128+n of the first signal, nothing left.
func TestRestartInterruptedStops(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, stubbornConfig("60s"))
		p.startStubborn()
		restart := p.startCgdev(t, "restart")
		restart.forceStop(syscall.SIGHUP, syscall.SIGINT)
		if code := restart.wait(30 * time.Second); code != 128+int(syscall.SIGHUP) {
			t.Errorf("restart interrupted by SIGHUP: exit %d, want %d:\n%s", code, 128+int(syscall.SIGHUP), restart.output())
		}
		restart.assertForced()
		if !strings.Contains(restart.stderr.String(), "not started again") {
			t.Errorf("restart does not say it did not start again:\n%s", restart.output())
		}
		p.assertNoProcessLeft("stubborn")
	})
}

// TestUpSecondCtrlCForces, with each driver: up's Ctrl-C starts the stop
// (noted as the first signal), and a second one forces it: exit 0 well
// before the 60 s grace, nothing left.
func TestUpSecondCtrlCForces(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, stubbornConfig("60s"))
		up := p.startCgdev(t, "up")
		up.waitFor("following the logs")
		p.waitPids("stubborn", 2)
		up.signal(syscall.SIGINT)
		up.waitFor(stopNote)
		up.waitFor("[1/5]")
		up.signal(syscall.SIGINT)
		if code := up.wait(30 * time.Second); code != 0 {
			t.Errorf("up after two Ctrl-C: exit %d, want 0:\n%s", code, up.output())
		}
		up.assertForced()
		p.assertNothingLeft("stubborn")
	})
}

// startReaping runs, in a new directory, a command that leaves a child
// ignoring SIGTERM and exits 4, with --grace grace, and waits until the
// command has exited: cgdev is then reaping the child, whose PID it returns.
func startReaping(t *testing.T, grace string) (*bgCgdev, int) {
	t.Helper()
	dir := t.TempDir()
	name, _ := runName("reap-signals-")
	run := startCgdevIn(t, dir, "--driver", "direct", "run", "--name", name, "--grace", grace, "--",
		"sh", "-c", `trap "" TERM; sleep 1000 & echo $! >> pids; echo $$ >> pids; exit 4`)
	var pids []int
	if !testenv.Eventually(20*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "pids"))
		pids = nil
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
		return len(pids) == 2 && !testenv.Alive(pids[1])
	}) {
		t.Fatalf("the command did not start its leftover and exit: %v\n%s", pids, run.output())
	}
	testenv.KillOnCleanup(t, pids[0])
	return run, pids[0]
}

// TestRunReapingSurvivesSignals: one SIGINT, SIGTERM or SIGHUP to `cgdev
// run` once its command has exited, while it reaps a leftover ignoring
// SIGTERM, does not end cgdev: the reaping goes on to the kill after
// --grace, the group is removed, and the exit status is the command's.
func TestRunReapingSurvivesSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			h := testenv.CgroupBase(t)
			run, left := startReaping(t, "2s")
			run.signal(sig)
			run.assertReaped(left, "with SIGKILL after the 2s grace period")
			assertNoGroups(t, h)
		})
	}
}

// TestRunReapingSecondSignalForces: two signals to `cgdev run` once its
// command has exited (the first may still have been relayed to it) force
// the reaping, as a second signal forces a stop: the leftover ignoring
// SIGTERM is killed at once, well before the 60 s grace; the group is
// removed and the exit status is the command's.
func TestRunReapingSecondSignalForces(t *testing.T) {
	h := testenv.CgroupBase(t)
	run, left := startReaping(t, "60s")
	run.signal(syscall.SIGINT)
	run.signal(syscall.SIGTERM)
	run.assertReaped(left, "with SIGKILL, forced by a second signal")
	assertNoGroups(t, h)
}

// assertReaped fails unless the run exits with its command's 4 within 30 s,
// having reaped its leftover as how says.
func (b *bgCgdev) assertReaped(left int, how string) {
	b.t.Helper()
	if code := b.wait(30 * time.Second); code != 4 {
		b.t.Errorf("run: exit %d, want the command's 4:\n%s", code, b.output())
	}
	if !strings.Contains(b.stderr.String(), "reaped 1 leftover process(es) "+how) || testenv.Alive(left) {
		b.t.Errorf("the leftover (PID %d) was not reaped %s:\n%s", left, how, b.output())
	}
}

// TestRunWithSecondSignalForces, with each driver: Ctrl-C to `cgdev run
// --with` ends the command and starts the stop of the services it started;
// a second one forces that stop: a service ignoring SIGTERM with a 60 s
// grace is killed at once, the stop verifies, nothing is left.
func TestRunWithSecondSignalForces(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, stubbornConfig("60s"))
		run := p.startCgdev(t, "run", "--with", "stubborn", "--", "sh", "-c", `echo $$ > p/cmd; exec sleep 1000`)
		p.waitPids("stubborn", 2)
		command := p.waitPids("cmd", 1)
		testenv.KillOnCleanup(t, command[0])
		run.signal(syscall.SIGINT)
		run.waitFor(stopNote)
		run.waitFor("[1/5]")
		run.signal(syscall.SIGINT)
		select {
		case <-run.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("run --with still running 30 s after the second Ctrl-C:\n%s", run.output())
		}
		if out := run.stderr.String(); !strings.Contains(out, "stubborn (forced by a second signal)") || !strings.Contains(out, "[5/5] verify: no process left") {
			t.Errorf("the stop does not show the forced kill and the verify:\n%s", run.output())
		}
		p.assertNoProcessLeft("stubborn", "cmd")
	})
}

// TestStopSecondSignalCutsSupervisorWait: a partial stop first asks the
// supervisor to release the service (up to a minute when it does not
// answer). With the supervisor stopped (SIGSTOP), the stop says it waits;
// a first signal is noted, the second cuts the wait short: the supervisor
// is killed at once and the stop goes on, done well before the minute.
func TestStopSecondSignalCutsSupervisorWait(t *testing.T) {
	p := supervisedProject(t, "direct", `services:
  a:
    command: 'echo $$ >> p/a; exec sleep 1000'
    restart: always
  b:
    command: 'echo $$ >> p/b; exec sleep 1000'
`)
	p.mustCgdev("start")
	p.waitPids("a", 1)
	sv := p.supervisor()
	if sv.PID == 0 {
		t.Fatalf("no supervisor: %+v", sv)
	}
	syscall.Kill(sv.PID, syscall.SIGSTOP)
	t.Cleanup(func() { syscall.Kill(sv.PID, syscall.SIGCONT) })
	stop := p.startCgdev(t, "stop", "a")
	stop.waitFor("waiting for the supervisor to release a")
	stop.signal(syscall.SIGINT)
	stop.waitFor(stopNote)
	stop.signal(syscall.SIGINT)
	if code := stop.wait(30 * time.Second); code != 0 {
		t.Errorf("stop a after two signals: exit %d, want 0:\n%s", code, stop.output())
	}
	if testenv.Alive(sv.PID) && testenv.State(sv.PID) != 'Z' {
		t.Errorf("the stopped supervisor (PID %d) survived the forced stop:\n%s", sv.PID, stop.output())
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("a", "b")
}
