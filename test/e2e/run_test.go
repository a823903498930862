package e2e_test

import (
	"bytes"
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
	"golang.org/x/sys/unix"
)

// cgdevRun runs the cgdev binary with args and returns its exit status and output.
func cgdevRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return cgdevIn(t, "", nil, args...)
}

// assertNoGroups fails when cgdev left its base cgroup behind.
func assertNoGroups(t *testing.T, h *cgroup.Host) {
	t.Helper()
	base := filepath.Join(h.Cgroup2Mount, h.Base)
	if _, err := os.Stat(base); !errors.Is(err, os.ErrNotExist) {
		entries, _ := os.ReadDir(base)
		t.Errorf("cgdev left %s behind (%d entries)", base, len(entries))
	}
}

func readPids(t *testing.T, file string) []int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, n)
		testenv.KillOnCleanup(t, n)
	}
	return pids
}

func TestRunPassesExitStatus(t *testing.T) {
	h := testenv.CgroupBase(t)
	for script, want := range map[string]int{"exit 0": 0, "exit 7": 7, "kill -TERM $$": 128 + 15, "kill -KILL $$": 137} {
		code, _, stderr := cgdevRun(t, "run", "--", "sh", "-c", script)
		if code != want {
			t.Errorf("cgdev run -- sh -c %q exited %d; want %d (stderr %q)", script, code, want, stderr)
		}
	}
	assertNoGroups(t, h)
}

// TestRunReapsLeftovers: a setsid child and a double-forked child outlive the
// command's main process; cgdev must stop them at once and say so.
func TestRunReapsLeftovers(t *testing.T) {
	h := testenv.CgroupBase(t)
	pidFile := filepath.Join(t.TempDir(), "pids")
	script := `setsid sleep 1000 & echo $! >> "$0"; (sleep 1000 & echo $! >> "$0"); exit 0`
	start := time.Now()
	code, _, stderr := cgdevRun(t, "run", "--", "sh", "-c", script, pidFile)
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	pids := readPids(t, pidFile)
	if len(pids) != 2 {
		t.Fatalf("expected 2 leftover pids, got %v", pids)
	}
	for _, p := range pids {
		if testenv.Alive(p) {
			t.Errorf("leftover %d survived cgdev run", p)
		}
	}
	if !strings.Contains(stderr, "reaped 2 leftover process(es) on SIGTERM") {
		t.Errorf("stderr %q does not report the 2 reaped processes", stderr)
	}
	if took > 2*time.Second {
		t.Errorf("cgdev run took %s: leftovers that exit on SIGTERM must not wait out the grace period", took)
	}
	assertNoGroups(t, h)
}

