package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
)

// TestLockWaitNamesHolder: a command waiting on the project lock says, once,
// which cgdev holds it (PID, command, since when); Ctrl-C ends the wait at
// once with exit 130 and nothing changed, and the holder goes on unaffected.
func TestLockWaitNamesHolder(t *testing.T) {
	p := newSvcProject(t, stubbornConfig("60s"))
	p.startStubborn()
	holder := p.startCgdev(t, "stop")
	holder.waitFor("[1/5]")
	waiter := p.startCgdev(t, "start")
	waiter.waitFor("waiting for the project lock")
	want := fmt.Sprintf("held by PID %d (cgdev stop) since ", holder.cmd.Process.Pid)
	if !strings.Contains(waiter.stderr.String(), want) {
		t.Errorf("the wait does not name the holder (%q):\n%s", want, waiter.output())
	}
	waiter.signal(syscall.SIGINT)
	if code := waiter.wait(10 * time.Second); code != 130 {
		t.Errorf("start interrupted waiting for the lock: exit %d, want 130:\n%s", code, waiter.output())
	}
	if !strings.Contains(waiter.stderr.String(), "nothing was changed") || strings.Count(waiter.stderr.String(), "Ctrl-C gives up") != 1 {
		t.Errorf("the interrupted wait does not say it changed nothing, or said it waited more than once:\n%s", waiter.output())
	}
	if !holder.running() {
		t.Fatalf("the holder ended with the waiter:\n%s", holder.output())
	}
	for _, pid := range p.pids("stubborn") {
		if !testenv.Alive(pid) {
			t.Errorf("PID %d of the service died with the waiter (the holder's grace is 60 s)", pid)
		}
	}
	holder.forceStop(syscall.SIGINT, syscall.SIGINT)
	if code := holder.wait(30 * time.Second); code != 0 {
		t.Errorf("the holder's stop: exit %d:\n%s", code, holder.output())
	}
	p.assertNothingLeft("stubborn")
}

// TestLockFromDeadHolder: a cgdev killed while holding the lock does not
// block the next command (the kernel drops a dead process's flock), and
// what it wrote in the lock file is not shown as the holder when another
// process holds the lock later.
func TestLockFromDeadHolder(t *testing.T) {
	p := newSvcProject(t, stubbornConfig("60s"))
	p.startStubborn()
	dead := p.startCgdev(t, "stop")
	dead.waitFor("[1/5]")
	dead.cmd.Process.Kill()
	<-dead.exited

	lock := filepath.Join(p.dir, ".cgdev", "lock")
	if b, _ := os.ReadFile(lock); !strings.Contains(string(b), fmt.Sprintf(`"pid":%d,`, dead.cmd.Process.Pid)) {
		t.Fatalf("the lock file does not name its dead holder %d: %q", dead.cmd.Process.Pid, b)
	}
	f, err := os.OpenFile(lock, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("the dead holder's lock was not released: %v", err)
	}
	waiter := p.startCgdev(t, "stop", "--force")
	waiter.waitFor("waiting for the project lock")
	if s := waiter.stderr.String(); strings.Contains(s, fmt.Sprintf("PID %d", dead.cmd.Process.Pid)) || !strings.Contains(s, "held by a process that did not say who it is") {
		t.Errorf("the wait names the dead holder, or not the unknown one:\n%s", waiter.output())
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if code := waiter.wait(30 * time.Second); code != 0 {
		t.Errorf("stop --force after the lock was released: exit %d:\n%s", code, waiter.output())
	}
	p.assertNothingLeft("stubborn")
}
