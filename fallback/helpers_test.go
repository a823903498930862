package fallback_test

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/fallback"
	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
)

func newDriver(t testing.TB) *fallback.Driver {
	t.Helper()
	d, err := fallback.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// project returns a project id no other test or engineer uses, and kills
// every process carrying its marker when the test ends, whatever happened.
func project(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	id := "fbtest-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		d := newDriver(t)
		groups, err := d.Groups(id)
		if err != nil {
			t.Error(err)
		}
		runs, _ := d.Groups("")
		for _, g := range runs {
			if strings.Contains(g.Name(), id) { // runs the test named after its project
				groups = append(groups, g)
			}
		}
		for _, g := range groups {
			if pids, _ := g.Procs(); len(pids) > 0 {
				t.Errorf("processes of %s/%s left after the test: %v (killing them)", id, g.Name(), pids)
				g.Kill()
			}
		}
	})
	return id
}

// identity reads pid's identity, failing the test if it is gone.
func identity(t testing.TB, pid int) proc.Identity {
	t.Helper()
	p, err := proc.ReadProc(pid)
	if err != nil {
		t.Fatalf("PID %d: %v", pid, err)
	}
	return p.Identity()
}

// killOnCleanup SIGKILLs the process pid names now, when the test ends, if
// it is still the same process (never a recycled PID).
func killOnCleanup(t testing.TB, pid int) {
	t.Helper()
	id, err := proc.ReadProc(pid)
	if err != nil {
		return
	}
	t.Cleanup(func() { id.Identity().Signal(syscall.SIGKILL) })
}

// hardCases forks what escapes naive process-group kills, writing each PID
// to $1 (one a line):
//  1. a background child
//  2. a setsid child (own session and group)
//  3. a double-forked daemon, re-parented to init
//  4. a double-forked daemon that also left the session: found only by its marker
//  5. a child renamed with exec -a (argv[0] "vitest")
//  6. a copy of sleep called esbuild ($2): renamed comm
//  7. a shell that ignores SIGTERM (and its sleeps, which inherit that)
//  8. a child exec'd with an empty environment: no marker, found by the tree
//
// then the leader itself becomes a sleep.
const hardCases = `sleep 1000 & echo $! >> "$1"
setsid sleep 1000 & echo $! >> "$1"
(sleep 1000 & echo $! >> "$1") &
(setsid sh -c 'echo $$ >> "$1"; exec sleep 1000' x "$1" &) &
bash -c 'exec -a vitest sleep 1000' & echo $! >> "$1"
"$2" 1000 & echo $! >> "$1"
sh -c 'trap "" TERM; echo $$ >> "$1"; while :; do sleep 0.05; done' x "$1" &
env -i sleep 1000 & echo $! >> "$1"
exec sleep 1000`

const hardCaseCount = 8

// copyBinary copies the program prog (looked up in $PATH) to dir/name, to
// run it under another name.
func copyBinary(t testing.TB, prog, dir, name string) string {
	t.Helper()
	src, err := exec.LookPath(prog)
	if err != nil {
		t.Skipf("%s not installed: %v", prog, err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// startHardCases starts the hard cases as service svc of proj through d and
// returns the group, the leader's command and the PIDs of the eight cases.
func startHardCases(t *testing.T, d cgroup.Driver, proj, svc string) (cgroup.Group, *exec.Cmd, []int) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed (needed for exec -a)")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	esbuild := copyBinary(t, "sleep", filepath.Join(dir, "bin"), "esbuild")
	cmd := exec.Command("sh", "-c", hardCases, "svc", pidFile, esbuild)
	cmd.Dir = dir
	g, err := d.Start(t.Context(), cgroup.Spec{Project: proj, Name: svc}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	var pids []int
	if !testenv.Eventually(5*time.Second, func() bool {
		pids = readPids(pidFile)
		return len(pids) == hardCaseCount
	}) {
		t.Fatalf("the hard cases wrote %d of %d PIDs", len(pids), hardCaseCount)
	}
	for _, pid := range pids {
		killOnCleanup(t, pid)
	}
	return g, cmd, pids
}

func readPids(file string) []int {
	b, _ := os.ReadFile(file)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

// startBystander starts a copy of sleep called vitest in a directory of its
// own, without any marker, in a session of its own: a process named like a
// pattern that is not the project's.
func startBystander(t *testing.T) proc.Identity {
	t.Helper()
	dir := t.TempDir()
	vitest := copyBinary(t, "sleep", filepath.Join(dir, "other", "node_modules", ".bin"), "vitest")
	cmd := exec.Command(vitest, "1000")
	cmd.Dir = dir
	cmd.Env = withoutMarkers(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	return identity(t, cmd.Process.Pid)
}

func withoutMarkers(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CGDEV_") {
			out = append(out, kv)
		}
	}
	return out
}

func contains(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}
