package cleanup_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
)

const inPidNS = "CGDEV_TEST_IN_PID_NAMESPACE"

// TestClassifyRecycledPID: a PID recycled between the sweep's reads of one
// process never gets the first process's marker recorded with the second
// process's identity. The PID is really recycled: the test re-runs itself in
// a PID namespace of its own (unshare), where it alone forks and may set
// ns_last_pid, so nothing outside it is touched.
func TestClassifyRecycledPID(t *testing.T) {
	if os.Getenv(inPidNS) == "" {
		unshare, err := exec.LookPath("unshare")
		if err != nil || os.Geteuid() != 0 {
			t.Skip("needs root and unshare(1) for a PID namespace of its own")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, unshare, "--pid", "--fork", "--kill-child", "--mount-proc",
			os.Args[0], "-test.run=^TestClassifyRecycledPID$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), inPidNS+"=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in a PID namespace:\n%s", out)
		if err != nil {
			t.Fatalf("the test in a PID namespace failed: %v", err)
		}
		return
	}

	const project = "recycle-test"
	a := start(t, project)
	if o, ok := cleanup.ClassifyAfterMarker(project, a.Process.Pid, nil); !ok || o.PID != a.Process.Pid {
		t.Fatalf("the marked process %d is not classified as an orphan: %+v %v", a.Process.Pid, o, ok)
	}
	time.Sleep(50 * time.Millisecond) // so that the recycled PID's start time differs (10 ms ticks)
	var b *exec.Cmd
	o, ok := cleanup.ClassifyAfterMarker(project, a.Process.Pid, func(pid int) {
		a.Process.Kill()
		a.Wait()
		b = recycle(t, pid)
	})
	bp, _ := proc.ReadProc(b.Process.Pid)
	if ok {
		t.Errorf("PID %d, recycled for an unmarked process (start %d) after the marker was read, was classified as the project's: %+v",
			b.Process.Pid, bp.StartTicks, o)
	}
}

// start starts a sleep carrying project's marker, killed when the test ends.
func start(t *testing.T, project string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	if project != "" {
		cmd.Env = append(os.Environ(), proc.ProjectEnv+"="+project, proc.ServiceEnv+"=svc")
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testenv.WaitCmdline(t, cmd.Process.Pid, "sleep 1000") // its environ is set up with it
	return cmd
}

// recycle starts an unmarked sleep with PID pid (free again), setting the
// namespace's last PID just below it. A Go runtime thread created meanwhile
// may take the PID first; then it tries again.
func recycle(t *testing.T, pid int) *exec.Cmd {
	t.Helper()
	for range 100 {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Fatal(err)
		}
		cmd := start(t, "")
		if cmd.Process.Pid == pid {
			return cmd
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Fatalf("could not get PID %d again", pid)
	return nil
}
