package vmtests_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/test/testenv"
	"github.com/cgdev/cgdev/test/vmkit"
)

// InVMEnv is set to 1 by the VM test bed; without it every test here skips.
const InVMEnv = "CGDEV_IN_VM"

// helperEnv makes the test binary run a helper program instead of the tests
// (vmkit.MaybeRunHelper).
const helperEnv = vmkit.HelperEnv

const mib = vmkit.MiB

func TestMain(m *testing.M) {
	vmkit.MaybeRunHelper()
	os.Exit(m.Run())
}

// inVM skips the test unless it runs inside the VM test bed, and returns the
// detected host there (pure cgroup2, every controller).
func inVM(t *testing.T) *cgroup.Host {
	t.Helper()
	if os.Getenv(InVMEnv) != "1" {
		t.Skip("runs only inside the VM test bed (make vmtest): it needs a kernel whose memory, pids and cpu controllers are all in cgroup2")
	}
	h := testenv.CgroupBase(t)
	if h.Mode != cgroup.Unified {
		t.Fatalf("%s=1 but the cgroup mode is %s, not unified", InVMEnv, h.Mode)
	}
	return h
}

// cgdevBin is the static cgdev binary the harness put in the VM.
func cgdevBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CGDEV_BIN"); p != "" {
		return p
	}
	p, err := exec.LookPath("cgdev")
	if err != nil {
		t.Fatalf("no cgdev binary in the VM: %v", err)
	}
	return p
}

// self is this test binary, which runs helpers when helperEnv is set.
func self(t *testing.T) string { return vmkit.Self(t) }

// result is how one cgdev invocation ended.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// cgdevCmd is cgdev with args and extra environment.
func cgdevCmd(t *testing.T, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(cgdevBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// runCgdev runs cgdev to completion (at most timeout) with extra environment.
func runCgdev(t *testing.T, timeout time.Duration, env []string, args ...string) result {
	t.Helper()
	r := vmkit.Run(t, timeout, cgdevCmd(t, env, args...))
	return result{code: r.Code, stdout: r.Stdout, stderr: r.Stderr, took: r.Took}
}

// background is a cgdev invocation left running.
type background struct{ *vmkit.Background }

// startCgdev starts cgdev and makes sure it is gone when the test ends.
func startCgdev(t *testing.T, env []string, args ...string) background {
	t.Helper()
	return background{vmkit.Start(t, cgdevCmd(t, env, args...))}
}

func (b background) line(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	return b.Line(t, prefix, timeout)
}

func (b background) stop(t *testing.T, sig syscall.Signal, timeout time.Duration) (int, time.Duration) {
	t.Helper()
	return b.Stop(t, sig, timeout)
}

// runGroup waits for the cgroup of the cgdev run called name (which cgdev
// suffixes with random hex) to appear under h's base, and returns it.
func runGroup(t *testing.T, h *cgroup.Host, name string) cgroup.Dir {
	t.Helper()
	pattern := filepath.Join(h.Cgroup2Mount, h.Base, "run-"+name+"-*")
	var dir string
	if !testenv.Eventually(30*time.Second, func() bool {
		m, _ := filepath.Glob(pattern)
		if len(m) == 1 {
			dir = m[0]
		}
		return dir != ""
	}) {
		t.Fatalf("no cgroup %s appeared", pattern)
	}
	return cgroup.Dir(dir)
}

func fields(line string) map[string]string { return vmkit.Fields(line) }

func num(t *testing.T, m map[string]string, key string) int64 {
	t.Helper()
	return vmkit.Num(t, m, key)
}

// flatKey reads one key of a flat-keyed cgroup file such as memory.events.
func flatKey(t *testing.T, d cgroup.Dir, file, key string) int64 {
	t.Helper()
	return vmkit.FlatKey(t, filepath.Join(string(d), file), key)
}

// vmstat reads one counter of /proc/vmstat (oom_kill: OOM kills since boot).
func vmstat(t *testing.T, key string) int64 {
	t.Helper()
	return vmkit.FlatKey(t, "/proc/vmstat", key)
}
