package cgroup

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// scopeGroup is a transient scope. Its processes are read, signalled, killed
// and waited for through its cgroup (the embedded Dir, mount + ControlGroup);
// the manager stops and forgets the unit in Remove.
type scopeGroup struct {
	Dir
	name string // service or run name
	unit string // e.g. cgdev-web-api.scope
	d    *Systemd
}

func (g *scopeGroup) Name() string { return g.name }
func (g *scopeGroup) Path() string { return string(g.Dir) }

// Unit is the scope's unit name.
func (g *scopeGroup) Unit() string { return g.unit }

// locate sets Dir to the cgroup pid is in, which must be the scope's: once
// the job is done the manager has moved the held process there. Reading
// /proc/<pid>/cgroup (relative to cgdev's own cgroup namespace, like the
// mount) proves membership and saves a round trip for ControlGroup.
func (g *scopeGroup) locate(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return fmt.Errorf("scope %s: %w", g.unit, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if cg, ok := strings.CutPrefix(line, "0::"); ok && path.Base(cg) == g.unit {
			g.Dir = Dir(filepath.Join(g.d.host.Cgroup2Mount, cg))
			return nil
		}
	}
	return fmt.Errorf("scope %s: the job is done but process %d is not in the scope's cgroup (/proc/%d/cgroup: %q)",
		g.unit, pid, pid, strings.TrimSpace(string(b)))
}

// verify checks that every limit's interface file exists in the scope's
// cgroup: systemd accepts a limit whose controller it cannot enable and then
// does not enforce it, so the file is the only proof.
func (g *scopeGroup) verify(l *Limits) error {
	var missing []Missing
	for _, r := range l.Requirements() {
		if _, err := os.Stat(filepath.Join(string(g.Dir), r.File)); err == nil {
			continue
		}
		m := Missing{Requirement: r}
		if g.d.host.BoundToV1(r.Controller) {
			m.Reason, m.Fix = g.d.host.explainMissing(r.Controller)
		} else {
			m.Reason = fmt.Sprintf("systemd accepted %s for %s but its cgroup has no %s, so nothing would enforce it", r.Property, g.unit, r.File)
			m.Fix = delegateFix
		}
		missing = append(missing, m)
	}
	if len(missing) > 0 {
		return &UnsupportedError{Driver: g.d.Name(), Missing: missing}
	}
	return nil
}

// Remove refuses a scope whose cgroup still holds processes (StopUnit would
// SIGTERM them). Otherwise it stops the unit if it is still active and waits
// for the stop job, then waits until the manager has forgotten the unit
// (resetting it if it failed), so that its name is free again. A unit
// already gone is not an error: an emptied scope is stopped and collected by
// the manager on its own, often before Remove.
func (g *scopeGroup) Remove() error {
	if g.Dir != "" { // unset only while Start fails, after killing the held process
		if populated, err := g.Populated(); err != nil {
			return fmt.Errorf("removing %s: %w", g.unit, err)
		} else if populated {
			return fmt.Errorf("removing %s: %w", g.unit, ErrPopulated)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), managerTimeout)
	defer cancel()
	st, err := g.d.unitStatus(ctx, g.unit)
	if err != nil || st.LoadState == "not-found" {
		return err
	}
	if st.ActiveState != "inactive" && st.ActiveState != "failed" {
		if err := g.stop(ctx); err != nil {
			return err
		}
	}
	return g.waitGone(ctx)
}

// stop runs StopUnit and waits for its job.
func (g *scopeGroup) stop(ctx context.Context) error {
	done := make(chan string, 1) // buffered: see startScope
	_, err := g.d.conn.StopUnitContext(ctx, g.unit, "replace", done)
	if dbusErrorName(err) == errNoSuchUnit {
		return nil
	}
	if err != nil {
		return g.d.ep.callError("stopping "+g.unit, err)
	}
	select {
	case result := <-done:
		if result != "done" {
			return fmt.Errorf("stopping %s: the job ended %q", g.unit, result)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping %s: %w", g.unit, ctx.Err())
	}
}

// waitGone polls the manager until the unit is unloaded, resetting it if it
// failed. A stopped transient unit is collected in the manager's next event
// loop iteration: the first or second look normally finds it gone.
func (g *scopeGroup) waitGone(ctx context.Context) error {
	for delay := 200 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
		st, err := g.d.unitStatus(ctx, g.unit)
		if err != nil {
			return err
		}
		switch {
		case st.LoadState == "not-found" || st.LoadState == "":
			return nil
		case st.ActiveState == "failed":
			err := g.d.conn.ResetFailedUnitContext(ctx, g.unit)
			if err != nil && dbusErrorName(err) != errNoSuchUnit {
				return g.d.ep.callError("resetting "+g.unit, err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is still loaded (%s/%s): %w", g.unit, st.ActiveState, st.SubState, ctx.Err())
		case <-time.After(delay):
		}
	}
}
