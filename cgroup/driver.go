// Package cgroup puts commands into groups the kernel tracks, so that every
// process a command forks can be listed, signalled and killed as one.
//
// A Driver creates groups: directly in cgroupfs (Direct), as transient systemd
// scopes (Systemd), or without cgroups (package fallback). Callers see only
// Driver and Group, whose contract is written on the interfaces below, the
// way os/exec states Cmd's.
package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/internal/proc"
)

// Spec names and limits a group.
type Spec struct {
	// Project is the project id for services ("" for `cgdev run`).
	Project string
	// Name is the service name, or the run's name.
	Name string
	// Description is a human-readable line (systemd's Description=).
	Description string
	// Limits are enforced by the group; a driver refuses limits it cannot enforce.
	Limits Limits
}

// Validate checks the names as every driver needs them: Name, and Project
// unless it is empty, of 1 to 100 letters, digits, '-', '_' and '.', and
// neither "." nor "..". Such a name is one cgroupfs path element, one part
// of a systemd unit name and one marker value.
func (s Spec) Validate() error {
	if s.Project != "" {
		if err := validName(s.Project); err != nil {
			return fmt.Errorf("project: %w", err)
		}
	}
	return validName(s.Name)
}

// validName accepts names safe as one path element and in a unit name.
func validName(s string) error {
	if s == "" || len(s) > 100 {
		return fmt.Errorf("invalid name %q: 1 to 100 characters", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') || s == "." || s == ".." {
			return fmt.Errorf("invalid name %q: use letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

// Marker is what every process of the group carries in its environment:
// the project and service, or the run.
func (s Spec) Marker() proc.Marker {
	if s.Project == "" {
		return proc.Marker{Run: s.Name}
	}
	return proc.Marker{Project: s.Project, Service: s.Name}
}

// Prepare is the first step of every Driver.Start, before it creates
// anything: it returns ctx's error if ctx is done, Validate's, cmd.Err, or
// an error if cmd was started already; then it sets the group's markers in
// cmd.Env (Marker.Apply over cmd.Environ()).
func (s Spec) Prepare(ctx context.Context, cmd *exec.Cmd) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	if cmd.Err != nil {
		return cmd.Err
	}
	if cmd.Process != nil {
		return errors.New("cgroup: command already started")
	}
	cmd.Env = s.Marker().Apply(cmd.Environ())
	return nil
}

// Driver creates groups and finds them again. Its methods may be called
// concurrently. A new driver is added to launcher's list of drivers; package
// cgrouptest checks that it keeps this contract.
type Driver interface {
	// Name is "direct", "systemd" or "fallback".
	Name() string

	// Check returns an *UnsupportedError naming each limit in l that this
	// driver cannot enforce on this machine, or nil.
	Check(l *Limits) error

	// Start starts cmd as the first process of a new group described by
	// spec, so that no process the command forks ever runs outside the
	// group. It refuses a spec Check refuses, and a service (Project set)
	// whose group already holds processes.
	//
	// cmd must not have been started. Start may change it: Env gets the
	// group's markers (Spec.Prepare); SysProcAttr may gain fields (a cgroup
	// file descriptor for clone3, a session of its own); and a driver that
	// must place the process before it runs anything rewrites Path and Args
	// to a gate (/bin/sh blocked on a pipe, which then execs the command
	// under the same PID) and lends the gate's pipe to ExtraFiles during
	// Start. Stdin, Stdout, Stderr and Dir are left alone.
	//
	// On success the command runs in the group and the caller must call
	// cmd.Wait, as after cmd.Start. What the command forks stays in the
	// group after it exits; Group.Remove deletes the emptied group (an empty
	// systemd scope may be collected by its manager before).
	//
	// On error nothing is left behind: no process (one held at the gate is
	// killed and reaped before it has run anything) and no group. cmd must
	// not be reused.
	//
	// ctx bounds the start only (creating the group, the manager's job):
	// when it is done before the command runs, Start returns its error,
	// having started nothing. Once Start has returned, ctx has no effect.
	Start(ctx context.Context, spec Spec, cmd *exec.Cmd) (Group, error)

	// Groups returns the live groups of project, found through the kernel or
	// the manager rather than state files. With project "" it returns cgdev
	// runs.
	Groups(project string) ([]Group, error)

	// Close releases what the driver holds (systemd's connection to the
	// manager). Groups it returned keep working through their cgroup, but
	// systemd's can no longer be removed.
	Close() error
}

// ErrPopulated is what Group.Remove returns, wrapped, for a group that still
// holds processes.
var ErrPopulated = errors.New("the group still holds processes")

// Group is a set of processes that live and die together. Its methods may be
// called concurrently. To stop one, use package cleanup: it sends SIGCONT
// after the stop signal, waits, kills and removes, the same way for every
// driver.
type Group interface {
	// Name is the service or run name given in Spec.
	Name() string
	// Path is the cgroupfs directory, or "" for groups without one.
	Path() string
	// Procs lists the live processes in the group (and its sub-groups).
	Procs() ([]int, error)
	// Signal sends sig to every process in the group and returns how many it
	// reached. Nothing else: a stopped process keeps a stop signal pending
	// (cleanup.SignalGroup sends SIGCONT after it).
	Signal(sig syscall.Signal) (int, error)
	// Kill sends SIGKILL to every process in the group and returns without
	// waiting for any to die. With a cgroup it is one atomic cgroup.kill that
	// also takes forks in flight; without one, a child forked by a member
	// after Kill saw it is not reached: cleanup.Kill repeats Kill until the
	// group is empty.
	Kill() error
	// WaitEmpty returns nil as soon as the group holds no process, or ctx's error.
	WaitEmpty(ctx context.Context) error
	// Remove deletes the group. A group that still holds processes is left as
	// it is, processes included, and Remove returns an error wrapping
	// ErrPopulated. A group already gone is not an error.
	Remove() error
	// Stats reads the group's counters; fields the driver cannot read stay zero.
	Stats() (Stats, error)
}

// Stats are a group's counters.
type Stats struct {
	Procs         int
	CPUUsage      time.Duration // cpu.stat usage_usec
	MemoryCurrent uint64        // memory.current (0 without the memory controller)
	MemoryPeak    uint64        // memory.peak
	MemoryMax     int64         // memory.max, Infinity for "max", 0 when absent
	OOMKills      uint64        // memory.events oom_kill
	TasksCurrent  uint64        // pids.current
	HasMemory     bool          // memory.* files exist
	// MemoryEstimated: MemoryCurrent is the members' summed RSS (no
	// cgroup accounting: the fallback driver), not the kernel's count.
	MemoryEstimated bool
}

// Missing is one limit that cannot be enforced, and why.
type Missing struct {
	Requirement
	Reason string // e.g. "the memory controller is bound to cgroup v1 on this host"
	Fix    string // what would provide it
}

// UnsupportedError lists limits a driver cannot enforce.
type UnsupportedError struct {
	Driver  string
	Missing []Missing
}

func (e *UnsupportedError) Error() string {
	var b strings.Builder
	for i, m := range e.Missing {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s cannot be enforced: it needs the cgroup2 %q controller (%s), but %s", m.Property, m.Controller, m.File, m.Reason)
		if m.Fix != "" {
			fmt.Fprintf(&b, "; %s", m.Fix)
		}
	}
	return b.String()
}

// Properties returns the names of the missing properties.
func (e *UnsupportedError) Properties() []string {
	names := make([]string, len(e.Missing))
	for i, m := range e.Missing {
		names[i] = m.Property
	}
	return names
}

// CheckControllers returns an *UnsupportedError for each limit in l whose
// controller is not in available, explaining why with what h knows.
func (h *Host) CheckControllers(driver string, l *Limits, available []string) error {
	have := map[string]bool{}
	for _, c := range available {
		have[c] = true
	}
	var missing []Missing
	for _, r := range l.Requirements() {
		if !have[r.Controller] {
			reason, fix := h.explainMissing(r.Controller)
			missing = append(missing, Missing{Requirement: r, Reason: reason, Fix: fix})
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &UnsupportedError{Driver: driver, Missing: missing}
}

func (h *Host) explainMissing(controller string) (reason, fix string) {
	switch {
	case h.Cgroup2Mount == "":
		return "this machine has no cgroup2 hierarchy mounted",
			"boot with cgroup2 (systemd.unified_cgroup_hierarchy=1) to get limits"
	case h.BoundToV1(controller):
		return fmt.Sprintf("the %s controller is bound to a cgroup v1 hierarchy on this host (hybrid mode), so cgroup2 cannot use it", controller),
			"boot the kernel with cgroup_no_v1=all (or systemd.unified_cgroup_hierarchy=1) for a pure cgroup2 system"
	default:
		return fmt.Sprintf("the %s controller is not delegated to %s", controller, h.Base),
			fmt.Sprintf("enable it in the parent's cgroup.subtree_control, or use --driver systemd with a user manager that delegates %s", controller)
	}
}
