package e2e_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// supervisedProject is newDriverProject for tests whose services a
// supervisor watches; with the systemd driver, a scope of the project left
// when the test ends is stopped (--force) before newDriverProject's check
// fails the test for it.
func supervisedProject(t *testing.T, driver, config string) *svcProject {
	t.Helper()
	p := newDriverProject(t, driver, config)
	if driver == "systemd" {
		t.Cleanup(func() {
			if len(scopes(t, p.scopePrefix())) > 0 {
				p.cgdev("stop", "--force")
			}
		})
	}
	return p
}

// waitState polls status --json until service name satisfies ok, and
// returns it; it fails the test after 90 s (a machine loaded by other test
// runs is slow: the conditions are not about speed).
func (p *svcProject) waitState(name string, ok func(s launcher.ServiceStatus) bool) launcher.ServiceStatus {
	p.t.Helper()
	var last launcher.ServiceStatus
	if !testenv.Eventually(90*time.Second, func() bool {
		last = p.statusJSON()[name]
		if ok(last) {
			return true
		}
		time.Sleep(50 * time.Millisecond) // each look is a cgdev process: do not add load
		return false
	}) {
		log, _ := os.ReadFile(filepath.Join(p.dir, ".cgdev", "logs", "_supervisor.log"))
		p.t.Fatalf("status of %s never got there; last: %+v\nevents:\n%s\nsupervisor's log:\n%s", name, last, p.events(), log)
	}
	return last
}

