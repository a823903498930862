package fallback_test

import (
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/fallback"
	"github.com/cgdev/cgdev/test/testenv"
)

// startTree starts script with sh in a session of its own and waits until
// the process has want descendants.
func startTree(t *testing.T, script string, want int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	root := identity(t, cmd.Process.Pid)
	t.Cleanup(func() { fallback.TreeGroup(root).Kill() }) // runs first, while the root lives
	go cmd.Wait()
	var n int
	if !testenv.Eventually(5*time.Second, func() bool {
		tab, _ := fallback.Snapshot()
		n = len(tab.Descendants(cmd.Process.Pid))
		return n >= want
	}) {
		t.Fatalf("tree has %d descendants, want %d", n, want)
	}
	tab, _ := fallback.Snapshot()
	for _, pid := range tab.Descendants(cmd.Process.Pid) {
		killOnCleanup(t, pid) // in case the root dies and orphans them
	}
	return cmd
}

// TestTreeBreadthFirst: the root comes first, then every child, then every
// grandchild; each with the service from its marker, its RSS and command.
func TestTreeBreadthFirst(t *testing.T) {
	d := newDriver(t)
	cmd := exec.Command("sh", "-c", `sh -c 'sleep 1000 & sleep 1001 & wait' & sleep 1002 & wait`)
	g, err := d.Start(t.Context(), cgroup.Spec{Project: project(t), Name: "web"}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	t.Cleanup(func() { g.Kill() })
	var nodes []fallback.Node
	if !testenv.Eventually(5*time.Second, func() bool {
		nodes, err = fallback.Tree(cmd.Process.Pid)
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
	if err := fallback.WriteTree(&out, nodes); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "PID") || !strings.Contains(lines[5], "    sleep 100") {
		t.Errorf("WriteTree:\n%s", out.String())
	}
	if _, err := fallback.Tree(1 << 30); err == nil {
		t.Error("Tree of a PID that cannot exist succeeded")
	}
}

// TestKillTree: SIGTERM, then SIGKILL for the two that ignore it; nothing
// of the tree survives and a bystander does.
func TestKillTree(t *testing.T) {
	bystander := startBystander(t)
	cmd := startTree(t, `sleep 1000 & sh -c 'trap "" TERM; sleep 1000 & wait' & wait`, 3)
	tab, _ := fallback.Snapshot()
	tree := append(tab.Descendants(cmd.Process.Pid), cmd.Process.Pid)
	res, err := fallback.KillTree(t.Context(), cmd.Process.Pid, 200*time.Millisecond)
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
	if !bystander.Alive() {
		t.Error("bystander was killed")
	}
}

// TestKillTreeEndsWithLastExit: a tree that exits on SIGTERM needs no SIGKILL
// and KillTree returns well before the grace period.
func TestKillTreeEndsWithLastExit(t *testing.T) {
	cmd := startTree(t, `sleep 1000 & sleep 1000 & wait`, 2)
	res, err := fallback.KillTree(t.Context(), cmd.Process.Pid, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if res.Killed != 0 || res.Took >= time.Minute {
		t.Errorf("KillTree = %+v; want no SIGKILL, done before the grace", res)
	}
}

// TestKillTreeRefuses: PID 1, cgdev itself and a dead PID are refused.
func TestKillTreeRefuses(t *testing.T) {
	for _, pid := range []int{1, syscall.Getpid(), 1 << 30} {
		if _, err := fallback.KillTree(t.Context(), pid, 0); err == nil {
			t.Errorf("KillTree(%d) succeeded", pid)
		} else {
			t.Logf("KillTree(%d): %v", pid, err)
		}
	}
}
