package sdvmtests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
	"github.com/cgdev/cgdev/test/vmkit"
)

// runCgdev runs `cgdev run` in a fresh directory with extra environment.
func runCgdev(t *testing.T, timeout time.Duration, env []string, args ...string) vmkit.Result {
	t.Helper()
	return vmkit.Run(t, timeout, cgdev(t, t.TempDir(), env, append([]string{"run"}, args...)...))
}

// TestRunExitStatus: `cgdev run` exits with its command's status, whatever
// the driver, and leaves no group behind.
func TestRunExitStatus(t *testing.T) {
	inPass(t, hostPasses...)
	name := tag("status")
	r := runCgdev(t, time.Minute, nil, "--name", name, "--", "/bin/sh", "-c", "echo out; exit 7")
	t.Logf("exit %d after %s, stdout %q, stderr %q", r.Code, r.Took.Round(time.Millisecond), r.Stdout, r.Stderr)
	if r.Code != 7 || r.Stdout != "out\n" {
		t.Errorf("exit %d stdout %q, want 7 and \"out\\n\"; stderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if g := groupsTagged(name); len(g) > 0 {
		t.Errorf("left behind: %v", g)
	}
}

// TestRunReapsLeftovers: what the command leaves running (a background
// child, a setsid'd one, one ignoring SIGTERM) is stopped once it exits.
func TestRunReapsLeftovers(t *testing.T) {
	inPass(t, hostPasses...)
	name := tag("reap")
	pids := filepath.Join(t.TempDir(), "pids")
	script := `sleep 1000 & echo $! >> ` + pids + `
setsid sh -c 'echo $$ >> ` + pids + `; exec sleep 1000' &
sh -c 'trap "" TERM; echo $$ >> ` + pids + `; while :; do sleep 1; done' &
while [ $(wc -l < ` + pids + `) -lt 3 ]; do sleep 0.1; done`
	r := runCgdev(t, 2*time.Minute, nil, "--name", name, "--grace", "1s", "--", "/bin/sh", "-c", script)
	t.Logf("exit %d after %s; stderr: %s", r.Code, r.Took.Round(time.Millisecond), strings.TrimSpace(r.Stderr))
	if r.Code != 0 || !regexp.MustCompile(`reaped [3-9] leftover process\(es\)`).MatchString(r.Stderr) {
		t.Errorf("exit %d, want 0 and the 3 leftovers (and their children) reaped; stderr:\n%s", r.Code, r.Stderr)
	}
	b, _ := os.ReadFile(pids)
	for _, f := range strings.Fields(string(b)) {
		var pid int
		fmt.Sscan(f, &pid)
		if pid > 0 && testenv.Alive(pid) {
			t.Errorf("leftover %d survived", pid)
		}
	}
	if g := groupsTagged(name); len(g) > 0 {
		t.Errorf("left behind: %v", g)
	}
}

// oomReport is cgdev run's line about an OOM kill under MemoryMax=64M.
var oomReport = regexp.MustCompile(`cgdev: OOM: the kernel killed (\d+) process\(es\) of this run for exceeding MemoryMax=64M \(peak memory ([0-9.]+)M\)`)

// TestRunMemoryMaxOOM: a 200 MiB allocation under MemoryMax=64M is killed by
// the kernel; cgdev reports the kill with the limit and the peak, exits 137
// and leaves no group (under systemd: no scope, failed or not).
func TestRunMemoryMaxOOM(t *testing.T) {
	inPass(t, hostPasses...)
	name := tag("oom")
	r := runCgdev(t, 2*time.Minute, []string{vmkit.HelperEnv + "=alloc 200"},
		"--name", name, "-p", "MemoryMax=64M", "--", self(t))
	t.Logf("exit %d after %s; stderr: %s", r.Code, r.Took.Round(time.Millisecond), strings.TrimSpace(r.Stderr))
	if strings.Contains(r.Stdout, "alloc-done") {
		t.Errorf("the allocator got all 200 MiB under MemoryMax=64M:\n%s", r.Stdout)
	}
	if r.Code != 137 {
		t.Errorf("exit status %d, want 137 (SIGKILL by the OOM killer)", r.Code)
	}
	m := oomReport.FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("no OOM report naming MemoryMax=64M and the peak in cgdev's stderr:\n%s", r.Stderr)
	}
	var peak float64
	fmt.Sscan(m[2], &peak)
	if peak < 50 || peak > 64 {
		t.Errorf("reported peak %sM, want near the 64M limit", m[2])
	}
	if g := groupsTagged(name); len(g) > 0 {
		t.Errorf("left behind: %v", g)
	}
}

