package launcher

import (
	"os/exec"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/proc"
)

// instance is one run of a service: its group, its main process and what
// was recorded of its start.
type instance struct {
	svc     *Service
	group   cgroup.Group
	rec     *ServiceState // its entry in state.json
	env     []string      // the environment it started with, for a restart
	logFrom int64         // where its output begins in the log
	// main is the main process when this process is its parent (and so
	// learns its exit status); nil for an adopted instance.
	main *mainProc
	// before and after are the group's counters at the start and, for a
	// failed start, just before its group was emptied (OOM kills, peak).
	before, after cgroup.Stats
	ended         *ServiceExit // how a failed start ended
}

// mainProc is a child whose exit status is awaited once, by one goroutine,
// and can then be read by anyone: done is closed when err is set.
type mainProc struct {
	pid  int
	done chan struct{}
	err  error
	at   time.Time
}

// waitMain waits for cmd (started) in the background.
func waitMain(cmd *exec.Cmd) *mainProc {
	m := &mainProc{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		m.err = cmd.Wait()
		m.at = time.Now()
		close(m.done)
	}()
	return m
}

// exited says whether the main process has ended.
func (m *mainProc) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// exitedZero says whether the main process has exited 0. One that has
// exited but is not yet reaped (id no longer alive: a zombie, or reaped a
// moment ago) is waited for, briefly: its waiter is about to report it.
func (m *mainProc) exitedZero(id proc.Identity) bool {
	if !m.exited() && !id.Alive() {
		select {
		case <-m.done:
		case <-time.After(time.Second):
		}
	}
	return m.exited() && m.err == nil
}

// end describes how a failed start ended: the main process's status when it
// exited, else the failure (a readiness timeout), with an OOM kill noted.
func (inst *instance) end(failure error) *ServiceExit {
	var e ServiceExit
	if inst.main != nil && inst.main.exited() {
		e = serviceExitOf(inst.main.pid, inst.main.err, inst.main.at)
	} else {
		e = ServiceExit{At: time.Now(), PID: inst.rec.PID, Reason: failure.Error()}
	}
	noteOOM(&e, inst.before, inst.after, inst.svc.Limits)
	return &e
}

// recordStart writes the exit record of a start by hand: up, with the
// restart count reset; or ended, saying how, when the start failed (err)
// or a oneshot completed.
func (p *Project) recordStart(name string, inst *instance, err error) {
	r := &ServiceRecord{Phase: phaseUp, Since: time.Now()}
	if err != nil && inst == nil {
		p.RemoveRecords([]string{name}) // never started: nothing ended
		return
	}
	if err != nil || inst.svc.Oneshot() {
		r.Phase, r.Last = phaseEnded, inst.ended
	}
	p.SaveRecord(name, r)
}
