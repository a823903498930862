// Package vmkit holds what the VM test suites share (test/vmtests in the
// pure-cgroup2 VM, test/sdvmtests in the systemd VM): running the real cgdev
// binary to completion or in the background, reading cgroup counters, and the
// programs the tests confine (an allocator, a fork bomb, a busy loop), which
// the test binary itself runs when HelperEnv is set, so that a VM needs no
// other static program.
package vmkit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
)

// MiB is a mebibyte.
const MiB = 1 << 20

// Result is how one command ended.
type Result struct {
	Code           int // exit status, 128+N when killed by signal N
	Stdout, Stderr string
	Took           time.Duration
}

// Run runs cmd (not yet started) to completion, failing the test when it
// does not end within timeout or cannot be started.
func Run(t testing.TB, timeout time.Duration, cmd *exec.Cmd) Result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second // a group may still hold our pipes; the test kills it
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not finish within %s\nstdout:\n%s\nstderr:\n%s", cmd.Args, timeout, out.String(), errb.String())
	}
	r := Result{Stdout: out.String(), Stderr: errb.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Code = 128 + int(ws.Signal())
		}
	case errors.Is(err, exec.ErrWaitDelay):
		t.Fatalf("%v exited but something it started kept its output open\nstdout:\n%s\nstderr:\n%s", cmd.Args, r.Stdout, r.Stderr)
	default:
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return r
}

// Background is a command left running; its stdout is read line by line.
type Background struct {
	Cmd    *exec.Cmd
	Stderr *bytes.Buffer
	lines  chan string
	done   chan struct{} // closed once the command has exited; then err is set
	err    error
}

// Start starts cmd and makes sure it is gone when the test ends.
func Start(t testing.TB, cmd *exec.Cmd) *Background {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &Background{Cmd: cmd, lines: make(chan string, 1024), Stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = b.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case b.lines <- sc.Text():
			default: // nobody is reading: drop
			}
		}
		close(b.lines)
		b.err = cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// Line returns the first line of output starting with prefix.
func (b *Background) Line(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-b.lines:
			if !ok {
				<-b.done
				t.Fatalf("%v ended (%v) before printing %q; stderr:\n%s", b.Cmd.Args, b.err, prefix, b.Stderr)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("no %q line within %s; stderr:\n%s", prefix, timeout, b.Stderr)
		}
	}
}

// Stop sends sig to the command and returns its exit status and how long it
// took to exit.
func (b *Background) Stop(t testing.TB, sig syscall.Signal, timeout time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := b.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.done:
		return b.Cmd.ProcessState.ExitCode(), time.Since(start)
	case <-time.After(timeout):
		t.Fatalf("%v did not exit within %s of %v; stderr:\n%s", b.Cmd.Args, timeout, sig, b.Stderr)
		return 0, 0
	}
}

// Fields parses "key=value" words, e.g. a helper's report line.
func Fields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// Num is the integer value of key in m.
func Num(t testing.TB, m map[string]string, key string) int64 {
	t.Helper()
	v, ok := m[key]
	if !ok {
		t.Fatalf("no %s in %v", key, m)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", key, v, err)
	}
	return n
}

// FlatKey reads one key of a flat-keyed file such as memory.events or
// /proc/vmstat ("key value" lines).
func FlatKey(t testing.TB, file, key string) int64 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", file, l, err)
			}
			return n
		}
	}
	t.Fatalf("%s has no key %q:\n%s", file, key, b)
	return 0
}

// LineWith returns the first line of out starting with prefix.
func LineWith(t testing.TB, out, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no %q line in:\n%s", prefix, out)
	return ""
}

// Within runs cmd with a deadline; for commands a test only needs the output of.
func Within(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// CPUStat is what a cgroup's cpu.stat counted over a window, and the window
// by the wall clock.
type CPUStat struct {
	Wall                     time.Duration
	UsageUsec, ThrottledUsec int64
	NrPeriods, NrThrottled   int64
}

// CPUOver reads the cgroup dir's cpu.stat before and after window. The
// bandwidth keys (throttled_usec, nr_periods, nr_throttled) count as 0 where
// cpu.stat lacks them: a group without the cpu controller is never throttled.
func CPUOver(t testing.TB, dir string, window time.Duration) CPUStat {
	t.Helper()
	stat := filepath.Join(dir, "cpu.stat")
	read := func() CPUStat {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]int64{}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, " "); ok {
				keys[k], _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		if _, ok := keys["usage_usec"]; !ok {
			t.Fatalf("%s has no usage_usec:\n%s", stat, b)
		}
		return CPUStat{Wall: time.Duration(time.Now().UnixNano()), UsageUsec: keys["usage_usec"],
			ThrottledUsec: keys["throttled_usec"], NrPeriods: keys["nr_periods"], NrThrottled: keys["nr_throttled"]}
	}
	a := read()
	time.Sleep(window)
	b := read()
	return CPUStat{Wall: b.Wall - a.Wall, UsageUsec: b.UsageUsec - a.UsageUsec, ThrottledUsec: b.ThrottledUsec - a.ThrottledUsec,
		NrPeriods: b.NrPeriods - a.NrPeriods, NrThrottled: b.NrThrottled - a.NrThrottled}
}

