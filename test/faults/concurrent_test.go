package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
)

// TestConcurrentCommands: with each driver, five loops run start, stop,
// restart and up (ended by Ctrl-C) on one project at once for
// $CGDEV_FAULT_SECONDS (default 10).
// No command hangs (a watchdog dumps the goroutines and the processes, and
// kills what the test started), none crashes; afterwards status reads a
// valid state, one stop leaves nothing, and two bystanders running the
// services' very command without the marker (one in the project directory,
// one outside it) live on.
func TestConcurrentCommands(t *testing.T) {
	length := time.Duration(envUint(t, "CGDEV_FAULT_SECONDS", 10)) * time.Second
	forEachDriver(t, func(t *testing.T, driver string, seed uint64, _ int) {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("replay: CGDEV_FAULT_SEED=%d go test -run TestConcurrentCommands/%s ./test/faults", seed, driver)
			}
		})
		concurrentLoops(t, driver, seed, length)
	})
}

// concurrentLoops is TestConcurrentCommands with one driver.
func concurrentLoops(t *testing.T, driver string, seed uint64, length time.Duration) {
	tag := 200000 + rand.IntN(100000)
	p := newFaultProject(t, driver, fmt.Sprintf(killConfig, tag))
	writeUserFiles(t, p.Dir)
	before := userFiles(t, p.Dir)
	bystanders := []int{startBystander(t, p.Dir, tag), startBystander(t, t.TempDir(), tag)}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchdog := time.AfterFunc(length+2*time.Minute, func() {
		t.Errorf("deadlock: the loops did not end within %s of their end\n%s\n%s", 2*time.Minute, goroutines(), psTree())
		cancel() // kills every cgdev the loops started
	})
	defer watchdog.Stop()

	var wg sync.WaitGroup
	var ran atomic.Int64
	end := time.Now().Add(length)
	for loop := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(loop)))
			for time.Now().Before(end) && ctx.Err() == nil {
				if err := oneCommand(ctx, t, p.Dir, rng); err != nil {
					t.Errorf("loop %d: %v", loop, err)
				}
				ran.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d commands in %s", ran.Load(), length)
	if t.Failed() {
		return
	}

	code, out, errs := p.Cgdev(time.Minute, "status", "--json")
	var st struct {
		Project string
	}
	if (code != 0 && code != 3) || json.Unmarshal([]byte(out), &st) != nil || st.Project != p.ID {
		t.Errorf("status --json after the loops: exit %d\n%s%s", code, out, errs)
	}
	assertPidsOurs(t, p)
	if code, out, errs := p.Cgdev(time.Minute, "stop"); code != 0 {
		t.Errorf("final stop: exit %d\n%s%s", code, out, errs)
	}
	p.AssertNothingLeft()
	for _, f := range []string{".cgdev/state.json", ".pids/services.pids", ".pids/services.pids.groups", ".pids/services.pids.services"} {
		if _, err := os.Stat(filepath.Join(p.Dir, f)); err == nil {
			t.Errorf("%s left behind by the final stop", f)
		}
	}
	for _, pid := range bystanders {
		if !testenv.Alive(pid) {
			t.Errorf("a bystander (PID %d, sleep %d, no marker, in the project directory or outside it) was killed", pid, tag)
		}
	}
	sleep := fmt.Sprintf("sleep %d", tag)
	if !testenv.Eventually(5*time.Second, func() bool { return len(running(t, sleep)) == len(bystanders) }) {
		left := running(t, sleep)
		t.Errorf("processes running the services' command after the stop: %v (only the bystanders %v may)", left, bystanders)
	}
	assertUnchanged(t, before, userFiles(t, p.Dir))
}

// oneCommand runs one command drawn from rng: start, stop, restart, or up
// interrupted (SIGINT, as Ctrl-C) after a random while. A command that
// crashes (exit 2, a panic) or dies of a signal is an error; exit 1 (a
// start undone by a concurrent stop) is not.
func oneCommand(ctx context.Context, t *testing.T, dir string, rng *rand.Rand) error {
	args := [][]string{{"start"}, {"stop"}, {"restart"}, {"up"}, {"start", "web"}, {"stop", "slow"}}[rng.IntN(6)]
	cmd := exec.CommandContext(ctx, testenv.Binary(t), args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	if args[0] == "up" {
		timer := time.AfterFunc(time.Duration(rng.Int64N(int64(2*time.Second))), func() { cmd.Process.Signal(syscall.SIGINT) })
		defer timer.Stop()
	}
	err := cmd.Wait()
	if ctx.Err() != nil {
		return nil // the watchdog fired and said why
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return err
	}
	code := cmd.ProcessState.ExitCode()
	if code > 1 || code < 0 && !(args[0] == "up" && strings.Contains(cmd.ProcessState.String(), "interrupt")) || strings.Contains(out.String(), "panic:") || strings.Contains(out.String(), "DATA RACE") {
		return fmt.Errorf("cgdev %s: %s\n%s", strings.Join(args, " "), cmd.ProcessState, out.String())
	}
	return nil
}

// goroutines is the stacks of every goroutine of the test.
func goroutines() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// psTree is what runs on the machine, as a forest.
func psTree() string {
	out, _ := exec.Command("ps", "-eo", "pid,ppid,stat,etime,args", "--forest").CombinedOutput()
	return string(out)
}

// assertPidsOurs fails for a PID in .pids/services.pids that is not a live
// process of the project: scripts signal what it lists.
func assertPidsOurs(t *testing.T, p *testenv.Project) {
	b, err := os.ReadFile(filepath.Join(p.Dir, ".pids", "services.pids"))
	if err != nil {
		return // nothing runs, or nothing recorded: no PID to signal
	}
	ours := map[int]bool{}
	for _, pid := range p.Marked() {
		ours[pid] = true
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err != nil || !ours[pid] {
			t.Errorf(".pids/services.pids lists %q, not a live process of the project:\n%s", f, b)
		}
	}
}

// startBystander starts `sleep tag` in dir, as the test's own process
// (killed at cleanup), and returns its PID.
func startBystander(t *testing.T, dir string, tag int) int {
	cmd := exec.Command("sleep", strconv.Itoa(tag))
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	return cmd.Process.Pid
}