// supervisor reads status --json's supervisor object.
func (p *svcProject) supervisor() launcher.Supervision {
	p.t.Helper()
	_, out, _ := p.cgdev("status", "--json")
	var st struct {
		Supervisor launcher.Supervision `json:"supervisor"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		p.t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st.Supervisor
}

func (p *svcProject) events() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, ".cgdev", "events.log"))
	return string(b)
}

func code(s launcher.ServiceStatus) int {
	if s.LastExit == nil || s.LastExit.Code == nil {
		return -1
	}
	return *s.LastExit.Code
}

// crashLoop: crash exits 3 each time, after the settle period so that each
// start counts as started; flaky fails twice, then stays up.
const crashLoop = `services:
  crash:
    command: 'echo $$ >> p/crash; sleep 1; exit 3'
    restart: on-failure
    restart_delay: {initial: 100ms, max: 300ms}
    max_restarts: 3
  flaky:
    command: 'n=$(cat p/flaky 2>/dev/null | wc -l); echo $$ >> p/flaky; if [ "$n" -ge 2 ]; then exec sleep 1000; fi; sleep 1; exit 1'
    restart: on-failure
    restart_delay: 100ms
`

// TestSuperviseCrashLoop: a crashing service is restarted with a doubling
// delay, capped, shows its restart count, and after max_restarts within the
// window ends failed and stays down; one that recovers runs on, showing its
// restarts and how it last ended.
func TestSuperviseCrashLoop(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := supervisedProject(t, driver, crashLoop)
		out := p.mustCgdev("start")
		if !strings.Contains(out, "cgdev: supervisor started, PID") {
			t.Errorf("start output:\n%s", out)
		}
		crash := p.waitState("crash", func(s launcher.ServiceStatus) bool { return s.State == "failed" })
		if !strings.HasPrefix(crash.Detail, "crash loop: 3 restarts in") || crash.Restarts != 3 || code(crash) != 3 {
			t.Errorf("crash: %+v", crash)
		}
		if n := len(p.pids("crash")); n != 4 {
			t.Errorf("crash ran %d times, want 4 (the start and 3 restarts)", n)
		}
		flaky := p.waitState("flaky", func(s launcher.ServiceStatus) bool { return s.State == "running" && s.Restarts == 2 })
		if code(flaky) != 1 || flaky.PID != p.pids("flaky")[2] {
			t.Errorf("flaky: %+v, pids %v", flaky, p.pids("flaky"))
		}
		ev := p.events()
		for _, want := range []string{
			"crash: exited (code 3); restarting in 100ms (restart 1)",
			"crash: exited (code 3); restarting in 200ms (restart 2)",
			"crash: exited (code 3); restarting in 300ms (restart 3)",
			"crash: exited (code 3); failed (crash loop: 3 restarts in 1m00s): it stays down",
		} {
			if !strings.Contains(ev, want) {
				t.Errorf("events lack %q:\n%s", want, ev)
			}
		}
		_, table, _ := p.cgdev("status")
		for _, want := range []string{"failed (crash loop: 3 restarts in 1m00s)", "flaky: last exit exited (code 1)", "supervision: on, PID"} {
			if !strings.Contains(table, want) {
				t.Errorf("status lacks %q:\n%s", want, table)
			}
		}
		if n := len(p.pids("crash")); n != 4 {
			t.Errorf("crash ran %d times after giving up, want 4", n)
		}
		p.mustCgdev("stop")
		p.assertNothingLeft("crash", "flaky")
	})
}

// TestSuperviseKill9: kill -9 of a main process whose child holds the group
// shows as degraded (restart: no) with how the main process ended; with
// restart: on-failure the group is emptied (the old child goes) and the
// service started again, the SIGKILL shown as its last exit.
func TestSuperviseKill9(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := supervisedProject(t, driver, `services:
  keep:
    command: 'sleep 1000 & echo $$ >> p/keep; wait'
  back:
    command: 'sleep 1000 & echo $! >> p/back-child; echo $$ >> p/back; wait'
    restart: on-failure
    restart_delay: 100ms
`)
		p.mustCgdev("start")
		syscall.Kill(p.waitPids("keep", 1)[0], syscall.SIGKILL)
		keep := p.waitState("keep", func(s launcher.ServiceStatus) bool { return s.State == "degraded" && s.LastExit != nil })
		if keep.Detail != "main killed (SIGKILL), 1 process(es) left" || keep.Procs != 1 {
			t.Errorf("keep after kill -9 of its main process: %+v", keep)
		}
		first := p.waitPids("back", 1)[0]
		child := p.waitPids("back-child", 1)[0]
		syscall.Kill(first, syscall.SIGKILL)
		back := p.waitState("back", func(s launcher.ServiceStatus) bool { return s.State == "running" && s.Restarts == 1 })
		if back.LastExit == nil || back.LastExit.Signal != "SIGKILL" || back.PID == first {
			t.Errorf("back after kill -9: %+v", back)
		}
		if p.ours(child) {
			t.Errorf("the crashed instance's child %d survived the restart", child)
		}
		// Stop: the supervisor first, then the services with the usual
		// phases, each log ending with its stopped line.
		out := p.mustCgdev("stop")
		if sv, svc := strings.Index(out, "supervisor: stopped first"), strings.Index(out, "back"); sv < 0 || svc < sv {
			t.Errorf("stop did not stop the supervisor before the services:\n%s", out)
		}
		for _, name := range []string{"keep", "back"} {
			b, _ := os.ReadFile(filepath.Join(p.dir, ".cgdev", "logs", name+".log"))
			if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); !strings.HasPrefix(lines[len(lines)-1], "--- cgdev: stopped "+name+" at ") {
				t.Errorf("%s's log does not end with its stopped line:\n%s", name, b)
			}
		}
		p.assertNothingLeft("keep", "back", "back-child")
	})
}

// TestSuperviseRestartNo: with a supervisor running, a service with
// restart: no that exits stays down and status says how it ended.
func TestSuperviseRestartNo(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := supervisedProject(t, driver, `services:
  once:
    command: 'echo $$ >> p/once; sleep 1; exit 3'
  steady:
    command: 'echo $$ >> p/steady; exec sleep 1000'
    restart: always
`)
		p.mustCgdev("start")
		once := p.waitState("once", func(s launcher.ServiceStatus) bool { return s.State == "exited" && s.LastExit != nil })
		if once.Detail != "code 3" || code(once) != 3 {
			t.Errorf("once: %+v", once)
		}
		if !strings.Contains(p.events(), "once: exited (code 3); restart: no, so it stays down") {
			t.Errorf("events:\n%s", p.events())
		}
		if n := len(p.pids("once")); n != 1 {
			t.Errorf("once ran %d times", n)
		}
		p.mustCgdev("stop")
		p.assertNothingLeft("once", "steady")
	})
}

// TestWithoutSupervisor: a project that needs no supervisor gets none; the
// kernel still shows a main process killed while its child runs on
// (degraded), and an exit after the start (exited, code unknown, saying
// what would record it).
func TestWithoutSupervisor(t *testing.T) {
	p := newSvcProject(t, `services:
  keep:
    command: 'sleep 1000 & echo $$ >> p/keep; wait'
  once:
    command: 'echo $$ >> p/once; sleep 1; exit 3'
`)
	out := p.mustCgdev("start")
	if strings.Contains(out, "supervisor") {
		t.Errorf("a supervisor was started for a project that needs none:\n%s", out)
	}
	if sv := p.supervisor(); sv.State != "none" {
		t.Errorf("supervisor: %+v", sv)
	}
	syscall.Kill(p.waitPids("keep", 1)[0], syscall.SIGKILL)
	keep := p.waitState("keep", func(s launcher.ServiceStatus) bool { return s.State == "degraded" })
	if keep.Detail != "main exited, 1 process(es) left" {
		t.Errorf("keep: %+v", keep)
	}
	once := p.waitState("once", func(s launcher.ServiceStatus) bool { return s.State == "exited" })
	if !strings.HasPrefix(once.Detail, "code unknown: no supervisor watched it") {
		t.Errorf("once: %+v", once)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("keep", "once")
}

// TestSuperviseLiveness: a failing liveness check restarts a service with a
// restart policy, and makes one without it unhealthy (status exit 3) until
// it passes again.
func TestSuperviseLiveness(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := supervisedProject(t, driver, `services:
  live:
    command: 'rm -f p/sick; echo $$ >> p/live; exec sleep 1000'
    restart: on-failure
    restart_delay: 100ms
    healthcheck: {exec: 'test ! -f p/sick', interval: 200ms, retries: 2}
  lax:
    command: 'exec sleep 1000'
    healthcheck: {exec: 'test ! -f p/lax-sick', interval: 200ms, retries: 2}
`)
		p.mustCgdev("start")
		first := p.waitPids("live", 1)[0]
		os.WriteFile(filepath.Join(p.dir, "p", "sick"), nil, 0o644)
		live := p.waitState("live", func(s launcher.ServiceStatus) bool { return s.Restarts == 1 && s.State == "running" })
		if live.LastExit == nil || !strings.Contains(live.LastExit.Reason, "liveness check failed 2 times in a row") || live.PID == first {
			t.Errorf("live after its check failed: %+v, first %d, pids %v\nevents:\n%s", live, first, p.pids("live"), p.events())
		}
		os.WriteFile(filepath.Join(p.dir, "p", "lax-sick"), nil, 0o644)
		lax := p.waitState("lax", func(s launcher.ServiceStatus) bool { return s.State == "unhealthy" })
		if !strings.Contains(lax.Health, "liveness check failed 2 times in a row") {
			t.Errorf("lax: %+v", lax)
		}
		os.Remove(filepath.Join(p.dir, "p", "lax-sick"))
		p.waitState("lax", func(s launcher.ServiceStatus) bool { return s.State == "running" })
		p.mustCgdev("stop")
		p.assertNothingLeft("live")
	})
}

// TestSuperviseSIGKILLSupervisor: the supervisor killed with SIGKILL leaves
// the services running; status says supervision is off and how to resume
// it; stop still stops everything, also with every state file deleted. A
// later start resumes supervision, adopting what runs, whose restart policy
// then applies again.
func TestSuperviseSIGKILLSupervisor(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := supervisedProject(t, driver, `services:
  a:
    command: 'sleep 1000 & echo $! >> p/a; echo $$ >> p/a; wait'
    restart: always
    restart_delay: 100ms
  b:
    command: 'sleep 1000 & echo $! >> p/b; echo $$ >> p/b; wait'
    restart: on-failure
`)
		p.mustCgdev("start")
		sv := p.supervisor()
		if sv.State != "on" || sv.PID == 0 {
			t.Fatalf("supervisor: %+v", sv)
		}
		if st := p.statusJSON(); len(st) != 2 || st["a"].Procs != 2 {
			t.Errorf("status lists the supervisor, or counts it in a service: %+v", st)
		}
		if out := p.mustCgdev("ps"); strings.Contains(out, "__supervise") || !strings.Contains(out, "supervision: on, PID "+strconv.Itoa(sv.PID)) {
			t.Errorf("ps:\n%s", out)
		}
		syscall.Kill(sv.PID, syscall.SIGKILL)
		if !testenv.Eventually(10*time.Second, func() bool { return p.supervisor().State == "off" }) {
			t.Fatalf("supervisor after SIGKILL: %+v", p.supervisor())
		}
		pids := append(p.waitPids("a", 2), p.waitPids("b", 2)...)
		for _, pid := range pids {
			if !p.ours(pid) {
				t.Errorf("PID %d died with the supervisor", pid)
			}
		}
		code, table, _ := p.cgdev("status")
		if code != 0 || !strings.Contains(table, "supervision: off:") || !strings.Contains(table, "run `cgdev start` to resume") {
			t.Errorf("status after the supervisor's SIGKILL: exit %d\n%s", code, table)
		}

		out := p.mustCgdev("start")
		if !strings.Contains(out, "supervision was off; resumed") || !strings.Contains(out, "already running") {
			t.Errorf("start after the supervisor's SIGKILL:\n%s", out)
		}
		syscall.Kill(p.pids("a")[1], syscall.SIGKILL)
		a := p.waitState("a", func(s launcher.ServiceStatus) bool { return s.State == "running" && s.Restarts == 1 })
		if a.LastExit == nil || !a.LastExit.Unknown {
			t.Errorf("a, adopted, then killed: %+v (how it ended is unknown to its adopter)", a)
		}

		// SIGKILL again, and every state file gone: stop finds it all.
		syscall.Kill(p.supervisor().PID, syscall.SIGKILL)
		for _, d := range []string{".cgdev", ".pids"} {
			must(t, os.RemoveAll(filepath.Join(p.dir, d)))
		}
		if !testenv.Eventually(10*time.Second, func() bool { return p.supervisor().State == "off" }) {
			t.Errorf("supervisor after SIGKILL, without state files: %+v", p.supervisor())
		}
		p.mustCgdev("stop")
		p.assertNothingLeft("a", "b")
	})
}

// TestSuperviseWatch: a change under watch.paths restarts the service
// (group emptied, started again); ignored names and cgdev's own files do
// not; new directories are watched too.
func TestSuperviseWatch(t *testing.T) {
	p := newSvcProject(t, `services:
  w:
    command: 'echo $$ >> p/w; echo log-line; exec sleep 1000'
    watch: {paths: [src], ignore: ["*.tmp"], debounce: 100ms}
`)
	must(t, os.Mkdir(filepath.Join(p.dir, "src"), 0o755))
	p.mustCgdev("start")
	first := p.waitPids("w", 1)[0]
	must(t, os.WriteFile(filepath.Join(p.dir, "src", "x.tmp"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(p.dir, "src", "a.js"), []byte("1"), 0o644))
	w := p.waitState("w", func(s launcher.ServiceStatus) bool { return s.Restarts == 1 && s.State == "running" })
	if w.LastExit == nil || w.LastExit.Reason != "file change" || w.PID == first || p.ours(first) {
		t.Errorf("w after a change: %+v", w)
	}
	if !strings.Contains(p.events(), "w: src/a.js changed; restarting") {
		t.Errorf("events:\n%s", p.events())
	}
	must(t, os.Mkdir(filepath.Join(p.dir, "src", "sub"), 0o755))
	p.waitState("w", func(s launcher.ServiceStatus) bool { return s.Restarts == 2 && s.State == "running" })
	must(t, os.WriteFile(filepath.Join(p.dir, "src", "sub", "b.js"), nil, 0o644))
	p.waitState("w", func(s launcher.ServiceStatus) bool { return s.Restarts == 3 && s.State == "running" })
	p.mustCgdev("stop")
	p.assertNothingLeft("w")
}

// TestUpShowsTheStory: up shows a service's output from this start (a line
// written before up began following included) and one line for each exit,
// restart and give-up.
func TestUpShowsTheStory(t *testing.T) {
	p := newSvcProject(t, `services:
  early:
    command: 'echo early-line-$$; echo $$ >> p/early; sleep 1; exit 3'
    restart: on-failure
    restart_delay: 100ms
    max_restarts: 1
`)
	cmd := exec.Command(testenv.Binary(t), "up")
	cmd.Dir = p.dir
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	first := strconv.Itoa(p.waitPids("early", 1)[0])
	for _, want := range []string{
		"early | early-line-" + first,
		"cgdev | early: exited (code 3); restarting in 100ms (restart 1)",
		"cgdev | early: restarted (restart 1), running (PID ",
		"cgdev | early: exited (code 3); failed (crash loop: 1 restarts in 1m00s)",
	} {
		if !testenv.Eventually(30*time.Second, func() bool { return strings.Contains(out.String(), want) }) {
			t.Fatalf("up output lacks %q:\n%s", want, out.String())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("up: %v\n%s", err, out.String())
	}
	p.assertNothingLeft("early")
}

// TestSuperviseStopAndRestartSome: a partial stop releases its services
// from the supervisor (a stopped service with restart: always is not
// started again) and leaves it watching the others; restart replaces one
// service under the same supervisor; start of a service given up on starts
// it afresh, its restart count reset.
func TestSuperviseStopAndRestartSome(t *testing.T) {
	p := newSvcProject(t, `services:
  a:
    command: 'echo $$ >> p/a; exec sleep 1000'
    restart: always
    restart_delay: 100ms
  b:
    command: 'echo $$ >> p/b; exec sleep 1000'
    restart: always
    restart_delay: 100ms
  crash:
    command: 'echo $$ >> p/crash; sleep 1; exit 3'
    restart: on-failure
    restart_delay: 100ms
    max_restarts: 1
`)
	p.mustCgdev("start")
	sv := p.supervisor()
	out := p.mustCgdev("stop", "a")
	if strings.Contains(out, "supervisor: stopped") {
		t.Errorf("a partial stop stopped the supervisor:\n%s", out)
	}
	syscall.Kill(p.waitPids("b", 1)[0], syscall.SIGKILL)
	p.waitState("b", func(s launcher.ServiceStatus) bool { return s.State == "running" && s.Restarts == 1 })
	if st := p.statusJSON()["a"]; st.State != "stopped" || len(p.pids("a")) != 1 {
		t.Errorf("a after stop a: %+v, started %d times", st, len(p.pids("a")))
	}
	if now := p.supervisor(); now.PID != sv.PID {
		t.Errorf("supervisor %+v after a partial stop, was %+v", now, sv)
	}

	p.mustCgdev("restart", "b")
	b := p.waitState("b", func(s launcher.ServiceStatus) bool { return s.State == "running" && s.PID == p.pids("b")[2] })
	if b.Restarts != 0 {
		t.Errorf("b after restart by hand: %+v, want its restart count reset", b)
	}
	syscall.Kill(b.PID, syscall.SIGKILL)
	p.waitState("b", func(s launcher.ServiceStatus) bool { return s.State == "running" && s.Restarts == 1 })

	p.waitState("crash", func(s launcher.ServiceStatus) bool { return s.State == "failed" })
	p.mustCgdev("start", "crash")
	crash := p.statusJSON()["crash"]
	if crash.Restarts != 0 || len(p.pids("crash")) != 3 || crash.State == "failed" {
		t.Errorf("crash after start by hand: %+v, pids %v", crash, p.pids("crash"))
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("a", "b", "crash")
}

// TestSuperviseNamedStopOfAll: a stop naming every running service leaves
// the supervisor nothing to watch, and takes it down as a full stop does
// (it once lingered until it idled out 5 s later): by the time stop has
// returned its group is empty, whatever the driver. A restart naming them
// all keeps it: they start again at once under the same supervisor.
func TestSuperviseNamedStopOfAll(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := supervisedProject(t, driver, `services:
  a:
    command: 'echo $$ >> p/a; exec sleep 1000'
    restart: always
  b:
    command: 'echo $$ >> p/b; exec sleep 1000'
`)
		p.mustCgdev("start")
		sv := p.supervisor()
		if sv.State != "on" || sv.PID == 0 {
			t.Fatalf("no supervisor after start: %+v", sv)
		}
		p.mustCgdev("restart", "a", "b")
		if now := p.supervisor(); now.PID != sv.PID {
			t.Errorf("supervisor %+v after restart a b, was %+v: it should have stayed", now, sv)
		}
		out := p.mustCgdev("stop", "a", "b")
		if now := p.supervisor(); now.State == "on" {
			t.Errorf("supervisor still running (%+v) after stop a b left nothing to watch:\n%s", now, out)
		}
		if !strings.Contains(out, "supervisor: stopped") {
			t.Errorf("stop a b does not say it stopped the supervisor:\n%s", out)
		}
		p.assertNothingLeft("a", "b")
	})
}
