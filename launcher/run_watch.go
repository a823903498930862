package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"golang.org/x/sys/unix"
)

// No run outlives its cgdev. Each `cgdev run` starts a watcher before it
// creates the run's group: a process outside the group, in a session of its
// own (a kill of cgdev's process group, as CI runners send on a timeout,
// does not reach it), that blocks reading a pipe whose only writer is
// cgdev: /bin/sh in read(1). When cgdev ends normally it kills the watcher
// first; when cgdev is killed, the kernel closes the pipe, and the watcher
// reads end-of-file and execs `cgdev __run-watch` (WatchRun), which kills
// the run's group (cgroup.kill: setsid and double-forked descendants
// included) and removes it.
//
// A pipe rather than PR_SET_PDEATHSIG: the death signal follows the thread
// that forked, which in a Go program is any thread, and would reach only the
// one process it is set on, while the group needs something that outlives
// cgdev to kill it.

// runWatcher is a started watcher.
type runWatcher struct {
	cmd *exec.Cmd
	w   *os.File // the pipe's write end: closed by the kernel when cgdev dies
}

// startRunWatcher starts the watcher of the run name, made by the driver
// drv. Its errors go to stderr (nil: none). When services is set, the
// watcher stops them after it has killed the run.
func startRunWatcher(drv string, name string, stderr *os.File, services *RunServices) (*runWatcher, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("starting the run's watcher: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting the run's watcher: %w", err)
	}
	defer r.Close()
	// /bin/sh waits, cgdev acts: the wait costs a run a shell's start
	// (about a millisecond) rather than a second cgdev's.
	args := []string{"--driver", drv, "__run-watch", name}
	if services != nil {
		args = append(args, "-C", services.Dir, "-f", services.Config, "--stop-services", strings.Join(services.Names, ","))
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", `read -r _ <&3; exec "$0" "$@"`, exe}, args...)...)
	cmd.Stderr = stderr
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("starting the run's watcher: %w", err)
	}
	return &runWatcher{cmd: cmd, w: w}, nil
}

// stop ends the watcher without letting it act: cgdev is there to reap.
func (rw *runWatcher) stop() {
	rw.cmd.Process.Kill()
	rw.cmd.Wait()
	rw.w.Close()
}

// WatchRun is the watcher of the run name: it returns once owner (the pipe
// from `cgdev run`) reads end-of-file, having killed and removed the run's
// group, unless another process has claimed the run meanwhile.
func WatchRun(drv cgroup.Driver, name string, owner io.Reader, log io.Writer) error {
	io.Copy(io.Discard, owner)
	claim, err := claimWhenFree(name, 2*time.Second)
	if err != nil || claim == nil {
		return err // nil: a later cgdev collects it
	}
	defer claim.release()
	g, err := findRun(drv, name)
	if err != nil || g == nil {
		return err
	}
	n, err := collectRun(g)
	if n > 0 {
		fmt.Fprintf(log, "cgdev: run %s: cgdev ended before its command; killed %d process(es) of the run\n", name, n)
	}
	return err
}

// claimWhenFree claims name, trying again until timeout: the dying owner's
// socket may close a moment after its pipe. nil, nil: still held.
func claimWhenFree(name string, timeout time.Duration) (*runClaim, error) {
	deadline := time.Now().Add(timeout)
	for {
		claim, err := claimRun(name)
		if claim != nil || err != nil || time.Now().After(deadline) {
			return claim, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// findRun returns the live group of the run name, or nil.
func findRun(drv cgroup.Driver, name string) (cgroup.Group, error) {
	groups, err := drv.Groups("")
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if g.Name() == name {
			return g, nil
		}
	}
	return nil, nil
}

// collectRun kills what is left in the group of a run whose owner is gone
// and removes the group. It returns how many processes it found there.
func collectRun(g cgroup.Group) (int, error) {
	pids, _ := g.Procs()
	if len(pids) > 0 {
		if err := cleanup.Kill(context.Background(), g); err != nil {
			return len(pids), err
		}
	}
	if err := g.Remove(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return len(pids), fmt.Errorf("removing run %s: %w", g.Name(), err)
	}
	return len(pids), nil
}

// ownedMark is the extended attribute `cgdev run` sets on its group's
// cgroup directory: the group was made by a run that held its name, so a
// later cgdev may take the name's being free to mean that its cgdev is gone.
// (Groups made through the driver by other code hold no name.) Linux 5.7
// and later keep user.* attributes on cgroupfs; without them only the
// watcher collects a populated group.
const ownedMark = "user.cgdev.run"

// markOwned sets ownedMark on g's cgroup, if it has one.
func markOwned(g cgroup.Group) {
	if g.Path() != "" {
		unix.Setxattr(g.Path(), ownedMark, []byte(g.Name()), 0)
	}
}

// owned says whether g carries ownedMark.
func owned(g cgroup.Group) bool {
	if g.Path() == "" {
		return false
	}
	_, err := unix.Getxattr(g.Path(), ownedMark, nil)
	return err == nil
}

// CollectRuns kills and removes the groups of runs whose cgdev is gone, and
// says so on log for those that still held processes: empty groups whose
// name nobody holds, and populated ones made by a `cgdev run` (ownedMark)
// whose name nobody holds. It holds each run's claim while it works, so it
// never touches a live run, nor one being started. With the fallback driver, which has no group that
// could be left behind, it does nothing: what a run's watcher missed there is
// listed by `run --list` and stopped by `run --stop`.
func CollectRuns(drv cgroup.Driver, log io.Writer) error {
	if drv.Name() == "fallback" {
		return nil
	}
	groups, err := drv.Groups("")
	if err != nil {
		return err
	}
	var errs []error
	for _, g := range groups {
		claim, err := claimRun(g.Name())
		if err != nil || claim == nil {
			errs = append(errs, err)
			continue
		}
		if pids, _ := g.Procs(); len(pids) > 0 && !owned(g) {
			claim.release()
			continue
		}
		n, err := collectRun(g)
		claim.release()
		if n > 0 {
			fmt.Fprintf(log, "cgdev: run %s: its cgdev is gone; killed %d process(es) it left\n", g.Name(), n)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
