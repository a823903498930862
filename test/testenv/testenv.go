// Package testenv gives cgdev's tests what they share: a private cgroup base
// removed after each test, the cgdev binary, and checks on real processes.
// It never touches anything a test did not create.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
)

// Cgroup2 returns the detected host, skipping the test (with the reason) when
// this machine has no writable cgroup2 tree.
func Cgroup2(t testing.TB) *cgroup.Host {
	t.Helper()
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	if h.Cgroup2Mount == "" {
		t.Skip("no cgroup2 hierarchy mounted on this machine")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups under the cgroup2 root")
	}
	return h
}

// CgroupBase points cgdev at a fresh, private base cgroup for this test
// (CGDEV_CGROUP_BASE=/cgdev-test-XXXXXX) and removes it when the test ends,
// killing anything a failed test left inside. It returns the detected host,
// whose Base is the new directory.
func CgroupBase(t testing.TB) *cgroup.Host {
	t.Helper()
	Cgroup2(t)
	rel := "/cgdev-test-" + randomHex(4)
	t.Setenv(cgroup.BaseEnv, rel)
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.Cgroup2Mount, rel)
	t.Cleanup(func() { RemoveCgroupTree(t, dir) })
	return h
}

// RemoveCgroupTree kills every process under dir and removes dir, deepest
// first. It reports (as a test error) anything left, so leaks fail the test.
func RemoveCgroupTree(t testing.TB, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return
	}
	d := cgroup.Dir(dir)
	if pids, _ := d.Procs(); len(pids) > 0 {
		t.Errorf("processes left in %s after the test: %v (killing them)", dir, pids)
		d.Kill()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if p, _ := d.Populated(); !p {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := d.Remove(); err != nil {
		t.Errorf("removing test cgroup %s: %v", dir, err)
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// RaceEnv, when set, makes Binary build cgdev with the race detector: a
// data race in a cgdev command then ends it with exit status 66 and a
// "WARNING: DATA RACE" report on stderr (make race).
const RaceEnv = "CGDEV_TEST_RACE"

// Binary builds cmd/cgdev once per test process and returns its path. All
// test processes of one checkout share one file (built to a temporary name,
// then renamed over it, so a concurrent build never exposes a partial
// binary), and nothing accumulates in $TMPDIR. With $CGDEV_TEST_RACE set
// it is built with -race, to a file of its own.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		sum := sha256.Sum256([]byte(RepoRoot()))
		dir := filepath.Join(os.TempDir(), "cgdev-test-bin-"+hex.EncodeToString(sum[:4]))
		if buildErr = os.MkdirAll(dir, 0o755); buildErr != nil {
			return
		}
		binPath = filepath.Join(dir, "cgdev")
		build := []string{"build"}
		if os.Getenv(RaceEnv) != "" {
			binPath += "-race"
			build = append(build, "-race")
		}
		tmp := binPath + "." + randomHex(4)
		cmd := exec.Command("go", append(build, "-o", tmp, "./cmd/cgdev")...)
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp)
			buildErr = errors.New("go build ./cmd/cgdev: " + err.Error() + "\n" + string(out))
			return
		}
		buildErr = os.Rename(tmp, binPath)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// RepoRoot is the module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	state := State(pid)
	return state != 0 && state != 'Z'
}

// State returns pid's state from /proc/PID/stat (R, S, T, Z, ...), or 0
// when there is no such process.
func State(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return '?'
	}
	return b[i+2]
}

// Cmdline returns /proc/PID/cmdline with the arguments joined by spaces.
func Cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// WaitCmdline waits until pid's command line (arguments joined by spaces)
// reads want, and fails the test if it does not within 10 s.
// exec.Cmd.Start returns as soon as the child's execve is past its point of
// no return, before the kernel has set up the new program's arguments: until
// then /proc/PID/cmdline reads empty (on a loaded machine, for a long
// while), and a command that execs again shows its earlier program. A test
// whose check depends on what cgdev reads of a process waits for this first.
func WaitCmdline(t testing.TB, pid int, want string) {
	t.Helper()
	if !Eventually(10*time.Second, func() bool { return Cmdline(pid) == want }) {
		t.Fatalf("PID %d: command line %q, want %q", pid, Cmdline(pid), want)
	}
}

// Eventually polls cond every 5 ms until it holds or timeout passes.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// KillOnCleanup SIGKILLs pid when the test ends, in case the code under test
// failed to. Use it for every process a test starts itself.
func KillOnCleanup(t testing.TB, pid int) {
	t.Cleanup(func() {
		if Alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// RunWithin runs the cgdev binary in dir with args and returns its exit
// status and output. When it has not finished within limit it is killed
// (a process the test started) and the test fails: a hang is what the
// callers guard against. The status is then -1.
func RunWithin(t testing.TB, dir string, limit time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Errorf("cgdev %s hung (killed after %s)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), limit, out.String(), errb.String())
		return -1, out.String(), errb.String()
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// WriteFile writes content to path, failing the test on error.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Mkdir creates path and its parents, failing the test on error.
func Mkdir(t testing.TB, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}
