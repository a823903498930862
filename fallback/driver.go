// Package fallback is the driver for machines that give cgdev no cgroup:
// a group is a session, a process tree and the processes carrying its
// environment marker, found through /proc (package proc) and signalled
// through pidfds. It enforces no limit; see docs/fallback.md for what it
// can and cannot follow.
package fallback

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"syscall"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/proc"
)

// Driver runs groups without cgroups, for machines that give the user none
// (no cgroup2 mount, or none writable, and no systemd to ask). Each group
// starts in a session of its own, every process of it carries the group's
// marker in its environment, and its first process is recorded by PID and
// start time. It enforces no resource limit, and it cannot follow a process
// that both clears its environment and leaves the process tree (see
// docs/fallback.md).
type Driver struct {
	host  *cgroup.Host
	scope scope
}

var _ cgroup.Driver = (*Driver)(nil)

// New returns the fallback driver. h (which may be nil) only serves to
// explain, in Check's errors, why no cgroup is used. It fails only when /proc
// is not mounted, as everything here reads it.
func New(h *cgroup.Host) (*Driver, error) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return nil, fmt.Errorf("fallback driver: /proc is not mounted: %w", err)
	}
	return &Driver{host: h, scope: callerScope()}, nil
}

// Name is "fallback".
func (d *Driver) Name() string { return "fallback" }

// Check refuses every limit: without a cgroup nothing can enforce one.
func (d *Driver) Check(l *cgroup.Limits) error {
	reqs := l.Requirements()
	if len(reqs) == 0 {
		return nil
	}
	reason := "the fallback driver runs without cgroups (" + d.whyNoCgroup() + ")"
	fix := "run where cgdev can create cgroups (--driver direct: root, or a delegated cgroup2 subtree) or ask a systemd manager (--driver systemd)"
	missing := make([]cgroup.Missing, len(reqs))
	for i, r := range reqs {
		missing[i] = cgroup.Missing{Requirement: r, Reason: reason, Fix: fix}
	}
	return &cgroup.UnsupportedError{Driver: d.Name(), Missing: missing}
}

func (d *Driver) whyNoCgroup() string {
	switch {
	case d.host == nil:
		return "it was chosen explicitly"
	case d.host.Cgroup2Mount == "":
		return "this machine has no cgroup2 hierarchy mounted"
	case d.host.ReadOnly:
		return fmt.Sprintf("%s is mounted read-only, as in a container by default", d.host.Cgroup2Mount)
	case !d.host.BaseWritable:
		return fmt.Sprintf("this user may not create cgroups under %s%s", d.host.Cgroup2Mount, d.host.Base)
	}
	return "it was chosen with --driver fallback although cgroups are available"
}

// Start starts cmd as the leader of a new group: in a session of its own
// (or, when the caller asked for Setpgid or Foreground, as for a foreground
// job on a terminal, in a process group of its own), with the group's
// markers set in its environment (Spec.Prepare), which is how the group is
// found again. A service that already has live processes is refused.
func (d *Driver) Start(ctx context.Context, spec cgroup.Spec, cmd *exec.Cmd) (cgroup.Group, error) {
	if err := spec.Prepare(ctx, cmd); err != nil {
		return nil, err
	}
	if err := d.Check(&spec.Limits); err != nil {
		return nil, err
	}
	if err := ownSession(cmd); err != nil {
		return nil, err
	}
	sel := selectorOf(spec)
	if spec.Project != "" {
		if running, err := newGroup(spec.Name, sel, true).Procs(); err != nil {
			return nil, err
		} else if len(running) > 0 {
			return nil, fmt.Errorf("service %s of project %s already has processes: %v", spec.Name, spec.Project, running)
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// The leader is our unreaped child: its PID cannot be recycled before the
	// caller's Wait, so this read is of the right process.
	p, err := proc.ReadProc(cmd.Process.Pid)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("fallback driver: reading the start time of PID %d: %w", cmd.Process.Pid, err)
	}
	return newGroup(spec.Name, sel, true, p.Identity()), nil
}

// Close does nothing: the driver holds no resource.
func (d *Driver) Close() error { return nil }

// ownSession makes cmd start in a new session, unless it asks for a process
// group of its own (which setsid would forbid).
func ownSession(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	a := cmd.SysProcAttr
	switch {
	case a.Setpgid && a.Pgid != 0:
		return fmt.Errorf("fallback driver: the command must lead its own process group, not join group %d", a.Pgid)
	case a.Setsid, a.Setpgid, a.Foreground:
	default:
		a.Setsid = true
	}
	return nil
}

func selectorOf(spec cgroup.Spec) selector {
	if spec.Project == "" {
		return selector{run: spec.Name}
	}
	return selector{project: spec.Project, service: spec.Name}
}

// Groups finds the live groups of project by scanning /proc for processes
// carrying its marker: one group per CGDEV_SERVICE value. With project ""
// it returns the runs (one group per CGDEV_RUN value). No state file is read.
// Each group's leader is found again as its oldest marked process that leads
// a process group or session and whose parent is not marked for the group:
// the service's first process, while it lives.
func (d *Driver) Groups(project string) ([]cgroup.Group, error) {
	t, err := proc.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("scanning /proc: %w", err)
	}
	marked := map[string]map[int]bool{} // group name -> its marked PIDs
	for _, p := range t.Procs {
		if !d.scope.allows(p) {
			continue
		}
		m := proc.MarkerOf(p)
		name := m.Service
		if project == "" {
			name = m.Run
		} else if m.Project != project {
			continue
		}
		if name == "" {
			continue
		}
		if marked[name] == nil {
			marked[name] = map[int]bool{}
		}
		marked[name][p.PID] = true
	}
	names := make([]string, 0, len(marked))
	for n := range marked {
		names = append(names, n)
	}
	sort.Strings(names)
	groups := make([]cgroup.Group, len(names))
	for i, n := range names {
		groups[i] = newGroup(n, selectorOf(cgroup.Spec{Project: project, Name: n}), true, findLeader(t, marked[n])...)
	}
	return groups, nil
}

// findLeader returns the oldest (then lowest-PID) of the marked processes
// that lead their process group or session and whose parent is unmarked.
func findLeader(t *proc.Table, marked map[int]bool) []proc.Identity {
	var best proc.Proc
	for pid := range marked {
		p := t.Procs[pid]
		if marked[p.PPID] || (p.PGID != p.PID && p.SID != p.PID) {
			continue
		}
		if best.PID == 0 || p.StartTicks < best.StartTicks || p.StartTicks == best.StartTicks && p.PID < best.PID {
			best = p
		}
	}
	if best.PID == 0 {
		return nil
	}
	return []proc.Identity{best.Identity()}
}
