package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// orphanScript is the command of the runs below: a setsid child and a
// plain one, their PIDs and its own written to $0, then a wait.
const orphanScript = `setsid sleep 300 & echo $! >> "$0"; sleep 300 & echo $! >> "$0"; echo $$ >> "$0"; wait`

// runUnderDriver prepares a test of `cgdev run` with driver: a private
// cgroup base, $CGDEV_DRIVER, and for systemd a user manager (else a skip)
// and a check that no scope of the run outlives the test. It returns the
// --name to give the run, unique to the test.
func runUnderDriver(t *testing.T, driver string) string {
	t.Helper()
	if driver == "systemd" {
		needUserManager(t)
	}
	testenv.CgroupBase(t)
	t.Setenv(launcher.DriverEnv, driver)
	name, part := runName("owner-")
	if driver == "systemd" {
		t.Cleanup(func() { assertNoScopes(t, part) })
	}
	return name
}

// startOrphanRun starts `cgdev run --name name -- sh -c orphanScript` in a
// process group of its own (as a CI runner starts a job) and returns it with
// the PIDs of the command's three processes, once all are running.
func startOrphanRun(t *testing.T, name string) (*exec.Cmd, []int) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pids")
	cmd := exec.Command(testenv.Binary(t), "run", "--name", name, "--", "sh", "-c", orphanScript, pidFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	var pids []int
	if !testenv.Eventually(10*time.Second, func() bool {
		b, _ := os.ReadFile(pidFile)
		return len(strings.Fields(string(b))) == 3
	}) {
		t.Fatal("the run's command did not start its children")
	}
	pids = readPids(t, pidFile)
	return cmd, pids
}

// assertAllGone fails unless every pid is gone within 10 s (the promise is
// one second: BenchmarkRunKilled measures it).
func assertAllGone(t *testing.T, pids []int, after string) {
	t.Helper()
	if !testenv.Eventually(10*time.Second, func() bool {
		for _, p := range pids {
			if testenv.Alive(p) && testenv.State(p) != 'Z' {
				return false
			}
		}
		return true
	}) {
		for _, p := range pids {
			if testenv.Alive(p) {
				t.Errorf("process %d (%s) of the run survived %s", p, testenv.Cmdline(p), after)
			}
		}
	}
}

// listRuns returns `cgdev run --list`'s output, failing the test on error.
func listRuns(t *testing.T) (stdout, stderr string) {
	t.Helper()
	code, stdout, stderr := cgdevRun(t, "run", "--list")
	if code != 0 {
		t.Fatalf("cgdev run --list: exit %d, stderr %q", code, stderr)
	}
	return stdout, stderr
}

