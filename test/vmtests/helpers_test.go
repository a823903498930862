package vmtests_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/test/testenv"
	"golang.org/x/sys/unix"
)

// InVMEnv is set to 1 by the VM test bed; without it every test here skips.
const InVMEnv = "CGDEV_IN_VM"

// helperEnv makes the test binary run a helper program instead of the tests:
// "alloc MiB" (then exit), "alloc MiB hold" (then sleep), "forkbomb ATTEMPTS"
// or "busy".
const helperEnv = "CGDEV_VMTEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(strings.Fields(h)))
	}
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
func self(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// result is how one cgdev invocation ended.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// runCgdev runs cgdev to completion (at most timeout) with extra environment.
func runCgdev(t *testing.T, timeout time.Duration, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cgdevBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second // the group may still hold our pipes; testenv kills it
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if ctx.Err() != nil || errors.Is(err, exec.ErrWaitDelay) {
		t.Fatalf("cgdev %v did not finish within %s\nstdout:\n%s\nstderr:\n%s", args, timeout, r.stdout, r.stderr)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.code = 128 + int(ws.Signal())
		}
	default:
		t.Fatalf("cgdev %v: %v", args, err)
	}
	return r
}

// background is a cgdev invocation left running; its stdout is read line by line.
type background struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *bytes.Buffer
	done   chan struct{} // closed once cgdev has exited; then err is set
	err    error
}

// startCgdev starts cgdev and makes sure it is gone when the test ends.
func startCgdev(t *testing.T, env []string, args ...string) *background {
	t.Helper()
	cmd := exec.Command(cgdevBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &background{cmd: cmd, lines: make(chan string, 1024), stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = b.stderr
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

// line returns the first line of output starting with prefix.
func (b *background) line(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-b.lines:
			if !ok {
				<-b.done
				t.Fatalf("cgdev ended (%v) before printing %q; stderr:\n%s", b.err, prefix, b.stderr)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("no %q line within %s; stderr:\n%s", prefix, timeout, b.stderr)
		}
	}
}

// stop sends sig to cgdev and returns its exit status and how long it took to exit.
func (b *background) stop(t *testing.T, sig syscall.Signal, timeout time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := b.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.done:
		return b.cmd.ProcessState.ExitCode(), time.Since(start)
	case <-time.After(timeout):
		t.Fatalf("cgdev did not exit within %s of %v; stderr:\n%s", timeout, sig, b.stderr)
		return 0, 0
	}
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

// fields parses "key=value" words, e.g. a helper's report line.
func fields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

func num(t *testing.T, m map[string]string, key string) int64 {
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

// flatKey reads one key of a flat-keyed cgroup file such as memory.events.
func flatKey(t *testing.T, d cgroup.Dir, file, key string) int64 {
	t.Helper()
	s, err := d.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == key {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s/%s: %q: %v", d, file, l, err)
			}
			return n
		}
	}
	t.Fatalf("%s/%s has no key %q:\n%s", d, file, key, s)
	return 0
}

// vmstat reads one counter of /proc/vmstat (oom_kill: OOM kills since boot).
func vmstat(t *testing.T, key string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == key {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatalf("/proc/vmstat has no %s", key)
	return 0
}

const mib = 1 << 20

// ---- helpers: the programs the tests confine (run as this binary) ----

func runHelper(args []string) int {
	var err error
	switch {
	case args[0] == "alloc" && len(args) == 2:
		err = allocate(args[1])
	case args[0] == "alloc" && len(args) == 3 && args[2] == "hold":
		if err = allocate(args[1]); err == nil {
			for {
				time.Sleep(time.Hour) // keep the memory until stopped
			}
		}
	case args[0] == "forkbomb" && len(args) == 2:
		err = forkBomb(args[1])
	case args[0] == "busy":
		fmt.Println("busy: spinning")
		for {
		}
	default:
		err = fmt.Errorf("unknown helper %q", args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// allocate touches MiB mebibytes of anonymous memory, 1 MiB at a time, and
// prints what its own cgroup counted.
func allocate(arg string) error {
	n, err := strconv.Atoi(arg)
	if err != nil {
		return err
	}
	debug.SetGCPercent(-1) // nothing is garbage; keep the collector out of the way
	start := time.Now()
	var held [][]byte
	for i := 1; i <= n; i++ {
		b := make([]byte, mib)
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(i)
		}
		held = append(held, b)
		if i%32 == 0 {
			fmt.Printf("alloc: %d MiB after %s\n", i, time.Since(start).Round(time.Millisecond))
		}
	}
	fmt.Printf("alloc-done mib=%d ms=%d %s\n", len(held), time.Since(start).Milliseconds(), ownCgroupReport())
	return nil
}

// forkBomb tries to start attempts processes (busybox sleep), counts how many
// forks the kernel refused, reports, then waits to be stopped.
func forkBomb(arg string) error {
	attempts, err := strconv.Atoi(arg)
	if err != nil {
		return err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	started, failed := 0, 0
	firstErrno := "none"
	var pids []string
	for i := 0; i < attempts; i++ {
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "1000"}, &os.ProcAttr{Files: []*os.File{null, null, null}})
		if err != nil {
			var errno syscall.Errno
			if failed++; failed == 1 && errors.As(err, &errno) {
				firstErrno = unix.ErrnoName(errno)
			} else if failed == 1 {
				firstErrno = "not-an-errno"
			}
			continue
		}
		started++
		pids = append(pids, strconv.Itoa(p.Pid))
	}
	fmt.Printf("forkbomb-done started=%d failed=%d first_errno=%s pids=%s %s\n",
		started, failed, firstErrno, strings.Join(pids, ","), ownCgroupReport())
	for {
		time.Sleep(time.Hour)
	}
}

// ownCgroupReport renders the counters of the caller's own cgroup as key=value words.
func ownCgroupReport() string {
	b, _ := os.ReadFile("/proc/self/cgroup")
	rel := strings.TrimSpace(strings.TrimPrefix(string(b), "0::"))
	d := cgroup.Dir(filepath.Join("/sys/fs/cgroup", rel))
	var w []string
	add := func(k, v string) { w = append(w, k+"="+v) }
	add("cgroup", rel)
	for _, f := range []string{"memory.current", "memory.peak", "memory.swap.current", "pids.current", "pids.max"} {
		if v, err := d.ReadFile(f); err == nil {
			add(f, v)
		}
	}
	for _, f := range []string{"memory.events", "pids.events"} {
		if v, err := d.ReadFile(f); err == nil {
			for _, l := range strings.Split(v, "\n") {
				if k, v, ok := strings.Cut(l, " "); ok {
					add(f+"."+k, v)
				}
			}
		}
	}
	return strings.Join(w, " ")
}