// TestRunTasksMax: under TasksMax=50 a program trying to start 200 processes
// gets EAGAIN once its group holds 50 tasks; SIGTERM to cgdev stops it all.
func TestRunTasksMax(t *testing.T) {
	inPass(t, hostPasses...)
	name := tag("bomb")
	b := vmkit.Start(t, cgdev(t, t.TempDir(), []string{vmkit.HelperEnv + "=forkbomb 200"},
		"run", "--name", name, "--grace", "1s", "-p", "TasksMax=50", "--", self(t)))
	rep := vmkit.Fields(b.Line(t, "forkbomb-done", 3*time.Minute))
	started, failed := vmkit.Num(t, rep, "started"), vmkit.Num(t, rep, "failed")
	t.Logf("TasksMax=50 in %s: %d started, %d refused (%s), pids.max=%s pids.current=%s",
		rep["cgroup"], started, failed, rep["first_errno"], rep["pids.max"], rep["pids.current"])
	if failed == 0 || rep["pids.max"] != "50" || rep["first_errno"] != "EAGAIN" {
		t.Errorf("the fork bomb was not contained: %v", rep)
	}
	code, took := b.Stop(t, syscall.SIGTERM, 2*time.Minute)
	t.Logf("SIGTERM to cgdev: exit %d after %s; stderr: %s", code, took.Round(time.Millisecond), strings.TrimSpace(b.Stderr.String()))
	for _, p := range strings.Split(rep["pids"], ",") {
		var pid int
		fmt.Sscan(p, &pid)
		if pid > 0 && testenv.Alive(pid) {
			t.Errorf("process %d of the bomb survived", pid)
		}
	}
	if g := groupsTagged(name); len(g) > 0 {
		t.Errorf("left behind: %v", g)
	}
}

// TestRunCPUQuota: CPUQuota=50% holds a busy loop to half of its time
// (cpu.stat of its group over a window: used against used + throttled, in
// the guest kernel's clock, which the host's load does not skew as it skews
// CPU time against the VM's wall clock), throttled in most periods, and
// cpu.max says so.
func TestRunCPUQuota(t *testing.T) {
	inPass(t, hostPasses...)
	name := tag("spin")
	b := vmkit.Start(t, cgdev(t, t.TempDir(), []string{vmkit.HelperEnv + "=busy"},
		"run", "--name", name, "--grace", "1s", "-p", "CPUQuota=50%", "--", self(t)))
	rep := vmkit.Fields(b.Line(t, "busy:", 2*time.Minute))
	dir := filepath.Join(cgroupRoot, rep["cgroup"])
	if v, _ := os.ReadFile(filepath.Join(dir, "cpu.max")); strings.TrimSpace(string(v)) != "50000 100000" {
		t.Errorf("cpu.max of %s = %q, want \"50000 100000\"", dir, v)
	}
	cpu := vmkit.CPUOver(t, dir, 4*time.Second)
	b.Stop(t, syscall.SIGTERM, time.Minute)
	t.Logf("CPUQuota=50%% in %s, the busy loop %s", rep["cgroup"], cpu)
	vmkit.CheckQuota(t, "CPUQuota=50%", cpu, 0.5)
}
