package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// stoppedLine is the last "--- cgdev: stopped" line of service's log.
func (p *svcProject) stoppedLine(service string) string {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, ".cgdev", "logs", service+".log"))
	if err != nil {
		p.t.Fatal(err)
	}
	line := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "--- cgdev: stopped "+service+" at ") {
			line = l
		}
	}
	if line == "" {
		p.t.Fatalf("no stopped line in the log of %s: %q", service, tail(string(b), 300))
	}
	return line
}

// TestStoppedLineSaysForced, with each driver: the stopped line a stop
// writes in a service's log says how the service was stopped: a kill forced
// by stop --force or by a second signal is said to be forced, never "after
// its grace", which is what a kill after a grace that ran out says.
func TestStoppedLineSaysForced(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		cases := []struct {
			name, grace string
			stop        func(p *svcProject)
			want        string
		}{
			{"force", "60s", func(p *svcProject) { p.mustCgdev("stop", "--force") }, "(forced: killed at once by stop --force in "},
			{"second-signal", "60s", func(p *svcProject) {
				stop := p.startCgdev(t, "stop")
				stop.forceStop(syscall.SIGINT, syscall.SIGINT)
				if code := stop.wait(30 * time.Second); code != 0 {
					t.Errorf("stop after two signals: exit %d:\n%s", code, stop.output())
				}
			}, "(forced: killed during its grace by a second signal in "},
			{"grace", "1s", func(p *svcProject) { p.mustCgdev("stop") }, "(killed after its grace in "},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p := newDriverProject(t, driver, stubbornConfig(c.grace))
				p.startStubborn()
				c.stop(p)
				if line := p.stoppedLine("stubborn"); !strings.Contains(line, c.want) {
					t.Errorf("stopped line %q, want it to say %q", line, c.want)
				}
				p.assertNothingLeft("stubborn")
			})
		}
	})
}

// TestUptimeOfThisInstance, with each driver: status's uptime is that of
// the instance running now, and says so from the first moment: right after
// a start it is the time since `started` (never "0ms" for a service up
// for 400 ms, nor left out of --json), and while the supervisor restarts
// a service (its new instance waiting to be ready), neither started nor
// uptime are those of the instance that ended.
func TestUptimeOfThisInstance(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, `services:
  flaky:
    command: 'echo $$ >> p/flaky; sleep 1; echo up; sleep 1; exit 1'
    ready: {log: up, timeout: 30s}
    restart: always
    restart_delay: 100ms
`)
		p.mustCgdev("start")
		s := p.statusJSON()["flaky"]
		if s.Procs > 0 && s.State == "ready" {
			up, since := time.Duration(s.Uptime), time.Since(s.Started)
			if up <= 0 || up > since || since-up > time.Second {
				t.Errorf("uptime %v, want the time since started %v (%v ago)", up, s.Started, since)
			}
		}
		// The first instance ends 2 s after it started; its successor is
		// "restarting (1)" for the second it takes to be ready.
		var seen bool
		testenv.Eventually(60*time.Second, func() bool {
			s = p.statusJSON()["flaky"]
			if s.State == "restarting" && s.Procs > 0 && s.LastExit != nil && len(p.pids("flaky")) >= 2 {
				seen = true
				if !s.Started.IsZero() && s.Started.Before(s.LastExit.At) {
					t.Errorf("restarting: started %v, before the last instance ended (%v): the ended instance's start", s.Started, s.LastExit.At)
				}
				if up := time.Duration(s.Uptime); up > time.Since(s.LastExit.At) {
					t.Errorf("restarting: uptime %v, more than the %v since the last instance ended", up, time.Since(s.LastExit.At))
				}
			}
			return seen || s.Restarts >= 2
		})
		if !seen {
			t.Fatalf("never saw flaky restarting with its new instance running: %+v", s)
		}
		p.mustCgdev("stop")
		p.assertNothingLeft("flaky")
	})
}

// TestStopNamedForgetsRecords: `cgdev stop SVC` clears the exit records of
// the services it names as a full stop does (a record being written when
// its writer died included), so that status then says stopped, not how an
// earlier instance ended; the other services' records stay, and the
// directory goes with the last record.
func TestStopNamedForgetsRecords(t *testing.T) {
	p := newSvcProject(t, `services:
  crashy:
    command: 'sleep 1; exit 3'
    restart: on-failure
    restart_delay: 100ms
    max_restarts: 1
  once:
    command: 'sleep 1; exit 4'
  steady:
    command: exec sleep 1000
    restart: always
`)
	p.cgdev("start")
	var st map[string]launcher.ServiceStatus
	if !testenv.Eventually(60*time.Second, func() bool {
		st = p.statusJSON()
		return st["crashy"].State == "failed" && st["once"].State == "exited"
	}) {
		t.Fatalf("crashy not failed, once not exited: %+v", st)
	}
	records := filepath.Join(p.dir, ".cgdev", "services")
	// What a writer killed mid-write leaves (safefile's temporary name).
	writeFile(t, filepath.Join(records, ".crashy.json.tmp4711"), "{")
	p.mustCgdev("stop", "crashy", "once")
	st = p.statusJSON()
	for _, n := range []string{"crashy", "once"} {
		if st[n].State != "stopped" || st[n].LastExit != nil || st[n].Restarts != 0 {
			t.Errorf("%s after stop %s: %s (last exit %v, restarts %d), want stopped with no story", n, n, st[n].StateText(), st[n].LastExit, st[n].Restarts)
		}
	}
	if st["steady"].State != "running" {
		t.Errorf("steady: %s, want running", st["steady"].StateText())
	}
	left, _ := filepath.Glob(filepath.Join(records, "*")) // dotfiles too
	for _, f := range left {
		if b := filepath.Base(f); strings.Contains(b, "crashy") || strings.Contains(b, "once") {
			t.Errorf("%s left behind by stop crashy once", f)
		}
	}
	p.mustCgdev("stop", "steady")
	if _, err := os.Stat(records); !os.IsNotExist(err) {
		names, _ := os.ReadDir(records)
		t.Errorf("%s kept after every service was stopped by name (%v): a full stop removes it", records, names)
	}
	p.mustCgdev("stop") // the supervisor, idle, would leave on its own a few seconds later
	p.assertNothingLeft()
}

// TestRunsSeenWithRunList: a `cgdev run` started in a project's directory
// is no service of the project: status and ps show the project's services
// only, and `cgdev run --list` shows the run (docs/cli.md says where runs
// are seen).
func TestRunsSeenWithRunList(t *testing.T) {
	p := newSvcProject(t, `services:
  web:
    command: exec sleep 1000
`)
	p.mustCgdev("start")
	name, _ := runName("seen-")
	run := p.startCgdev(t, "run", "--name", name, "--", "sh", "-c", "echo started; exec sleep 1000")
	run.waitFor("started")
	out, _ := listRuns(t)
	listed := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, name) {
			listed = strings.Fields(l)[0]
		}
	}
	if listed == "" {
		t.Fatalf("run --list does not show run %s:\n%s", name, out)
	}
	for _, cmd := range []string{"status", "ps"} {
		if out := p.mustCgdev(cmd); strings.Contains(out, name) || !strings.Contains(out, "web") {
			t.Errorf("cgdev %s shows the run %s, or not web:\n%s", cmd, name, out)
		}
	}
	if code, stdout, stderr := cgdevRun(t, "run", "--stop", listed, "--grace", "5s"); code != 0 {
		t.Fatalf("run --stop %s: exit %d\n%s%s", listed, code, stdout, stderr)
	}
	run.wait(30 * time.Second)
	p.mustCgdev("stop")
	p.assertNothingLeft()
}