// TestRunKilledTakesItsCommand: SIGKILL of cgdev run, alone or with its
// whole process group (a CI timeout), takes the command and its setsid
// child with it, and leaves no group: no run outlives its cgdev.
func TestRunKilledTakesItsCommand(t *testing.T) {
	for _, driver := range drivers {
		for _, target := range []string{"cgdev", "process-group"} {
			t.Run(driver+"/"+target, func(t *testing.T) {
				name := runUnderDriver(t, driver)
				cmd, pids := startOrphanRun(t, name)
				kill := cmd.Process.Pid
				if target == "process-group" {
					kill = -kill
				}
				if err := syscall.Kill(kill, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				cmd.Wait()
				assertAllGone(t, pids, "kill -9 of its cgdev")
				if !testenv.Eventually(10*time.Second, func() bool {
					out, _ := listRuns(t)
					return !strings.Contains(out, name)
				}) {
					out, _ := listRuns(t)
					t.Errorf("run --list still shows the run of the killed cgdev:\n%s", out)
				}
			})
		}
	}
}

// watcherOf returns the PID of the run watcher cgdev (pid) started.
func watcherOf(t *testing.T, pid int) int {
	t.Helper()
	var watcher int
	if !testenv.Eventually(10*time.Second, func() bool {
		// children lists each thread's own: any of Go's threads may fork.
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		var b []byte
		for _, f := range files {
			c, _ := os.ReadFile(f)
			b = append(append(b, c...), ' ')
		}
		for _, f := range strings.Fields(string(b)) {
			child, _ := strconv.Atoi(f)
			if strings.Contains(testenv.Cmdline(child), "__run-watch") {
				watcher = child
				return true
			}
		}
		return false
	}) {
		t.Fatalf("cgdev run (%d) has no __run-watch child", pid)
	}
	testenv.KillOnCleanup(t, watcher)
	return watcher
}

// TestRunStaleGroupCollected: when cgdev and its watcher are both killed,
// the run's group is stale; the next cgdev command that looks at runs
// kills what it holds and removes it, naming it. With the fallback driver
// (no group) run --list shows it with no cgdev, and run --stop stops it.
func TestRunStaleGroupCollected(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			name := runUnderDriver(t, driver)
			cmd, pids := startOrphanRun(t, name)
			syscall.Kill(watcherOf(t, cmd.Process.Pid), syscall.SIGKILL)
			cmd.Process.Kill()
			cmd.Wait()
			for _, p := range pids {
				if !testenv.Alive(p) {
					t.Fatalf("process %d died with cgdev and its watcher: nothing is left to collect", p)
				}
			}
			out, stderr := listRuns(t)
			if driver == "fallback" {
				if !strings.Contains(out, name) || !strings.Contains(out, "gone") {
					t.Errorf("run --list does not show the run %s with its cgdev gone:\n%s", name, out)
				}
				run := strings.Fields(out[strings.Index(out, name):])[0]
				if code, _, stderr := cgdevRun(t, "run", "--stop", run, "--grace", "1s"); code != 0 {
					t.Fatalf("run --stop %s: exit %d, stderr %q", run, code, stderr)
				}
			} else if !strings.Contains(stderr, "its cgdev is gone; killed 3 process(es)") || strings.Contains(out, name) {
				t.Errorf("run --list did not collect the stale run %s: stdout\n%s\nstderr %q", name, out, stderr)
			}
			assertAllGone(t, pids, "the stale run's collection")
			if out, _ := listRuns(t); strings.Contains(out, name) {
				t.Errorf("run --list still shows the collected run:\n%s", out)
			}
		})
	}
}

// TestRunListAndStop: run --list shows a live run with its cgdev's PID;
// run --stop stops it as stop stops a service, and its cgdev exits 143 as
// when its command is killed by SIGTERM; an unknown run is an error.
func TestRunListAndStop(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			name := runUnderDriver(t, driver)
			cmd, pids := startOrphanRun(t, name)
			out, _ := listRuns(t)
			line := ""
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, name+"-") {
					line = l
				}
			}
			f := strings.Fields(line)
			if len(f) != 3 || f[1] != strconv.Itoa(cmd.Process.Pid) || f[2] != "3" {
				t.Fatalf("run --list shows %q for the run; want its name, cgdev's PID %d and 3 processes:\n%s", line, cmd.Process.Pid, out)
			}
			code, stdout, stderr := cgdevRun(t, "run", "--stop", f[0], "--grace", "5s")
			if code != 0 || !strings.Contains(stdout, "stopped run "+f[0]) {
				t.Fatalf("run --stop %s: exit %d, stdout %q, stderr %q", f[0], code, stdout, stderr)
			}
			cmd.Wait()
			if got := cmd.ProcessState.ExitCode(); got != 128+15 {
				t.Errorf("the stopped run's cgdev exited %d; want 143 (its command ended by SIGTERM)", got)
			}
			assertAllGone(t, pids, "run --stop")
			if out, _ := listRuns(t); strings.Contains(out, name) {
				t.Errorf("run --list still shows the stopped run:\n%s", out)
			}
			if code, _, stderr := cgdevRun(t, "run", "--stop", name+"-nosuch"); code != 1 || !strings.Contains(stderr, "no run named") {
				t.Errorf("run --stop of an unknown run: exit %d, stderr %q; want 1 and \"no run named\"", code, stderr)
			}
		})
	}
}

// TestRunWatcherEndsWithRun: a run that ends normally leaves no watcher
// behind, with every driver.
func TestRunWatcherEndsWithRun(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			name := runUnderDriver(t, driver)
			if code, _, stderr := cgdevRun(t, "run", "--name", name, "--", "true"); code != 0 {
				t.Fatalf("cgdev run -- true: exit %d, stderr %q", code, stderr)
			}
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				pid, err := strconv.Atoi(e.Name())
				if err == nil && strings.Contains(testenv.Cmdline(pid), "__run-watch "+name) {
					testenv.KillOnCleanup(t, pid)
					t.Errorf("the watcher (PID %d) outlived its run: %s", pid, testenv.Cmdline(pid))
				}
			}
		})
	}
}
