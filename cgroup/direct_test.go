package cgroup_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/test/testenv"
)

func newDirect(t *testing.T) (*cgroup.Direct, *cgroup.Host) {
	t.Helper()
	h := testenv.CgroupBase(t)
	d, err := cgroup.NewDirect(h)
	if err != nil {
		t.Fatal(err)
	}
	return d, h
}

// TestStartIntoCgroupFromFirstInstruction: the command's very first action
// reads /proc/self/cgroup, and it must already name the new group.
func TestStartIntoCgroupFromFirstInstruction(t *testing.T) {
	d, h := newDirect(t)
	var out bytes.Buffer
	cmd := exec.Command("cat", "/proc/self/cgroup")
	cmd.Stdout = &out
	g, err := d.Start(context.Background(), cgroup.Spec{Name: "first"}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	want := "0::" + h.Base + "/run-first"
	if !strings.Contains(out.String(), want) {
		t.Errorf("/proc/self/cgroup = %q; want it to contain %q", out.String(), want)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h.Cgroup2Mount, h.Base)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty base %s was not removed with its last group", h.Base)
	}
}

// startTree starts a shell in a group that forks the hard cases and writes
// their PIDs to a file; it returns the group and the PIDs.
func startTree(t *testing.T, spec cgroup.Spec, start func(*exec.Cmd, cgroup.Spec) (cgroup.Group, error)) (cgroup.Group, *exec.Cmd, []int) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pids")
	script := `sleep 1000 & echo $! >> "$1"
setsid sleep 1000 & echo $! >> "$1"
(sleep 1000 & echo $! >> "$1") &
sh -c 'trap "" TERM; echo $$ >> "$1"; while :; do sleep 0.05; done' x "$1" &
exec sleep 1000`
	cmd := exec.Command("sh", "-c", script, "tree", pidFile)
	g, err := start(cmd, spec)
	if err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	var pids []int
	if !testenv.Eventually(5*time.Second, func() bool {
		b, _ := os.ReadFile(pidFile)
		pids = pids[:0]
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			pids = append(pids, n)
		}
		return len(pids) == 4
	}) {
		t.Fatalf("tree did not start: pids %v", pids)
	}
	for _, p := range pids {
		testenv.KillOnCleanup(t, p)
	}
	return g, cmd, append(pids, cmd.Process.Pid)
}

func TestGroupSignalWaitKillRemove(t *testing.T) {
	d, _ := newDirect(t)
	testGroupSignalWaitKillRemove(t, d)
}

// TestGatedDriver runs the same tree through the driver's gate path.
func TestGatedDriver(t *testing.T) {
	d, _ := newDirect(t)
	testGroupSignalWaitKillRemove(t, cgroup.Gated(d))
}

func testGroupSignalWaitKillRemove(t *testing.T, d *cgroup.Direct) {
	start := func(cmd *exec.Cmd, s cgroup.Spec) (cgroup.Group, error) { return d.Start(context.Background(), s, cmd) }
	g, _, pids := startTree(t, cgroup.Spec{Project: "proj", Name: "svc"}, start)

	got, err := g.Procs()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if !containsInt(got, p) {
			t.Errorf("Procs() = %v misses %d", got, p)
		}
	}
	groups, err := d.Groups("proj")
	if err != nil || len(groups) != 1 || groups[0].Name() != "svc" || groups[0].Path() != g.Path() {
		t.Fatalf("Groups(proj) = %v, %v", groups, err)
	}

	if n, err := g.Signal(syscall.SIGTERM); err != nil || n < len(pids) {
		t.Fatalf("Signal(TERM) reached %d, %v", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := g.WaitEmpty(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEmpty with a TERM-ignoring member = %v; want deadline exceeded", err)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := g.WaitEmpty(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if testenv.Alive(p) {
			t.Errorf("pid %d survived cgroup.kill", p)
		}
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after Remove", g.Path())
	}
}

// TestStartThenMove covers kernels without CLONE_INTO_CGROUP: the child waits
// at the gate until it is in the group, so its first action sees the group.
func TestStartThenMove(t *testing.T) {
	h := testenv.CgroupBase(t)
	dir := cgroup.Dir(filepath.Join(h.Cgroup2Mount, h.Base, "moved"))
	if err := os.MkdirAll(string(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command("cat", "/proc/self/cgroup")
	cmd.Stdout = &out
	if err := cgroup.StartThenMove(cmd, dir); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if want := "0::" + h.Base + "/moved"; !strings.Contains(out.String(), want) {
		t.Errorf("/proc/self/cgroup = %q; want %q", out.String(), want)
	}
	if err := dir.Remove(); err != nil {
		t.Fatal(err)
	}
}

func TestStartFailureLeavesNothing(t *testing.T) {
	d, h := newDirect(t)
	cmd := exec.Command(filepath.Join(t.TempDir(), "no-such-program"))
	if _, err := d.Start(context.Background(), cgroup.Spec{Name: "bad"}, cmd); err == nil {
		t.Fatal("Start of a missing program succeeded")
	}
	if _, err := os.Stat(filepath.Join(h.Cgroup2Mount, h.Base)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed start left %s behind", h.Base)
	}
}

func TestStartRefusesLiveGroup(t *testing.T) {
	d, _ := newDirect(t)
	spec := cgroup.Spec{Project: "p", Name: "api"}
	first := exec.Command("sleep", "1000")
	g, err := d.Start(context.Background(), spec, first)
	if err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, first.Process.Pid)
	if _, err := d.Start(context.Background(), spec, exec.Command("true")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second Start of a live group = %v; want an 'already exists' error", err)
	}
	if !testenv.Alive(first.Process.Pid) {
		t.Fatal("the refused start harmed the running group")
	}
	g.Kill()
	first.Wait()
	if err := g.WaitEmpty(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidNamesRefused(t *testing.T) {
	d, _ := newDirect(t)
	for _, name := range []string{"", "../escape", "a/b", "..", "sp ace"} {
		if _, err := d.Start(context.Background(), cgroup.Spec{Name: name}, exec.Command("true")); err == nil {
			t.Errorf("Start with name %q succeeded", name)
		}
	}
}

// TestUnsupportedLimitRefused: where the host lacks a controller (the memory
// controller is bound to v1 here), the limit is refused before anything starts.
func TestUnsupportedLimitRefused(t *testing.T) {
	d, h := newDirect(t)
	if h.Has("memory") {
		t.Skip("this machine can enforce MemoryMax; the refusal is tested in the VM suite (test/vm)")
	}
	var l cgroup.Limits
	l.Set("MemoryMax=64M")
	cmd := exec.Command("true")
	_, err := d.Start(context.Background(), cgroup.Spec{Name: "capped", Limits: l}, cmd)
	var u *cgroup.UnsupportedError
	if !errors.As(err, &u) || u.Missing[0].Property != "MemoryMax" || u.Missing[0].Controller != "memory" {
		t.Fatalf("Start with MemoryMax = %v; want an UnsupportedError naming MemoryMax and memory", err)
	}
	if cmd.Process != nil {
		t.Error("the command was started despite the refused limit")
	}
	if _, err := os.Stat(filepath.Join(h.Cgroup2Mount, h.Base)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start left %s behind", h.Base)
	}
}

func containsInt(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
