package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
)

// withConfig is a project whose api depends on db; db becomes ready once
// it has written its PID, and bad never becomes ready.
const withConfig = `services:
  db:
    command: sh -c 'echo $$ >> p/db; exec sleep 1000'
    ready: {exec: 'test -s p/db', timeout: 10s}
  api:
    command: sh -c 'echo $$ >> p/api; exec sleep 1000'
    depends_on: [db]
  bad:
    command: sh -c 'echo $$ >> p/bad; exec sleep 1000'
    depends_on: [db]
    ready: {exec: 'false', timeout: 500ms}
  slow:
    command: sh -c 'echo $$ >> p/slow; exec sleep 1000'
    depends_on: [db]
    ready: {exec: 'sleep 100', timeout: 60s}
`

// TestRunWithServices: run --with starts the services (and what they depend
// on) and waits until they are ready before the command runs, passes the
// command's status, and stops what it started, no more; with every driver.
func TestRunWithServices(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		t.Run("not-running-before", func(t *testing.T) {
			p := newDriverProject(t, driver, withConfig)
			code, stdout, stderr := p.cgdev("run", "--with", "api", "--", "sh", "-c", `test -s p/db && test -s p/api && echo saw-services; exit 3`)
			if code != 3 {
				t.Fatalf("run --with api -- sh -c 'exit 3': exit %d; want 3\nstderr:\n%s", code, stderr)
			}
			if stdout != "saw-services\n" {
				t.Errorf("stdout %q: the command must see db ready and api started, and stdout must be the command's alone", stdout)
			}
			p.assertNoProcessLeft("db", "api")
		})
		t.Run("db-running-before", func(t *testing.T) {
			p := newDriverProject(t, driver, withConfig)
			p.mustCgdev("start", "db")
			db := p.waitPids("db", 1)
			code, _, stderr := p.cgdev("run", "--with", "db,api", "--", "sh", "-c", "exit 3")
			if code != 3 {
				t.Fatalf("exit %d; want 3\nstderr:\n%s", code, stderr)
			}
			if !p.ours(db[0]) {
				t.Errorf("db (PID %d) was running before run --with and must be left running", db[0])
			}
			if pids := p.pids("db"); len(pids) != 1 {
				t.Errorf("db was started again: PIDs %v", pids)
			}
			for _, pid := range p.pids("api") {
				if p.ours(pid) {
					t.Errorf("api (PID %d), started by run --with, survived it", pid)
				}
			}
			p.mustCgdev("stop")
			p.assertNothingLeft("db", "api")
		})
	})
}

// TestRunWithFailingReadiness: a --with service that does not become ready
// ends run with status 1 and a message naming it; the command is not run,
// and what this run started (db too) is stopped.
func TestRunWithFailingReadiness(t *testing.T) {
	p := newSvcProject(t, withConfig)
	code, _, stderr := p.cgdev("run", "--with", "bad", "--", "touch", "p/ran")
	if code != 1 || !strings.Contains(stderr, "--with bad:") || !strings.Contains(stderr, "the command was not run") {
		t.Errorf("exit %d, stderr:\n%s\nwant 1 and a message that --with bad failed and the command was not run", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "p", "ran")); err == nil {
		t.Error("the command ran although its service never became ready")
	}
	p.assertNoProcessLeft("db", "bad")
}

// TestRunWithMissingCommand: a command that cannot run is refused before
// any service starts.
func TestRunWithMissingCommand(t *testing.T) {
	p := newSvcProject(t, withConfig)
	code, _, stderr := p.cgdev("run", "--with", "db", "--", "cgdev-no-such-command")
	if code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("exit %d, stderr %q; want 1 and the command not found", code, stderr)
	}
	if pids := p.pids("db"); len(pids) > 0 {
		t.Errorf("db started (PIDs %v) for a command that cannot run", pids)
	}
	p.assertNoProcessLeft("db")
}

// TestRunWithInterrupted: SIGINT to cgdev run --with (Ctrl-C) during the
// command ends the command, then the services this run started are stopped,
// and cgdev dies of SIGINT like its command.
func TestRunWithInterrupted(t *testing.T) {
	p := newSvcProject(t, withConfig)
	cmd := exec.Command(testenv.Binary(t), "run", "--with", "api", "--", "sh", "-c", `echo $$ > p/cmd; exec sleep 1000`)
	cmd.Dir = p.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	command := p.waitPids("cmd", 1)
	testenv.KillOnCleanup(t, command[0])
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("cgdev run --with did not end 30 s after SIGINT")
	}
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("cgdev run --with ended with %v; want death by SIGINT, as its command", cmd.ProcessState)
	}
	if testenv.Alive(command[0]) && testenv.State(command[0]) != 'Z' {
		t.Errorf("the command (PID %d) survived Ctrl-C", command[0])
	}
	p.assertNoProcessLeft("db", "api")
}

// TestRunWithKilled: cgdev run --with SIGKILLed while its command runs (a
// CI job's timeout): its watcher kills the command, then stops the services
// this run started; one that ran before is left running.
func TestRunWithKilled(t *testing.T) {
	p := newSvcProject(t, withConfig)
	p.mustCgdev("start", "db")
	db := p.waitPids("db", 1)
	run := p.startCgdev(t, "run", "--with", "api", "--", "sh", "-c", `echo $$ > p/cmd; exec sleep 1000`)
	command := p.waitPids("cmd", 1)
	testenv.KillOnCleanup(t, command[0])
	api := p.waitPids("api", 1)
	run.signal(syscall.SIGKILL)
	<-run.exited
	commandAlive := func() bool { return testenv.Alive(command[0]) && testenv.State(command[0]) != 'Z' }
	if !testenv.Eventually(30*time.Second, func() bool { return !p.ours(api[0]) && !commandAlive() }) {
		t.Errorf("30 s after the SIGKILL of cgdev run --with: api (PID %d) ours %v, the command (PID %d) alive %v\n%s",
			api[0], p.ours(api[0]), command[0], commandAlive(), run.output())
	}
	if !p.ours(db[0]) {
		t.Errorf("db (PID %d), running before run --with, was stopped\n%s", db[0], run.output())
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("db", "api")
}

// TestRunWithInterruptedWhileStarting: SIGINT (Ctrl-C) while a --with
// service waits for readiness ends the start, stops what it had started,
// and the command is not run.
func TestRunWithInterruptedWhileStarting(t *testing.T) {
	p := newSvcProject(t, withConfig)
	cmd := exec.Command(testenv.Binary(t), "run", "--with", "slow", "--", "touch", "p/ran")
	cmd.Dir = p.dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	p.waitPids("slow", 1)
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "the command was not run") {
		t.Errorf("exit %d, stderr:\n%s\nwant 1 and that the command was not run", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(p.dir, "p", "ran")); err == nil {
		t.Error("the command ran although the start was interrupted")
	}
	p.assertNoProcessLeft("db", "slow")
}
