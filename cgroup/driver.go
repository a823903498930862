// Package cgroup puts commands into groups the kernel tracks, so that every
// process a command forks can be listed, signalled and killed as one.
//
// A Driver creates groups: directly in cgroupfs (Direct), as transient systemd
// scopes (package-level Systemd driver), or without cgroups (package fallback).
// Callers see only Driver and Group.
package cgroup

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
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

// Driver creates and finds groups.
type Driver interface {
	// Name is "direct", "systemd" or "fallback".
	Name() string
	// Check returns an *UnsupportedError naming each limit in l that this driver
	// cannot enforce on this machine, or nil.
	Check(l *Limits) error
	// Start starts cmd, which must not have been started, as the first process of
	// a new group described by spec. No process the command forks can run outside
	// the group. On error nothing is left behind: no process, no group.
	Start(ctx context.Context, spec Spec, cmd *exec.Cmd) (Group, error)
	// Groups returns the live groups of project, found through the kernel or the
	// manager rather than state files. With project "" it returns cgdev runs.
	Groups(project string) ([]Group, error)
}

// Group is a set of processes that live and die together.
type Group interface {
	// Name is the service or run name given in Spec.
	Name() string
	// Path is the cgroupfs directory, or "" for groups without one.
	Path() string
	// Procs lists the PIDs in the group (and its sub-groups).
	Procs() ([]int, error)
	// Signal sends sig to every process in the group and returns how many it reached.
	Signal(sig syscall.Signal) (int, error)
	// Kill sends SIGKILL to every process in the group at once (cgroup.kill).
	Kill() error
	// WaitEmpty returns nil as soon as the group holds no process, or ctx's error.
	WaitEmpty(ctx context.Context) error
	// Remove deletes the (empty) group.
	Remove() error
	// Stats reads the group's counters; fields the kernel does not offer stay zero.
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