// TestRunForwardsSignals: SIGTERM sent to cgdev reaches the command.
func TestRunForwardsSignals(t *testing.T) {
	testenv.CgroupBase(t)
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(testenv.Binary(t), "run", "--", "sh", "-c",
		`trap 'exit 42' TERM; touch "$0"; while :; do sleep 0.05; done`, ready)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	if !testenv.Eventually(5*time.Second, func() bool { _, err := os.Stat(ready); return err == nil }) {
		t.Fatal("command did not start")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 42 {
		t.Errorf("exit %d; want 42 from the command's TERM trap", code)
	}
}

// TestRunCtrlCInTerminal: on a real pseudo-terminal, Ctrl-C reaches the
// command (which cgdev made the foreground job) and cgdev passes its status.
func TestRunCtrlCInTerminal(t *testing.T) {
	testenv.CgroupBase(t)
	master, slave := openPTY(t)
	cmd := exec.Command(testenv.Binary(t), "run", "--", "sh", "-c",
		`trap 'echo got-INT; exit 42' INT
set -- $(cut -d')' -f2 /proc/$$/stat)   # $3 = pgrp, $6 = terminal's foreground pgrp
[ "$3" = "$6" ] && echo foreground-job
echo ready; while :; do sleep 0.05; done`)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	slave.Close()
	out := &ptyReader{f: master}
	if !out.waitFor("ready", 5*time.Second) {
		t.Fatalf("command did not start; terminal shows %q", out.buf.String())
	}
	if !strings.Contains(out.buf.String(), "foreground-job") {
		t.Errorf("the command is not the terminal's foreground job; terminal shows %q", out.buf.String())
	}
	master.Write([]byte{3}) // Ctrl-C
	if !out.waitFor("got-INT", 5*time.Second) {
		t.Errorf("Ctrl-C did not reach the command; terminal shows %q", out.buf.String())
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 42 {
		t.Errorf("exit %d; want 42", code)
	}
}

func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

type ptyReader struct {
	f   *os.File
	buf bytes.Buffer
}

func (r *ptyReader) waitFor(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	b := make([]byte, 1024)
	for !strings.Contains(r.buf.String(), s) {
		if time.Now().After(deadline) {
			return false
		}
		r.f.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _ := r.f.Read(b)
		r.buf.Write(b[:n])
	}
	return true
}

func TestRunBadInput(t *testing.T) {
	h := testenv.CgroupBase(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "-p", "Bogus=1", "--", "true"}, 2, `unknown property "Bogus"`},
		{[]string{"run", "-p", "MemoryMax=12Q", "--", "true"}, 2, `property MemoryMax: "12Q" is not a size`},
		{[]string{"run", "--"}, 2, "no command given"},
		{[]string{"run"}, 2, "no command given"},
		{[]string{"run", "--", "no-such-command-xyz"}, 1, `command "no-such-command-xyz": not found`},
		{[]string{"run", "--name", "a/b", "--", "true"}, 1, `--name "a/b"`},
		{[]string{"run", "--grace", "-1s", "--", "true"}, 2, "--grace"},
	} {
		code, _, stderr := cgdevRun(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("cgdev %v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
	assertNoGroups(t, h)
}

func TestRunRefusesUnenforceableLimit(t *testing.T) {
	h := testenv.CgroupBase(t)
	if h.Has("memory") {
		t.Skip("this machine can enforce MemoryMax; the refusal is tested in the VM suite (test/vm)")
	}
	marker := filepath.Join(t.TempDir(), "ran")
	code, _, stderr := cgdevRun(t, "run", "-p", "MemoryMax=64M", "--", "touch", marker)
	if code == 0 || !strings.Contains(stderr, "MemoryMax cannot be enforced") || !strings.Contains(stderr, `"memory" controller`) {
		t.Errorf("exit %d, stderr %q; want a refusal naming MemoryMax and the memory controller", code, stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although its limit was refused")
	}
	code, _, stderr = cgdevRun(t, "run", "--ignore-unsupported", "-p", "MemoryMax=64M", "--", "touch", marker)
	if code != 0 || !strings.Contains(stderr, "WITHOUT [MemoryMax]") {
		t.Errorf("--ignore-unsupported: exit %d, stderr %q; want a run with a warning", code, stderr)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Error("--ignore-unsupported did not run the command")
	}
	assertNoGroups(t, h)
}

// TestRunConcurrent: parallel runs share the base directory, which the last
// one removes; none may fail for it, and nothing is left.
func TestRunConcurrent(t *testing.T) {
	h := testenv.CgroupBase(t)
	bin := testenv.Binary(t)
	errs := make(chan error, 16)
	for i := 0; i < cap(errs); i++ {
		go func() {
			out, err := exec.Command(bin, "run", "--", "sh", "-c", "sleep 0.0$((RANDOM % 5))").CombinedOutput()
			if err != nil {
				err = errors.New(err.Error() + ": " + string(out))
			}
			errs <- err
		}()
	}
	for i := 0; i < cap(errs); i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	assertNoGroups(t, h)
}

// TestRunLeavesCommandFlagsAlone: flags after the command belong to it, also
// without "--", and cgdev's own flags there are not taken.
func TestRunLeavesCommandFlagsAlone(t *testing.T) {
	testenv.CgroupBase(t)
	code, out, stderr := cgdevRun(t, "run", "echo", "-n", "hi", "--grace", "1s", "-p", "X=1")
	if code != 0 || out != "hi --grace 1s -p X=1" {
		t.Errorf("cgdev run echo -n hi --grace 1s -p X=1: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// TestRunCtrlZInTerminal: Ctrl-Z stops the command, and cgdev stops itself
// as a job does, so the shell gets its prompt back; when continued (fg),
// cgdev gives the terminal back and the command runs on. (The command execs
// sleep rather than looping over it: dash forks with vfork, and a vfork
// child stopped before its exec leaves the shell in D state, unstoppable and
// invisible to any job control, cgdev's or a shell's.)
func TestRunCtrlZInTerminal(t *testing.T) {
	testenv.CgroupBase(t)
	master, slave := openPTY(t)
	cmd := exec.Command(testenv.Binary(t), "run", "--", "sh", "-c", `echo ready; exec sleep 1000`)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	slave.Close()
	out := &ptyReader{f: master}
	if !out.waitFor("ready", 5*time.Second) {
		t.Fatalf("command did not start; terminal shows %q", out.buf.String())
	}
	time.Sleep(50 * time.Millisecond) // let sh exec sleep
	master.Write([]byte{0x1a})        // Ctrl-Z
	if !testenv.Eventually(5*time.Second, func() bool { return testenv.State(cmd.Process.Pid) == 'T' }) {
		t.Fatalf("cgdev did not stop itself after Ctrl-Z stopped the command (state %c)", testenv.State(cmd.Process.Pid))
	}
	cmd.Process.Signal(syscall.SIGCONT) // what the shell's fg does
	time.Sleep(100 * time.Millisecond)
	master.Write([]byte{3}) // Ctrl-C: reaches the command only if it has the terminal again
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("after fg, Ctrl-C did not end the command; terminal shows %q", out.buf.String())
	}
	if ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("cgdev ended with %v; want death by SIGINT, like its command's", cmd.ProcessState)
	}
}

// TestRunDiesOfSIGINTLikeItsCommand: a command killed by SIGINT makes cgdev
// die of SIGINT too, so that a shell loop around it stops on Ctrl-C.
func TestRunDiesOfSIGINTLikeItsCommand(t *testing.T) {
	testenv.CgroupBase(t)
	cmd := exec.Command(testenv.Binary(t), "run", "--", "sh", "-c", "kill -INT $$")
	cmd.Run()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("cgdev ended with %v; want death by SIGINT like its command", cmd.ProcessState)
	}
}
