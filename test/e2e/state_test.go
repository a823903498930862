package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
)

// TestStartDropsDeadMainProcess: a service whose group runs on after its
// main process exited (a daemonizing command) is "already running" to the
// next start, which must not write the dead main PID to .pids/ again: by
// then it may name any process, and scripts signal what .pids/ lists.
func TestStartDropsDeadMainProcess(t *testing.T) {
	p := newSvcProject(t, `services:
  daemon:
    command: 'echo $$ >> p/main; (sh -c "echo \$\$ >> p/daemon; exec sleep 1000" &) ; exit 0'
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
`)
	p.mustCgdev("start")
	main := p.waitPids("main", 1)[0]
	p.waitPids("daemon", 1)
	web := p.waitPids("web", 1)[0]
	if !testenv.Eventually(5*time.Second, func() bool { return !testenv.Alive(main) }) {
		t.Fatalf("the daemon's main process %d did not exit", main)
	}
	out := p.mustCgdev("start")
	if !strings.Contains(out, "already running") {
		t.Errorf("second start:\n%s", out)
	}
	pids, err := os.ReadFile(filepath.Join(p.dir, ".pids", "services.pids"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains("\n"+string(pids), "\n"+strconv.Itoa(main)+"\n") {
		t.Errorf(".pids/services.pids lists %d, the daemon's exited main process:\n%s", main, pids)
	}
	if !strings.Contains(string(pids), strconv.Itoa(web)+"\n") {
		t.Errorf(".pids/services.pids lacks web's PID %d:\n%s", web, pids)
	}
	if st := p.statusJSON()["daemon"]; st.State != "running" {
		t.Errorf("status of daemon after the second start: %+v", st)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("daemon", "web")
}

// TestDaemonizingAfterSettle: whether a main process that exits 0 leaving
// its work behind is a daemonizing command (running) or a main that died
// (degraded) does not depend on how fast the machine is. Here late's main
// exits 0 after the 300 ms settle period, but while `cgdev start` still
// waits (for gate, ready only once late's main is gone): a daemonizer. A
// main that exits 0 after start has ended is degraded.
func TestDaemonizingAfterSettle(t *testing.T) {
	p := newSvcProject(t, `services:
  late:
    command: 'echo $$ >> p/late; sleep 1000 & sleep 0.4; exit 0'
  gate:
    command: 'exec sleep 1000'
    ready: {exec: 'test -s p/late && ! kill -0 "$(cat p/late)" 2>/dev/null', timeout: 2m}
  after:
    command: 'echo $$ >> p/after; sleep 1000 & until test -e p/go; do sleep 0.05; done; exit 0'
`)
	p.mustCgdev("start")
	after := p.waitPids("after", 1)[0]
	must(t, os.WriteFile(filepath.Join(p.dir, "p", "go"), nil, 0o644))
	if !testenv.Eventually(30*time.Second, func() bool { return !testenv.Alive(after) }) {
		t.Fatalf("after's main process %d did not exit", after)
	}
	st := p.statusJSON()
	if s := st["late"]; s.State != "running" || s.Procs != 1 {
		t.Errorf("late (main exited 0 while start waited): %+v; want running, 1 process", s)
	}
	if s := st["after"]; s.State != "degraded" || s.Procs != 1 {
		t.Errorf("after (main exited 0 after start ended): %+v; want degraded, 1 process", s)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("late", "gate", "after")
}

// TestDaemonizingAfterSettleSupervised: the supervisor takes the same main
// for a daemonizer's: with restart: always it does not restart late when
// its main exits 0 while start waits, it watches its group instead.
func TestDaemonizingAfterSettleSupervised(t *testing.T) {
	p := newSvcProject(t, `services:
  late:
    command: 'echo $$ >> p/late; sleep 1000 & sleep 0.4; exit 0'
    restart: always
    restart_delay: 100ms
  gate:
    command: 'exec sleep 1000'
    ready: {exec: 'test -s p/late && ! kill -0 "$(cat p/late)" 2>/dev/null', timeout: 2m}
`)
	p.mustCgdev("start")
	if s := p.statusJSON()["late"]; s.State != "running" || s.Procs != 1 || s.Restarts != 0 || s.LastExit != nil {
		t.Errorf("late (main exited 0 while start waited, restart: always): %+v; want running, 1 process, not restarted", s)
	}
	if pids := p.waitPids("late", 1); len(pids) != 1 {
		t.Errorf("late was started %d times: %v", len(pids), pids)
	}
	if ev := p.events(); strings.Contains(ev, "late: ") {
		t.Errorf("the supervisor saw late end:\n%s", ev)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("late", "gate")
}

// TestPartialStopWithCorruptState: a partial stop cannot read state.json;
// it must leave the tracking files alone rather than rewrite them from
// nothing, which would drop the entries of the services still running.
func TestPartialStopWithCorruptState(t *testing.T) {
	p := newSvcProject(t, `services:
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
  db:
    command: 'echo $$ >> p/db; exec sleep 1000'
`)
	p.mustCgdev("start")
	web := p.waitPids("web", 1)[0]
	db := p.waitPids("db", 1)[0]
	state := filepath.Join(p.dir, ".cgdev", "state.json")
	if err := os.WriteFile(state, []byte("{corrupt"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := p.cgdev("stop", "web")
	if code != 1 || !strings.Contains(errs, "tracking files: not updated") {
		t.Errorf("cgdev stop web with a corrupt state.json: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if p.ours(web) {
		t.Errorf("web (PID %d) survived its stop", web)
	}
	if !p.ours(db) {
		t.Fatalf("db (PID %d) did not survive the stop of web", db)
	}
	if b, _ := os.ReadFile(filepath.Join(p.dir, ".pids", "services.pids.services")); !strings.Contains(string(b), "db:"+strconv.Itoa(db)+"\n") {
		t.Errorf(".pids/services.pids.services lost db's entry: %q", b)
	}
	if b, _ := os.ReadFile(state); string(b) != "{corrupt" {
		t.Errorf("state.json rewritten: %q", b)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("web", "db")
}

// TestStartIgnoresForeignMainPID (issue 9): a state.json whose main PID
// (with that process's start time, so it reads as alive) names a process
// outside the service's group is not written back to .pids/ by the next
// start: the group is the truth, and scripts signal what .pids/ lists.
func TestStartIgnoresForeignMainPID(t *testing.T) {
	p := newSvcProject(t, `services:
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
`)
	p.mustCgdev("start")
	p.waitPids("web", 1)
	stranger := startStranger(t, t.TempDir(), "sleep")
	victim, err := proc.ReadProc(stranger.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(p.dir, ".cgdev", "state.json")
	var st map[string]any
	b, err := os.ReadFile(state)
	if err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("state.json: %v\n%s", err, b)
	}
	rec := st["services"].(map[string]any)["web"].(map[string]any)
	rec["pid"], rec["start_ticks"] = victim.PID, victim.StartTicks
	b, _ = json.Marshal(st)
	testenv.WriteFile(t, state, string(b))

	out := p.mustCgdev("start")
	if !strings.Contains(out, "already running") {
		t.Errorf("second start:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "web" && f[1] == strconv.Itoa(victim.PID) {
			t.Errorf("second start shows web as PID %d, the stranger:\n%s", victim.PID, out)
		}
	}
	for _, f := range []string{"services.pids", "services.pids.groups", "services.pids.services"} {
		b, _ := os.ReadFile(filepath.Join(p.dir, ".pids", f))
		if strings.Contains(string(b), strconv.Itoa(victim.PID)) {
			t.Errorf(".pids/%s lists %d, a process outside web's group (a tampered state.json):\n%s", f, victim.PID, b)
		}
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("web")
	if !testenv.Alive(victim.PID) {
		t.Errorf("the stranger %d named in state.json was killed", victim.PID)
	}
}

// TestStartAfterKilledStartShowsPID: cgdev start SIGKILLed while it starts
// several services (fast ready, slow still in its check) never recorded
// them in state.json. The groups are the truth: the next start shows each
// running service with a PID of its group (the group's leader, adopted as
// status does), so do status and .pids/, and stop leaves nothing.
func TestStartAfterKilledStartShowsPID(t *testing.T) {
	p := newSvcProject(t, `services:
  fast:
    command: 'echo $$ >> p/fast; exec sleep 1000'
  slow:
    command: 'echo $$ >> p/slow; exec sleep 1000'
    ready: {exec: 'echo $$ >> p/check; sleep 1000', timeout: 5m}
`)
	cmd := exec.Command(testenv.Binary(t), "start")
	cmd.Dir = p.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	fast, slow := p.waitPids("fast", 1)[0], p.waitPids("slow", 1)[0]
	p.waitPids("check", 1)
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(p.dir, ".cgdev", "state.json")); err == nil {
		t.Fatalf("state.json written before the kill: the test needs a start that died before recording")
	}

	out := p.mustCgdev("start")
	for name, pid := range map[string]int{"fast": fast, "slow": slow} {
		if !strings.Contains(out, "already running") || !hasRow(out, name, strconv.Itoa(pid)) {
			t.Errorf("second start does not show %s as PID %d (its group's leader):\n%s", name, pid, out)
		}
		if st := p.statusJSON()[name]; st.PID != pid || st.State != "running" {
			t.Errorf("status of %s: PID %d, state %s; want PID %d, running", name, st.PID, st.State, pid)
		}
	}
	b, _ := os.ReadFile(filepath.Join(p.dir, ".pids", "services.pids.services"))
	if want := fmt.Sprintf("fast:%d\nslow:%d\n", fast, slow); string(b) != want {
		t.Errorf(".pids/services.pids.services:\n%s\nwant:\n%s", b, want)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("fast", "slow", "check")
}

// hasRow says whether a table in out has a row whose first fields are fields.
func hasRow(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= len(fields) && slices.Equal(f[:len(fields)], fields) {
			return true
		}
	}
	return false
}
