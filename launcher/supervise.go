package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/internal/human"
	"github.com/cgdev/cgdev/internal/proc"
	"github.com/fsnotify/fsnotify"
)

// supervisor is a project's supervising process (`cgdev __supervise`): the
// parent of the services it starts, so that it learns how each ends, and
// the one that applies their restart policies, liveness checks and watches.
// It lives in the project's group SupervisorGroup, found again through the
// driver like the services; nothing needs it to stop or to look at them.
type supervisor struct {
	p   *Project
	drv cgroup.Driver
	ln  net.Listener

	mu       sync.Mutex
	watchers map[string]*watcher // by service name
	busy     int                 // requests being served
	active   time.Time           // when the last request ended
	quit     chan struct{}       // closed when there is nothing left to do
	quitOnce sync.Once
	wg       sync.WaitGroup
}

// watcher is the goroutine that watches one service and restarts it.
type watcher struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// idleAfterLaunch is how long a supervisor with nothing to watch waits for
// the request its launcher is about to send before it exits.
const idleAfterLaunch = 30 * time.Second

// Supervise runs p's supervisor until ctx ends (SIGTERM: it then leaves the
// services running) or nothing is left to watch. It listens on the
// project's socket, writes "ready" to ready (its launcher's pipe) and closes
// it, adopts the services already running, and serves requests.
func Supervise(ctx context.Context, p *Project, drv cgroup.Driver, ready io.WriteCloser) error {
	// The launcher marks it as the project's supervisor (the fallback driver
	// finds it by these markers; a process never sees itself in a group).
	if os.Getenv(proc.ServiceEnv) != SupervisorGroup || os.Getenv(proc.ProjectEnv) != p.ID {
		return errors.New("not started as the project's supervisor: cgdev start, restart and up start it in its group, it is not run by hand")
	}
	ln, err := listen(p.ID)
	if err != nil {
		return err
	}
	sv := &supervisor{p: p, drv: drv, ln: ln, watchers: map[string]*watcher{}, quit: make(chan struct{})}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sv.adopt(ctx)
	fmt.Fprintf(ready, "ready %d\n", os.Getpid())
	ready.Close()
	p.event("supervisor: started, PID %d", os.Getpid())
	time.AfterFunc(idleAfterLaunch, sv.checkIdle)
	time.AfterFunc(releaseAfter, releaseCode)
	go sv.serve(ctx)
	select {
	case <-ctx.Done():
		p.event("supervisor: stopping (PID %d); the services keep running", os.Getpid())
	case <-sv.quit:
		p.event("supervisor: nothing left to watch; exiting")
	}
	ln.Close()
	cancel()
	sv.wg.Wait()
	return nil
}

// idleGrace is how long a supervisor that has nothing left to do waits
// before it exits: a restart releases the services, then starts them again.
const idleGrace = 5 * time.Second

// checkIdle ends the supervisor when it has watched nothing and served no
// request for idleGrace.
func (sv *supervisor) checkIdle() {
	if !sv.idle() {
		return
	}
	time.AfterFunc(idleGrace, func() {
		sv.mu.Lock()
		defer sv.mu.Unlock()
		if len(sv.watchers) == 0 && sv.busy == 0 && time.Since(sv.active) >= idleGrace {
			sv.quitOnce.Do(func() { close(sv.quit) })
		}
	})
}

func (sv *supervisor) idle() bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return len(sv.watchers) == 0 && sv.busy == 0
}

// quitting says whether the supervisor has decided to exit.
func (sv *supervisor) quitting() bool {
	select {
	case <-sv.quit:
		return true
	default:
		return false
	}
}

// watch starts the watcher of inst's service, replacing any.
func (sv *supervisor) watch(ctx context.Context, inst *instance) {
	name := inst.svc.Name
	sv.release([]string{name})
	files := sv.openFileWatch(inst.svc) // in place before the start is reported
	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	sv.mu.Lock()
	sv.watchers[name] = w
	sv.mu.Unlock()
	sv.wg.Add(1)
	go func() {
		defer sv.wg.Done()
		defer close(w.done)
		if files != nil {
			defer files.Close()
		}
		sv.supervise(wctx, inst, files)
		sv.mu.Lock()
		if sv.watchers[name] == w {
			delete(sv.watchers, name)
		}
		sv.mu.Unlock()
		sv.checkIdle()
	}()
}

// release stops watching the named services (all when names is empty) and
// waits until their watchers have finished: a restart under way is
// abandoned and its half-started instance removed; running instances are
// left as they are.
func (sv *supervisor) release(names []string) {
	sv.mu.Lock()
	var ws []*watcher
	for name, w := range sv.watchers {
		if len(names) == 0 || slices.Contains(names, name) {
			ws = append(ws, w)
			delete(sv.watchers, name)
		}
	}
	sv.mu.Unlock()
	for _, w := range ws {
		w.cancel()
		<-w.done
	}
}

