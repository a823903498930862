package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneshotGatesDependant: a oneshot that exits 0 lets the service that
// depends on it (condition completed) start, and only then; what it left
// running is stopped with its group; status shows it completed (exit 0)
// and exits 0; a later start does not run it again; stop leaves nothing.
func TestOneshotGatesDependant(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, `services:
  migrate:
    type: oneshot
    command: 'echo $$ >> p/migrate; setsid sleep 303 & echo $! >> p/migrate; sleep 0.3; touch p/migrated'
  api:
    command: 'test -f p/migrated || exit 7; echo $$ >> p/api; exec sleep 1000'
    depends_on: {migrate: {condition: completed}}
`)
		out := p.mustCgdev("start")
		if !strings.Contains(out, "migrate … completed (exit 0)") {
			t.Errorf("start's output does not say migrate completed:\n%s", out)
		}
		for _, pid := range p.pids("migrate") {
			if p.ours(pid) {
				t.Errorf("migrate's PID %d runs on after it completed", pid)
			}
		}
		st := p.statusJSON()
		if m := st["migrate"]; m.State != "completed" || m.Detail != "exit 0" || m.Procs != 0 {
			t.Errorf("migrate: %+v, want completed (exit 0)", m)
		}
		if a := st["api"]; !a.Up() {
			t.Errorf("api: %+v", a)
		}
		out = p.mustCgdev("start")
		if !strings.Contains(out, "migrate … already completed") || len(p.pids("migrate")) != 2 {
			t.Errorf("a second start ran migrate again (p/migrate %v):\n%s", p.pids("migrate"), out)
		}
		p.mustCgdev("stop")
		p.assertNothingLeft("migrate", "api")
	})
}

// TestOneshotFailureBlocks: a oneshot that exits 1 blocks what depends on
// it: start fails naming it, its exit code and its log's tail; the
// dependant never runs; nothing is left running and no group remains.
func TestOneshotFailureBlocks(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, `services:
  migrate:
    type: oneshot
    command: 'echo $$ >> p/migrate; setsid sleep 304 & echo $! >> p/migrate; echo "relation users does not exist"; exit 1'
  api:
    command: 'echo $$ >> p/api; exec sleep 1000'
    depends_on: {migrate: {condition: completed}}
`)
		p.startFails("oneshot migrate failed: exit status 1", "relation users does not exist", "api … SKIPPED: not started: it depends on migrate, which failed")
		if _, err := os.Stat(filepath.Join(p.dir, "p", "api")); err == nil {
			t.Errorf("api ran although migrate failed")
		}
		p.assertNoProcessLeft("migrate")
		if m := p.statusJSON()["migrate"]; m.State != "exited" || m.Detail != "code 1" {
			t.Errorf("migrate: %+v, want exited (code 1)", m)
		}
		p.mustCgdev("stop")
		p.assertNothingLeft("migrate")
	})
}

// TestOneshotTimeout, with each driver: a oneshot that hangs past its
// timeout (a migration waiting on a lock) has its group stopped, the stop
// signal first (its TERM trap runs) and what ignores it killed after the
// grace; start fails naming the timeout, the dependant is skipped, nothing
// is left running, and status shows how it ended.
func TestOneshotTimeout(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, `services:
  migrate:
    type: oneshot
    timeout: 1s
    grace: 1s
    command: 'trap "touch p/rolledback; exit 1" TERM; echo $$ >> p/migrate; setsid sh -c "trap \"\" TERM; sleep 305" & echo $! >> p/migrate; while :; do sleep 0.1; done'
  api:
    command: 'echo $$ >> p/api; exec sleep 1000'
    depends_on: {migrate: {condition: completed}}
`)
		p.startFails("oneshot migrate still running after its timeout of 1s: stopped", "api … SKIPPED")
		if _, err := os.Stat(filepath.Join(p.dir, "p", "rolledback")); err != nil {
			t.Errorf("migrate did not get the stop signal before the kill (no p/rolledback)")
		}
		if _, err := os.Stat(filepath.Join(p.dir, "p", "api")); err == nil {
			t.Errorf("api ran although migrate timed out")
		}
		p.assertNoProcessLeft("migrate")
		if m := p.statusJSON()["migrate"]; m.State == "completed" || m.Up() {
			t.Errorf("migrate: %+v, want a failed end", m)
		}
		p.mustCgdev("stop")
		p.assertNothingLeft("migrate")
	})
}

// startFails runs cgdev start and fails the test unless it exits non-zero
// with each of wants in its output.
func (p *svcProject) startFails(wants ...string) {
	p.t.Helper()
	code, out, errs := p.cgdev("start")
	all := out + errs
	if code == 0 {
		p.t.Fatalf("start exited 0, want a failure:\n%s", all)
	}
	for _, want := range wants {
		if !strings.Contains(all, want) {
			p.t.Errorf("start's output lacks %q:\n%s", want, all)
		}
	}
}

// TestDependsOnStartedVsReady: condition started lets a dependant start
// as soon as its dependency runs, before its readiness check passes; the
// default (ready) waits for the check. db becomes ready only once early
// has started, so a started that waited for ready would never finish.
func TestDependsOnStartedVsReady(t *testing.T) {
	p := newSvcProject(t, `services:
  db:
    command: 'while [ ! -f p/early ]; do sleep 0.05; done; touch p/dbready; echo $$ >> p/db; exec sleep 1000'
    ready: {exec: 'test -f p/dbready', timeout: 2m}
  early:
    command: 'if [ -f p/dbready ]; then echo ready; else echo notready; fi > p/early; echo $$ >> p/pids; exec sleep 1000'
    depends_on: {db: {condition: started}}
  late:
    command: 'if [ -f p/dbready ]; then echo ready; else echo notready; fi > p/late; echo $$ >> p/pids; exec sleep 1000'
    depends_on: [db]
`)
	p.mustCgdev("start")
	for file, want := range map[string]string{"early": "notready", "late": "ready"} {
		b, _ := os.ReadFile(filepath.Join(p.dir, "p", file))
		if got := strings.TrimSpace(string(b)); got != want {
			t.Errorf("%s saw db %q, want %q", file, got, want)
		}
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("db", "pids")
}

// TestOneshotOnFailure: restart: on-failure runs a failing oneshot again
// during start, at its delays, until it exits 0, and not once more after.
func TestOneshotOnFailure(t *testing.T) {
	p := newSvcProject(t, `services:
  seed:
    type: oneshot
    command: 'echo $$ >> p/seed; [ $(wc -l < p/seed) -ge 3 ]'
    restart: on-failure
    restart_delay: 50ms
`)
	out := p.mustCgdev("start")
	if n := len(p.pids("seed")); n != 3 || !strings.Contains(out, "seed: exited (code 1); running it again in 100ms (restart 2)") {
		t.Errorf("seed ran %d times, want 3:\n%s", n, out)
	}
	if s := p.statusJSON()["seed"]; s.State != "completed" {
		t.Errorf("seed: %+v", s)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("seed")
}
