package launcher_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// startTree starts script with sh in a session of its own, with env added
// to the environment, and waits until the process has want descendants. Every
// process of the tree is killed when the test ends.
func startTree(t *testing.T, script string, want int, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	var tree []int
	if !testenv.Eventually(5*time.Second, func() bool {
		tab, _ := proc.Snapshot()
		tree = tab.Descendants(cmd.Process.Pid)
		return len(tree) >= want
	}) {
		t.Fatalf("tree has %d descendants, want %d", len(tree), want)
	}
	for _, pid := range tree {
		testenv.KillOnCleanup(t, pid) // in case the root dies and orphans them
	}
	return cmd
}

// TestTreeBreadthFirst: the root comes first, then every child, then every
// grandchild; each with the service from its marker, its RSS and command.
func TestTreeBreadthFirst(t *testing.T) {
	env := proc.Marker{Project: "tree-test", Service: "web"}.Apply(nil)
	cmd := startTree(t, `sh -c 'sleep 1000 & sleep 1001 & wait' & sleep 1002 & wait`, 4, env...)
	var nodes []launcher.Node
	var err error
	if !testenv.Eventually(5*time.Second, func() bool {
		nodes, err = launcher.Tree(cmd.Process.Pid)
		// Five nodes, every sleep exec'd and settled: a shell that has
		// forked to run "sleep 1001" shows as a copy of its parent until it
		// execs, and a process in the middle of exec has no RSS yet.
		settled := 0
		for _, n := range nodes {
			if strings.HasPrefix(n.Command, "sleep ") && n.RSS > 0 {
				settled++
			}
		}
		return err == nil && len(nodes) == 5 && settled == 3
	}) {
		t.Fatalf("Tree = %d nodes, %v; want 5", len(nodes), err)
	}
	wantDepth := []int{0, 1, 1, 2, 2}
	for i, n := range nodes {
		if n.Depth != wantDepth[i] {
			t.Errorf("node %d (PID %d %s) at depth %d; want %d (breadth first)", i, n.PID, n.Command, n.Depth, wantDepth[i])
		}
		if n.Service != "web" || n.RSS == 0 || n.Command == "" || n.CPU < 0 {
			t.Errorf("node %+v: want service web, RSS, command", n)
		}
	}
	if nodes[0].PID != cmd.Process.Pid {
		t.Errorf("first node is %d, not the root %d", nodes[0].PID, cmd.Process.Pid)
	}
	var out bytes.Buffer
	if err := launcher.WriteTree(&out, nodes); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "PID") || !strings.Contains(lines[5], "    sleep 100") {
		t.Errorf("WriteTree:\n%s", out.String())
	}
	if _, err := launcher.Tree(1 << 30); err == nil {
		t.Error("Tree of a PID that cannot exist succeeded")
	}
}

// TestKillTree: SIGTERM, then SIGKILL for the two that ignore it; nothing
// of the tree survives.
func TestKillTree(t *testing.T) {
	cmd := startTree(t, `sleep 1000 & sh -c 'trap "" TERM; sleep 1000 & wait' & wait`, 3)
	tab, _ := proc.Snapshot()
	tree := append(tab.Descendants(cmd.Process.Pid), cmd.Process.Pid)
	res, err := launcher.KillTree(t.Context(), cmd.Process.Pid, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Found != 4 || res.Terminated != 4 || res.Killed != 2 {
		t.Errorf("KillTree = %+v; want 4 found, 4 reached by SIGTERM, 2 killed", res)
	}
	for _, pid := range tree {
		if testenv.Alive(pid) {
			t.Errorf("PID %d survived", pid)
		}
	}
}

// TestKillTreeEndsWithLastExit: a tree that exits on SIGTERM needs no SIGKILL
// and KillTree returns well before the grace period.
func TestKillTreeEndsWithLastExit(t *testing.T) {
	cmd := startTree(t, `sleep 1000 & sleep 1000 & wait`, 2)
	res, err := launcher.KillTree(t.Context(), cmd.Process.Pid, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if res.Killed != 0 || res.Took >= time.Minute {
		t.Errorf("KillTree = %+v; want no SIGKILL, done before the grace", res)
	}
}

// TestKillTreeRefuses: PID 1, cgdev itself, its parent and a dead PID are refused.
func TestKillTreeRefuses(t *testing.T) {
	for _, pid := range []int{1, os.Getpid(), os.Getppid(), 1 << 30} {
		if _, err := launcher.KillTree(t.Context(), pid, 0); err == nil {
			t.Errorf("KillTree(%d) succeeded", pid)
		} else {
			t.Logf("KillTree(%d): %v", pid, err)
		}
	}
}