// supervise watches inst until it ends, then applies the restart policy,
// over and over, until the service stays down or ctx ends.
func (sv *supervisor) supervise(ctx context.Context, inst *instance, files *fsnotify.Watcher) {
	end := sv.watchInstance(ctx, inst, files)
	for end != nil {
		next, again := sv.afterEnd(ctx, inst, end)
		switch {
		case next != nil:
			inst = next
			end = sv.watchInstance(ctx, inst, files)
		case again:
			end = inst.ended
		default:
			return
		}
	}
}

// afterEnd applies the policy to an instance that ended as end: it records
// the end, and when the policy says so empties the group, waits the delay
// and starts the service again. It returns the new instance, or nil with
// again set when that start failed too (inst.ended then says how; the
// policy applies once more), or nil and false when the service stays down.
func (sv *supervisor) afterEnd(ctx context.Context, inst *instance, end *ServiceExit) (next *instance, again bool) {
	svc, p := inst.svc, sv.p
	rec := p.LoadRecord(svc.Name)
	if rec == nil {
		rec = &ServiceRecord{}
	}
	now := time.Now()
	rec.Last, rec.Health, rec.Since = end, "", now
	d := decision{restart: true}
	if end.Reason != reasonFileChange {
		d = svc.Restart.decide(rec, end, now)
	} else {
		rec.Restarts++
	}
	switch {
	case d.gaveUp != "":
		sv.empty(inst)
		rec.Phase, rec.GaveUp = phaseFailed, d.gaveUp
		p.SaveRecord(svc.Name, rec)
		p.event("%s: %s; failed (%s): it stays down (`cgdev start %s` tries again)", svc.Name, end, d.gaveUp, svc.Name)
		return nil, false
	case !d.restart && end.Left > 0:
		rec.Phase = phaseEnded // degraded while what is left runs on
		p.SaveRecord(svc.Name, rec)
		p.event("%s: %s; %d process(es) left in its group (degraded); restart: %s, so it is not restarted", svc.Name, mainEnded(end), end.Left, svc.Restart.Policy)
		return nil, false
	case !d.restart:
		rec.Phase = phaseEnded
		p.SaveRecord(svc.Name, rec)
		p.event("%s: %s; restart: %s, so it stays down", svc.Name, end, svc.Restart.Policy)
		return nil, false
	}
	rec.Phase, rec.Next = phaseRestarting, now.Add(d.delay)
	p.SaveRecord(svc.Name, rec)
	p.event("%s: %s; restarting in %s (restart %d)", svc.Name, end, human.Duration(d.delay), rec.Restarts)
	sv.empty(inst)
	select {
	case <-ctx.Done():
		return nil, false
	case <-time.After(d.delay):
	}
	rec.Phase, rec.Next = phaseStarting, time.Time{}
	p.SaveRecord(svc.Name, rec)
	next, tail, err := startService(ctx, p, sv.drv, svc, inst.env, nil)
	if ctx.Err() != nil {
		return nil, false
	}
	if err != nil {
		if tail != "" {
			err = fmt.Errorf("%w; last lines of its log:\n%s", err, tail)
		}
		p.event("%s: restart %d failed: %v", svc.Name, rec.Restarts, err)
		inst.ended = &ServiceExit{At: time.Now(), Reason: "could not be started: " + err.Error()}
		if next != nil && next.ended != nil {
			inst.ended = next.ended
		}
		return nil, true
	}
	p.UpdateState(func(st *State) { st.Services[svc.Name] = next.rec })
	rec.Phase, rec.Since = phaseUp, time.Now()
	p.SaveRecord(svc.Name, rec)
	how := fmt.Sprintf("running (PID %d)", next.rec.PID)
	if svc.Ready != nil {
		how = "ready in " + human.Duration(time.Duration(next.rec.ReadyAfter))
	}
	p.event("%s: restarted (restart %d), %s", svc.Name, rec.Restarts, how)
	time.AfterFunc(releaseAfter, releaseCode)
	return next, false
}

// empty stops what is left of an instance: its stop_command first (what a
// crashed `docker run` left to the engine goes too), then its stop signal
// and grace; and removes its group, so leftovers of a crashed instance
// never pile up.
func (sv *supervisor) empty(inst *instance) {
	if err := runStopCommand(context.Background(), sv.p, sv.drv, inst.svc, inst.env); err != nil {
		sv.p.event("%s: stop_command: %v", inst.svc.Name, err)
	}
	if pids, err := inst.group.Procs(); err != nil || len(pids) == 0 {
		inst.group.Remove()
		return
	}
	if _, err := cleanup.StopGroup(context.Background(), inst.group, inst.svc.StopSignal, inst.svc.Grace); err != nil {
		sv.p.event("%s: emptying its group: %v", inst.svc.Name, err)
	}
}

// errNoSupervisor says a project's supervisor does not answer.
var errNoSupervisor = errors.New("no supervisor answers")
