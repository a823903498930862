package cleanup_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/test/testenv"
)

func startGroup(t *testing.T, name string, args ...string) (cgroup.Group, *exec.Cmd) {
	t.Helper()
	h := testenv.CgroupBase(t)
	d, err := cgroup.NewDirect(h)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	g, err := d.Start(context.Background(), cgroup.Spec{Name: name}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	return g, cmd
}

// TestStopGroupContinuesStopped: a stopped process (Ctrl-Z) keeps SIGTERM
// pending; StopGroup sends SIGCONT after it, so the process goes at once
// instead of after the grace period.
func TestStopGroupContinuesStopped(t *testing.T) {
	g, cmd := startGroup(t, "stopped", "sleep", "1000")
	cmd.Process.Signal(syscall.SIGSTOP)
	if !testenv.Eventually(2*time.Second, func() bool { return testenv.State(cmd.Process.Pid) == 'T' }) {
		t.Fatal("sleep did not stop")
	}
	res, err := cleanup.StopGroup(context.Background(), g, syscall.SIGTERM, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Forced || res.Took > 2*time.Second {
		t.Errorf("stopped process: forced=%v after %s; want it gone on SIGTERM", res.Forced, res.Took)
	}
}

// TestStopGroupForcesAfterGrace: a process ignoring SIGTERM is killed when
// the grace period ends, and the group is removed.
func TestStopGroupForcesAfterGrace(t *testing.T) {
	g, cmd := startGroup(t, "stubborn", "sh", "-c", `trap "" TERM; while :; do sleep 0.05; done`)
	if !testenv.Eventually(5*time.Second, func() bool { return ignoresTERM(cmd.Process.Pid) }) {
		t.Fatal("the shell did not set its trap")
	}
	res, err := cleanup.StopGroup(context.Background(), g, syscall.SIGTERM, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Forced || res.Signalled < 1 {
		t.Errorf("result %+v; want a forced stop after signalling", res)
	}
	if testenv.Alive(cmd.Process.Pid) {
		t.Error("process survived")
	}
}

// TestStopGroupCancelledKillsAndWaits: a context ended during the grace
// (kill-tree's Ctrl-C, a stop's second signal) ends the grace only: what
// is left is killed, the kill waited for, and the group removed; no error.
func TestStopGroupCancelledKillsAndWaits(t *testing.T) {
	g, cmd := startGroup(t, "stubborn", "sh", "-c", `trap "" TERM; while :; do sleep 0.05; done`)
	if !testenv.Eventually(5*time.Second, func() bool { return ignoresTERM(cmd.Process.Pid) }) {
		t.Fatal("the shell did not set its trap")
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	res, err := cleanup.StopGroup(ctx, g, syscall.SIGTERM, time.Minute)
	if err != nil {
		t.Fatalf("StopGroup with its context ended in the grace: %v", err)
	}
	if !res.Forced || testenv.Alive(cmd.Process.Pid) {
		t.Errorf("result %+v, process alive %v; want it killed", res, testenv.Alive(cmd.Process.Pid))
	}
	if pids, err := g.Procs(); err == nil && len(pids) > 0 {
		t.Errorf("group %s still holds %v", g.Path(), pids)
	}
}

// ignoresTERM reports whether pid ignores SIGTERM (SigIgn in /proc/PID/status).
func ignoresTERM(pid int) bool {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && mask&(1<<(syscall.SIGTERM-1)) != 0
		}
	}
	return false
}
