package launcher

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/human"
)

// judge sets a service's State and Detail from what the kernel shows (its
// group's processes; s.PID, set only while the recorded main process lives
// in the group), state.json's record of its start (st) and its exit record
// (er, written by whoever watched it), supervised saying whether a
// supervisor runs. The states:
//
//	running      the group holds processes (no readiness check, or unknown)
//	ready        running, and its readiness check passed
//	unhealthy    running, and its liveness check fails
//	starting     a start by cgdev's supervisor is under way
//	restarting   ended, to be started again (Detail: "n, next in 4s")
//	degraded     the main process ended, processes remain in its group
//	exited       ended with an exit code (Detail: "code 3", "code unknown")
//	killed       ended by a signal (Detail: "SIGKILL")
//	oom-killed   ended by the kernel's OOM killer (Detail: limit and peak),
//	             from its exit record, or, when nobody watched it end, from
//	             its empty group's oom_kill count (s.oomKill)
//	failed       cgdev gave up: a crash loop, a readiness or liveness failure
//	stopped      not running, and nothing says it ended on its own
//
// Status turns a oneshot's exited (code 0) into completed (exit 0).
func judge(s *ServiceStatus, st *ServiceState, er *ServiceRecord, supervised bool) {
	if er != nil {
		s.Restarts, s.LastExit = er.Restarts, er.Last
	}
	if s.Procs > 0 {
		judgeRunning(s, st, er)
		return
	}
	switch {
	case er == nil && st == nil && s.oomKill == nil:
		s.State = "stopped"
	case er != nil && er.Phase == phaseFailed:
		s.State, s.Detail = "failed", er.GaveUp
	case er != nil && er.Phase == phaseRestarting && supervised:
		s.State, s.Detail, s.NextRestart = "restarting", fmt.Sprintf("%d, next in %s", er.Restarts, human.Duration(max(time.Until(er.Next), 0).Round(100*time.Millisecond))), er.Next
	case er != nil && er.Last != nil && (er.Phase == phaseEnded || er.Phase == phaseRestarting):
		s.State, s.Detail = er.Last.State()
	case er != nil && supervised:
		// It has just ended: its supervisor is recording how.
		s.State, s.Detail, s.LastExit = "exited", "being recorded by the supervisor", nil
	case s.oomKill != nil:
		// Nobody watched it end, but the kernel says how: its group
		// emptied after the OOM killer acted in it.
		s.State, s.Detail = (&ServiceExit{OOM: s.oomKill}).State()
	default:
		// Started, and gone without anyone seeing it end.
		s.State, s.Detail, s.LastExit = "exited", "code unknown: no supervisor watched it (restart:, healthcheck:, watch: or cgdev up run one, which records how a service ends)", nil
	}
}

// judgeRunning is judge for a group that holds processes.
func judgeRunning(s *ServiceStatus, st *ServiceState, er *ServiceRecord) {
	s.State = "running"
	switch {
	case er != nil && (er.Phase == phaseStarting || er.Phase == phaseRestarting):
		// Being started, or what is left of the instance before being emptied.
		s.State = "starting"
		if er.Restarts > 0 {
			s.State, s.Detail = "restarting", fmt.Sprint(er.Restarts)
		}
	case st == nil || st.Guessed:
		// Nothing recorded the start: the group is all there is to go by.
	case s.PID == 0 && !st.Daemonized:
		var last *ServiceExit
		if er != nil && er.Last != nil && er.Last.PID == st.PID {
			last = er.Last
		}
		s.State, s.Detail = "degraded", fmt.Sprintf("%s, %d process(es) left", mainEnded(last), s.Procs)
	case er != nil && er.Phase == phaseUnhealthy:
		s.State, s.Health = "unhealthy", er.Health
	case st.Ready != "":
		s.State = "ready"
	}
}

// StateText is the state as the table shows it: "exited (code 3)".
func (s ServiceStatus) StateText() string {
	if s.Detail == "" {
		return s.State
	}
	return s.State + " (" + s.Detail + ")"
}

// printLastExits writes, under the table, how each service that was
// restarted or is unhealthy last ended, and the liveness check's error.
func printLastExits(w io.Writer, list []ServiceStatus) {
	for _, s := range list {
		if s.Health != "" {
			fmt.Fprintf(w, "%s: liveness check failing: %s\n", s.Name, s.Health)
		}
		if s.LastExit != nil && s.Up() {
			fmt.Fprintf(w, "%s: last exit %s, %s\n", s.Name, s.LastExit, ago(s.LastExit.At))
		}
	}
}

// SupervisorGroup is the group of a project's supervisor. The loaders
// refuse it as a service name (checkServiceName), so no service can take it.
const SupervisorGroup = "_supervisor"

// Supervision says whether a project's supervisor runs.
type Supervision struct {
	State string `json:"state"` // on, off (needed but not running), none (not needed)
	PID   int    `json:"pid,omitempty"`
	Why   string `json:"why,omitempty"`
}

// SupervisionStatus finds the project's supervisor through the driver and
// says whether the services that run need one (list is Status's report).
func SupervisionStatus(p *Project, drv cgroup.Driver, list []ServiceStatus) Supervision {
	if g := findSupervisor(drv, p.ID); g != nil {
		sv := Supervision{State: "on"}
		if m := guessMain(g); m != nil {
			sv.PID = m.PID
		}
		return sv
	}
	var need []string
	for _, s := range list {
		if svc := p.Config.Service(s.Name); svc != nil && s.Procs > 0 && svc.Supervised() {
			need = append(need, s.Name)
		}
	}
	if len(need) == 0 {
		return Supervision{State: "none"}
	}
	return Supervision{State: "off", Why: fmt.Sprintf("no supervisor runs, so the restart:, healthcheck: and watch: of %s are not acted on; run `cgdev start` to resume", strings.Join(need, ", "))}
}

// String is the line status prints: "supervision: on, PID 4711".
func (s Supervision) String() string {
	switch s.State {
	case "on":
		return fmt.Sprintf("supervision: on, PID %d", s.PID)
	case "off":
		return "supervision: off: " + s.Why
	}
	return ""
}

// findSupervisor returns the project's supervisor group while it holds a process.
func findSupervisor(drv cgroup.Driver, project string) cgroup.Group {
	groups, err := drv.Groups(project)
	if err != nil {
		return nil
	}
	return supervisorIn(groups)
}

// supervisorIn returns the supervisor's group among a project's groups
// while it holds a process.
func supervisorIn(groups []cgroup.Group) cgroup.Group {
	for _, g := range groups {
		if g.Name() == SupervisorGroup {
			if pids, err := g.Procs(); err == nil && len(pids) > 0 {
				return g
			}
		}
	}
	return nil
}

// serviceGroups drops the supervisor's group and the helpers' groups
// (helper.go) from a project's groups.
func serviceGroups(groups []cgroup.Group) []cgroup.Group {
	out := groups[:0:0]
	for _, g := range groups {
		if _, helper := helperOwner(g.Name()); g.Name() != SupervisorGroup && !helper {
			out = append(out, g)
		}
	}
	return out
}
