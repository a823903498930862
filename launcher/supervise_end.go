package launcher

import (
	"context"
	"os"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/proc"
	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// reasonFileChange is the end of an instance restarted for a file change.
const reasonFileChange = "file change"

// trigger asks the watcher to end an instance that still runs.
type trigger struct {
	reason string // becomes the end's Reason
}

// watchInstance waits until inst ends and says how: its main process
// exited (with the status when this process is its parent; unknown when it
// was adopted), its group emptied (a daemonized service), or its liveness
// check failed or a watched file changed (then the group is emptied here).
// It returns nil when ctx ends first, leaving the instance as it is.
// files, when set, is the service's watch of its files (openFileWatch),
// read here until inst ends.
func (sv *supervisor) watchInstance(ctx context.Context, inst *instance, files *fsnotify.Watcher) *ServiceExit {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The group's memory.peak and oom_kill, read as they change, for a
	// service with a memory limit: a systemd scope's cgroup is gone by the
	// time an OOM-killed instance is looked at, and with it the peak (the
	// manager keeps only the result).
	var memory *cgroup.MemoryWatch
	if _, limited := inst.svc.Limits.Get("MemoryMax"); limited {
		memory = cgroup.WatchMemory(inst.group.Path())
		defer memory.Stop()
	}
	triggers := make(chan trigger, 1)
	if inst.svc.Health != nil {
		go sv.liveness(ctx, inst, triggers)
	}
	if files != nil {
		// Its reader ends before the next instance's starts: a change is
		// read by the one reader that will act on it.
		read := make(chan struct{})
		go func() { defer close(read); sv.watchFiles(ctx, inst, files, triggers) }()
		defer func() { cancel(); <-read }()
	}
	mainDone, known := sv.mainDone(ctx, inst)
	select {
	case <-ctx.Done():
		return nil
	case t := <-triggers:
		end := &ServiceExit{At: time.Now(), PID: inst.rec.PID, Reason: t.reason}
		return end
	case <-mainDone:
	}
	if ctx.Err() != nil {
		return nil
	}
	var end ServiceExit
	if known {
		end = serviceExitOf(inst.main.pid, inst.main.err, inst.main.at)
	} else {
		end = ServiceExit{At: time.Now(), PID: inst.rec.PID, Unknown: true}
	}
	after := oomStats(inst.group)
	peak, kills := memory.Stop()
	after.MemoryPeak, after.OOMKills = max(after.MemoryPeak, peak), max(after.OOMKills, kills)
	noteOOM(&end, inst.before, after, inst.svc.Limits)
	if pids, _ := inst.group.Procs(); len(pids) > 0 {
		end.Left = len(pids)
	}
	return &end
}

// mainDone returns a channel closed when inst's main process has ended,
// and whether its exit status will be known (this process is its parent).
// A daemonized instance (its main process exited 0 while starting) ends
// when its group is empty; so does one whose main process is not known.
func (sv *supervisor) mainDone(ctx context.Context, inst *instance) (<-chan struct{}, bool) {
	switch {
	case inst.main != nil && !inst.rec.Daemonized:
		return inst.main.done, true
	case inst.main == nil && inst.rec != nil && inst.rec.PID > 0 && !inst.rec.Daemonized && !inst.rec.Guessed:
		return pidExited(ctx, inst.rec.Identity()), false
	}
	done := make(chan struct{})
	go func() {
		if inst.group.WaitEmpty(ctx) == nil {
			close(done)
		}
	}()
	return done, false
}

// pidExited returns a channel closed when the process id names has exited
// (at once if it already has), watched through a pidfd in Go's poller: no
// thread and no wake-up while it runs.
func pidExited(ctx context.Context, id proc.Identity) <-chan struct{} {
	done := make(chan struct{})
	fd, err := unix.PidfdOpen(id.PID, unix.PIDFD_NONBLOCK)
	if err != nil || !id.Alive() {
		if err == nil {
			unix.Close(fd)
		}
		close(done)
		return done
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	go func() {
		defer close(done)
		defer f.Close()
		rc, err := f.SyscallConn()
		if err != nil {
			return
		}
		stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
		defer stop()
		// The first call sees it alive and parks in the poller until the
		// pidfd is readable (the process exited), or the deadline passes.
		rc.Read(func(uintptr) bool { return !id.Alive() })
	}()
	return done
}
