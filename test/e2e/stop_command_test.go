package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgdev/cgdev/launcher"
)

// TestStopCommandRunsBeforeSignal: a service that ignores its stop signal
// and exits only when its stop_command tells it to stops at once: the
// command ran before the signal, in the service's directory and
// environment, in a group of its own (marked db.stop.…).
func TestStopCommandRunsBeforeSignal(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, `grace: 2m
services:
  db:
    dir: sub
    env: {PGDATA: /data/x}
    command: 'trap "" TERM; echo $$ >> ../p/db; while [ ! -f ../p/stopnow ]; do sleep 0.05; done; echo by-command > ../p/how'
    stop_command: 'echo "$CGDEV_SERVICE $PGDATA" > ../p/stopenv; pwd > ../p/stopdir; touch ../p/stopnow'
`)
		if err := os.Mkdir(filepath.Join(p.dir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		p.mustCgdev("start")
		out := p.mustCgdev("stop")
		if !strings.Contains(out, `stop_command of db: "echo`) || strings.Contains(out, "still running after its") {
			t.Errorf("stop's report:\n%s", out)
		}
		read := func(f string) string {
			b, _ := os.ReadFile(filepath.Join(p.dir, "p", f))
			return strings.TrimSpace(string(b))
		}
		if read("how") != "by-command" {
			t.Errorf("db did not end through its stop_command (p/how %q)", read("how"))
		}
		if env := read("stopenv"); !strings.HasPrefix(env, "db.stop.") || !strings.HasSuffix(env, " /data/x") {
			t.Errorf("stop_command's CGDEV_SERVICE and PGDATA: %q", env)
		}
		if dir, _ := filepath.EvalSymlinks(filepath.Join(p.dir, "sub")); read("stopdir") != dir {
			t.Errorf("stop_command ran in %q, want %q", read("stopdir"), dir)
		}
		p.assertNothingLeft("db")
	})
}

// TestStopCommandHangs: a stop_command that hangs (and leaves a process in
// a session of its own) is killed after its stop_timeout, with everything
// it started; the stop is reported and goes on, and leaves nothing.
func TestStopCommandHangs(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, `services:
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
    stop_command: 'echo $$ >> p/stopcmd; setsid sleep 305 & echo $! >> p/stopcmd; echo still thinking; sleep 1000'
    stop_timeout: 500ms
`)
		p.mustCgdev("start")
		out := p.mustCgdev("stop")
		for _, want := range []string{"stop_command of web:", "still running after 500ms: killed", "stopping it by signal anyway"} {
			if !strings.Contains(out, want) {
				t.Errorf("stop's report lacks %q:\n%s", want, out)
			}
		}
		p.assertNothingLeft("web", "stopcmd")
	})
}

// TestStopCommandWithoutConfig: with the project file unreadable, stop
// cannot know the stop_commands: it says so and stops by signal.
func TestStopCommandWithoutConfig(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, `services:
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
    stop_command: 'touch p/ran'
`)
		p.mustCgdev("start")
		if err := os.WriteFile(filepath.Join(p.dir, "cgdev.yaml"), []byte("services: [oops\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := p.cgdev("stop")
		if code != 0 || !strings.Contains(out, "no service's stop_command is run: web stopped by signal alone") {
			t.Errorf("stop: exit %d\n%s%s", code, out, errs)
		}
		if _, err := os.Stat(filepath.Join(p.dir, "p", "ran")); err == nil {
			t.Errorf("a stop_command ran from a config that could not be read")
		}
		p.assertNothingLeft("web")
	})
}

// TestStopCommandOnRestartAndFailedStart: the stop_command also runs when
// the supervisor empties a crashed instance's group before restarting it,
// and when a start that is not ready in time removes a service that runs;
// not for one that exited by itself before it was ready (what its command
// names may not be its own).
func TestStopCommandOnRestartAndFailedStart(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := supervisedProject(t, driver, `services:
  web:
    command: 'echo $$ >> p/web; [ $(wc -l < p/web) -ge 2 ] && exec sleep 1000; sleep 0.5; exit 3'
    restart: on-failure
    restart_delay: 100ms
    stop_command: 'echo web >> p/stopped'
  slow:
    command: 'echo $$ >> p/slow; exec sleep 1000'
    ready: {exec: 'false', timeout: 300ms}
    stop_command: 'echo slow >> p/stopped'
  quit:
    command: 'exit 4'
    stop_command: 'echo quit >> p/stopped'
`)
		if code, out, errs := p.cgdev("start"); code != 1 {
			t.Fatalf("start: exit %d, want 1 (slow not ready, quit exited)\n%s%s", code, out, errs)
		}
		p.waitState("web", func(s launcher.ServiceStatus) bool { return s.Restarts == 1 && s.Up() })
		read := func() string {
			b, _ := os.ReadFile(filepath.Join(p.dir, "p", "stopped"))
			return strings.Join(strings.Fields(string(b)), " ")
		}
		if got := read(); got != "slow web" && got != "web slow" {
			t.Errorf("stop commands run: %q, want slow's (not ready) and web's (restarted), not quit's", got)
		}
		p.mustCgdev("stop")
		if got := read(); !strings.HasSuffix(got, " web") || strings.Count(got, "web") != 2 {
			t.Errorf("stop commands after the stop: %q", got)
		}
		p.assertNothingLeft("web", "slow")
	})
}
