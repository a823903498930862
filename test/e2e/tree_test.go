package e2e_test

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/fallback"
	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
)

// TestTreeAndKillTreeCLI: cgdev tree lists a tree breadth first; cgdev
// kill-tree stops it (SIGKILL for the one ignoring SIGTERM) and says so.
func TestTreeAndKillTreeCLI(t *testing.T) {
	bystander := startStranger(t, t.TempDir(), "vitest")
	cmd := exec.Command("sh", "-c", `sleep 1000 & sh -c 'trap "" TERM; sleep 1000 & wait' & wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	must(t, cmd.Start())
	go cmd.Wait()
	root := cmd.Process.Pid
	if p, err := proc.ReadProc(root); err == nil {
		t.Cleanup(func() { fallback.TreeGroup(p.Identity()).Kill() })
	}
	var tree []int
	testenv.Eventually(5*time.Second, func() bool {
		tab, _ := proc.Snapshot()
		tree = tab.Descendants(root)
		return len(tree) == 3
	})
	for _, pid := range append(tree, root) {
		if p, err := proc.ReadProc(pid); err == nil {
			t.Cleanup(func() { p.Identity().Signal(syscall.SIGKILL) })
		}
	}
	code, out := cgdevOut(t, "tree", strconv.Itoa(root))
	if code != 0 || !strings.HasPrefix(out, "PID") || strings.Count(out, "\n") != 5 {
		t.Errorf("cgdev tree %d: exit %d\n%s", root, code, out)
	}
	code, out = cgdevOut(t, "kill-tree", "--grace", "200ms", strconv.Itoa(root))
	want := "4 process(es) found, 4 reached by SIGTERM, 2 needed SIGKILL"
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("cgdev kill-tree: exit %d, output %q; want %q", code, out, want)
	}
	for _, pid := range append(tree, root) {
		if testenv.Alive(pid) {
			t.Errorf("PID %d survived kill-tree", pid)
		}
	}
	if !testenv.Alive(bystander.Process.Pid) {
		t.Error("bystander was killed")
	}
	if code, out := cgdevOut(t, "kill-tree", "1"); code == 0 || !strings.Contains(out, "refusing") {
		t.Errorf("cgdev kill-tree 1: exit %d\n%s", code, out)
	}
	if code, _ := cgdevOut(t, "tree", "x"); code != 2 {
		t.Errorf("cgdev tree x: exit %d; want 2 (usage)", code)
	}
}

// TestKillTreeContinuesStopped: a stopped process in the tree keeps SIGTERM
// pending until it is continued; kill-tree sends SIGCONT after SIGTERM, as
// every stop in cgdev does, so the tree ends on SIGTERM well within its 5 s
// grace and nothing needs SIGKILL.
func TestKillTreeContinuesStopped(t *testing.T) {
	cmd := exec.Command("sh", "-c", `sleep 1000 & kill -STOP $!; wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	must(t, cmd.Start())
	go cmd.Wait()
	root := cmd.Process.Pid
	testenv.KillOnCleanup(t, root)
	var stopped int
	if !testenv.Eventually(5*time.Second, func() bool {
		tab, _ := proc.Snapshot()
		for _, pid := range tab.Descendants(root) {
			if testenv.State(pid) == 'T' {
				stopped = pid
			}
		}
		return stopped != 0
	}) {
		t.Fatal("the stopped child did not appear")
	}
	testenv.KillOnCleanup(t, stopped)
	code, out := cgdevOut(t, "kill-tree", "--grace", "5s", strconv.Itoa(root))
	if want := "2 process(es) found, 2 reached by SIGTERM, 0 needed SIGKILL"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("cgdev kill-tree: exit %d, output %q; want %q", code, out, want)
	}
	for _, pid := range []int{root, stopped} {
		if testenv.Alive(pid) {
			t.Errorf("PID %d survived kill-tree", pid)
		}
	}
}

// cgdevOut runs the cgdev binary with args and returns its exit status and
// its stdout and stderr together.
func cgdevOut(t *testing.T, args ...string) (int, string) {
	t.Helper()
	code, stdout, stderr := cgdevRun(t, args...)
	return code, stdout + stderr
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