// WallShare is the CPU time used per wall-clock time (1.0 = one CPU). In a
// VM under emulation on a loaded host it is skewed: time the host took from
// the virtual CPU is charged to whatever the guest was running.
func (s CPUStat) WallShare() float64 {
	return float64(s.UsageUsec) / float64(s.Wall.Microseconds())
}

// QuotaShare is, for a group that always wants a CPU (one busy loop), the
// share of its time the quota let it run: usage / (usage + time throttled),
// both by the guest kernel's own scheduler clock, over the periods the
// quota was enforced in. Unlike WallShare it does not move with the host's
// load: a late period timer lengthens the throttled time as much as the
// run, and an overrun is paid back in the next period.
func (s CPUStat) QuotaShare() float64 {
	return float64(s.UsageUsec) / float64(s.UsageUsec+s.ThrottledUsec)
}

// ThrottledShare is the fraction of the enforcement periods in which the
// group ran out of quota: near 1 for a busy loop under a quota.
func (s CPUStat) ThrottledShare() float64 {
	if s.NrPeriods == 0 {
		return 0
	}
	return float64(s.NrThrottled) / float64(s.NrPeriods)
}

// CheckQuota fails t unless s is that of one busy loop held to quota (0.5
// for CPUQuota=50%): it ran at most quota + 10 points of the time it
// wanted a CPU (QuotaShare), was throttled in at least half of the periods,
// and got at least 15% of a CPU by the wall clock (else the VM was starved
// and the figures say nothing).
func CheckQuota(t testing.TB, what string, s CPUStat, quota float64) {
	t.Helper()
	if share := s.QuotaShare(); share > quota+0.10 {
		t.Errorf("%s: the loop ran %.0f%% of the time it wanted a CPU (used + throttled)", what, share*100)
	}
	if s.ThrottledShare() < 0.5 {
		t.Errorf("%s: throttled in only %d of %d periods: the quota hardly bit", what, s.NrThrottled, s.NrPeriods)
	}
	if s.WallShare() < 0.15 {
		t.Errorf("%s: the loop got only %.0f%% of a CPU: the VM is starved, the measurement says nothing", what, s.WallShare()*100)
	}
}

// String is the evidence a test logs.
func (s CPUStat) String() string {
	return fmt.Sprintf("over %s: usage %dms, throttled %dms (%.0f%% of usage+throttled), %d/%d periods throttled, %.0f%% of a CPU by the wall clock",
		s.Wall.Round(time.Millisecond), s.UsageUsec/1000, s.ThrottledUsec/1000, s.QuotaShare()*100, s.NrThrottled, s.NrPeriods, s.WallShare()*100)
}

// Self is the running test binary (which runs helpers with HelperEnv set).
func Self(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// PIDs returns the PIDs listed in file, e.g. those a test service wrote.
func PIDs(file string) []int {
	b, _ := os.ReadFile(file)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Marked lists every live process carrying project's CGDEV_PROJECT marker.
func Marked(t testing.TB, project string) []int { return testenv.Marked(t, project) }

// WaitPIDs waits until file lists at least n PIDs and returns them.
func WaitPIDs(t testing.TB, file string, n int, timeout time.Duration) []int {
	t.Helper()
	if !testenv.Eventually(timeout, func() bool { return len(PIDs(file)) >= n }) {
		t.Fatalf("%s: want %d PIDs, have %v", file, n, PIDs(file))
	}
	return PIDs(file)
}

// Ours reports whether pid is a live process of project: it carries the
// project's marker, or its cgroup path contains cgroupPart. A recycled PID
// of an unrelated process is neither.
func Ours(pid int, project, cgroupPart string) bool {
	if !testenv.Alive(pid) {
		return false
	}
	// MarkerOf, not ReadMarker: a process caught mid-exec (setsid
	// exec'ing sleep) shows an empty environment for a moment.
	if pr, err := proc.ReadProc(pid); err == nil && proc.MarkerOf(pr).Project == project {
		return true
	}
	cg, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	return strings.Contains(string(cg), cgroupPart)
}

// AssertNoSurvivors fails t for each PID listed in dir/p/<file> (for each
// file) that is still a live process of project (Ours, with cgroupPart), and
// for each process carrying the project's marker.
func AssertNoSurvivors(t testing.TB, dir, project, cgroupPart string, files ...string) {
	t.Helper()
	for _, f := range files {
		for _, pid := range PIDs(filepath.Join(dir, "p", f)) {
			if Ours(pid, project, cgroupPart) {
				t.Errorf("PID %d from p/%s survived the stop: %s", pid, f, proc.Cmdline(pid))
			}
		}
	}
	if m := Marked(t, project); len(m) > 0 {
		t.Errorf("processes carrying %s=%s survived: %v", proc.ProjectEnv, project, m)
	}
}
