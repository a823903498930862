package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/coreos/go-systemd/v22/unit"
)

// Systemd creates groups as transient systemd scopes, the way
// `systemd-run --scope` does: the command is started held at a gate, its PID
// is handed to the manager in StartTransientUnit, and only when the job is
// done (and the scope's cgroup checked) does the command exec. Services are
// cgdev-<project>-<service>.scope, runs cgdev-run-<name>.scope, each part
// escaped as systemd-escape would.
//
// Groups are driven through their cgroup (cgroup.kill, cgroup.events) and
// removed through the manager (StopUnit). A Systemd holds one connection to
// the manager; Close releases it.
type Systemd struct {
	host *Host
	conn *sd.Conn
	ep   endpoint
	// offer is what the manager's own cgroup offers its units, read on the
	// first Check that has limits to check.
	offer struct {
		once        sync.Once
		cgroup      string   // the manager's ControlGroup ("" when unknown)
		controllers []string // its cgroup.controllers
	}
}

// delegateFix says how a manager gets a controller it lacks.
const delegateFix = "delegate the controller to the manager (for a user manager: Delegate= in a drop-in for user@.service)"

// scopeJobTimeout bounds the wait for StartTransientUnit's job.
const scopeJobTimeout = 30 * time.Second

// Unit name parts.
const (
	unitPrefix  = "cgdev-"
	runInfix    = "run"
	scopeSuffix = ".scope"
	maxUnitName = 255 // UNIT_NAME_MAX
)

// NewSystemd connects to the user manager (or, for root on a systemd host
// without a user manager, the system manager), or says why it cannot.
func NewSystemd(h *Host) (*Systemd, error) {
	if h.Cgroup2Mount == "" {
		return nil, errors.New("systemd driver: no cgroup2 hierarchy is mounted (cgdev drives scopes through cgroup2's cgroup.kill and cgroup.events)")
	}
	conn, ep, err := dialManager(h)
	if err != nil {
		return nil, err
	}
	return &Systemd{host: h, conn: conn, ep: ep}, nil
}

// offered returns the manager's cgroup and the controllers it offers its
// units; cgroup is "" when the manager does not say.
func (d *Systemd) offered() (cgroup string, controllers []string) {
	d.offer.once.Do(func() {
		v, err := d.conn.GetManagerProperty("ControlGroup")
		if err != nil {
			return
		}
		cg, err := strconv.Unquote(v)
		if err != nil || cg == "" {
			return
		}
		b, err := os.ReadFile(filepath.Join(d.host.Cgroup2Mount, cg, "cgroup.controllers"))
		if err != nil {
			return
		}
		d.offer.cgroup, d.offer.controllers = cg, strings.Fields(string(b))
	})
	return d.offer.cgroup, d.offer.controllers
}

// Close ends the connection to the manager. Groups already returned keep
// working through their cgroup, but can no longer be removed.
func (d *Systemd) Close() error {
	d.conn.Close()
	return nil
}

func (d *Systemd) Name() string { return "systemd" }

// Manager describes the manager in use, e.g. "the user manager at
// /run/user/1000/systemd/private".
func (d *Systemd) Manager() string { return d.ep.String() }

// Check refuses limits whose controller the manager's cgroup does not offer.
// (systemd itself accepts them and then silently does not enforce them.)
func (d *Systemd) Check(l *Limits) error {
	if l.Empty() {
		return nil
	}
	managerCG, controllers := d.offered()
	if managerCG == "" {
		return nil // unknown here; Start checks the scope's cgroup
	}
	err := d.host.CheckControllers(d.Name(), l, controllers)
	var u *UnsupportedError
	if errors.As(err, &u) {
		for i, m := range u.Missing {
			if !d.host.BoundToV1(m.Controller) {
				u.Missing[i].Reason = fmt.Sprintf("the systemd manager's cgroup %s does not offer it to its units", managerCG)
				u.Missing[i].Fix = delegateFix
			}
		}
	}
	return err
}

// UnitName returns the scope's unit name for a service (project != "") or a run.
func UnitName(project, name string) string {
	if project == "" {
		project = runInfix
	}
	return unitPrefix + unit.UnitNameEscape(project) + "-" + unit.UnitNameEscape(name) + scopeSuffix
}

// unitNamePrefix is what the unit names of project's scopes start with.
func unitNamePrefix(project string) string {
	return strings.TrimSuffix(UnitName(project, "x"), "x"+scopeSuffix)
}

// unitPattern matches the scopes of project ("" for runs) in ListUnitsByPatterns.
// systemd matches with fnmatch(3) and FNM_NOESCAPE, so the backslashes of
// escaped names stand for themselves; valid names hold no other glob character.
func unitPattern(project string) string {
	return unitNamePrefix(project) + "*" + scopeSuffix
}

// nameFromUnit returns the service or run name of a unit of project.
func nameFromUnit(project, unitName string) (string, bool) {
	rest, ok := strings.CutPrefix(unitName, unitNamePrefix(project))
	if !ok {
		return "", false
	}
	rest, ok = strings.CutSuffix(rest, scopeSuffix)
	if !ok || rest == "" || strings.Contains(rest, "-") {
		return "", false
	}
	return unit.UnitNameUnescape(rest), true
}

// unitName returns the scope's name for a valid spec (Spec.Validate), or
// why systemd cannot have it.
func (d *Systemd) unitName(spec Spec) (string, error) {
	if spec.Project == runInfix {
		return "", fmt.Errorf("project id %q is reserved by the systemd driver: its scopes would be taken for cgdev runs (cgdev-run-*.scope)", runInfix)
	}
	u := UnitName(spec.Project, spec.Name)
	if len(u) > maxUnitName {
		return "", fmt.Errorf("unit name %s is longer than systemd's limit of %d characters; use shorter names", u, maxUnitName)
	}
	return u, nil
}

// Start starts cmd held at a gate, asks the manager for a scope holding it,
// waits for the job, checks the scope's cgroup, then lets cmd exec.
func (d *Systemd) Start(ctx context.Context, spec Spec, cmd *exec.Cmd) (Group, error) {
	if err := spec.Prepare(ctx, cmd); err != nil {
		return nil, err
	}
	unitName, err := d.unitName(spec)
	if err != nil {
		return nil, err
	}
	if err := d.Check(&spec.Limits); err != nil {
		return nil, err
	}
	desc := spec.Description
	if desc == "" {
		desc = "cgdev " + strings.TrimPrefix(spec.Project+" "+spec.Name, " ")
	}
	props, err := scopeProperties(desc, &spec.Limits)
	if err != nil {
		return nil, err
	}
	var g *scopeGroup // set once the unit may exist
	err = startGated(cmd, func(pid int) error {
		var err error
		g, err = d.startScope(ctx, spec.Name, unitName, append(props, sd.PropPids(uint32(pid))))
		if err == nil {
			err = g.locate(pid)
		}
		if err == nil {
			err = g.verify(&spec.Limits)
		}
		return err
	})
	if err != nil {
		if g != nil {
			if rerr := g.Remove(); rerr != nil {
				err = fmt.Errorf("%w (and removing the scope: %v)", err, rerr)
			}
		}
		return nil, err
	}
	return g, nil
}

// startScope runs StartTransientUnit and waits for the job's result. A unit
// of that name that exists but failed is reset and the start retried once.
// It returns the group (its Dir still unset: see scopeGroup.locate) whenever
// the unit may exist, with or without an error: the caller removes it, once
// the held process is gone.
func (d *Systemd) startScope(ctx context.Context, name, unitName string, props []sd.Property) (*scopeGroup, error) {
	op := "starting scope " + unitName
	// A scope's job takes milliseconds; a manager that has not answered in
	// this long is stuck, and the command must not wait at its gate forever.
	ctx, cancel := context.WithTimeout(ctx, scopeJobTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		// go-systemd sends the result while holding a lock: the channel must
		// be buffered so that an abandoned wait never blocks it.
		done := make(chan string, 1)
		_, err := d.conn.StartTransientUnitContext(ctx, unitName, "fail", props, done)
		if dbusErrorName(err) == errUnitExists && attempt == 0 {
			if err := d.resetStale(ctx, unitName); err != nil {
				return nil, err
			}
			continue
		}
		g := &scopeGroup{name: name, unit: unitName, d: d}
		if err != nil {
			if ctx.Err() == nil {
				g = nil // refused: no unit
			}
			return g, d.ep.callError(op, err)
		}
		select {
		case result := <-done:
			if result != "done" {
				return g, fmt.Errorf("%s: the job ended %q (see journalctl %s-u %s)", op, result, d.journalFlag(), unitName)
			}
		case <-ctx.Done():
			return g, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return g, nil
	}
}

// resetStale clears a unit of that name left failed (or inactive) so the name
// can be reused, and refuses when it is running.
func (d *Systemd) resetStale(ctx context.Context, unitName string) error {
	st, err := d.unitStatus(ctx, unitName)
	if err != nil {
		return err
	}
	switch st.ActiveState {
	case "failed", "inactive":
		err := d.conn.ResetFailedUnitContext(ctx, unitName)
		if err != nil && dbusErrorName(err) != errNoSuchUnit {
			return d.ep.callError("resetting failed unit "+unitName, err)
		}
		return nil
	}
	return fmt.Errorf("a unit named %s already exists and is %s/%s: is it already running? (stop it with cgdev stop, or systemctl %sstop %s)",
		unitName, st.ActiveState, st.SubState, d.systemctlFlag(), unitName)
}

func (d *Systemd) unitStatus(ctx context.Context, unitName string) (sd.UnitStatus, error) {
	units, err := d.conn.ListUnitsByNamesContext(ctx, []string{unitName})
	if err != nil {
		return sd.UnitStatus{}, d.ep.callError("looking up unit "+unitName, err)
	}
	if len(units) == 0 {
		return sd.UnitStatus{Name: unitName, LoadState: "not-found", ActiveState: "inactive"}, nil
	}
	return units[0], nil
}

// controlGroup reads a scope's ControlGroup (relative to the cgroup2 root).
func (d *Systemd) controlGroup(ctx context.Context, unitName string) (string, error) {
	p, err := d.conn.GetUnitTypePropertyContext(ctx, unitName, "Scope", "ControlGroup")
	if err != nil {
		return "", d.ep.callError("reading ControlGroup of "+unitName, err)
	}
	cg, ok := p.Value.Value().(string)
	if !ok || cg == "" {
		return "", fmt.Errorf("unit %s has no control group", unitName)
	}
	return cg, nil
}

func (d *Systemd) journalFlag() string {
	if d.ep.manager == "user" {
		return "--user "
	}
	return ""
}

func (d *Systemd) systemctlFlag() string { return d.journalFlag() }

// Groups lists the scopes of project ("" for runs) the manager knows,
// without any state file.
func (d *Systemd) Groups(project string) ([]Group, error) {
	ctx, cancel := context.WithTimeout(context.Background(), managerTimeout)
	defer cancel()
	units, err := d.conn.ListUnitsByPatternsContext(ctx, nil, []string{unitPattern(project)})
	if err != nil {
		return nil, d.ep.callError("listing cgdev scopes", err)
	}
	var groups []Group
	for _, u := range units {
		name, ok := nameFromUnit(project, u.Name)
		if !ok {
			continue
		}
		cg, err := d.controlGroup(ctx, u.Name)
		if err != nil {
			if g := d.endedGroup(u, name); g != nil {
				groups = append(groups, g) // failed: kept to say how it ended
			}
			continue // not running
		}
		groups = append(groups, &scopeGroup{name: name, unit: u.Name, d: d, Dir: Dir(filepath.Join(d.host.Cgroup2Mount, cg))})
	}
	slices.SortFunc(groups, func(a, b Group) int { return strings.Compare(a.Name(), b.Name()) })
	return groups, nil
}

// managerTimeout bounds each exchange with the manager that no caller's
// context bounds (listing, stopping).
const managerTimeout = 30 * time.Second

// SystemdOwns says whether cgdev's groups would land in a cgroup tree that
// systemd manages, and why: PID 1 is systemd, or the parent of Base is one of
// systemd's units (a *.slice, *.scope or *.service such as user@1000.service).
func SystemdOwns(h *Host) (bool, string) {
	if h.Systemd.Booted {
		return true, "PID 1 is systemd, which owns the whole cgroup tree"
	}
	parent := filepath.Dir(h.Base)
	for p := parent; p != "/" && p != "."; p = filepath.Dir(p) {
		base := filepath.Base(p)
		for _, suffix := range []string{".slice", ".scope", ".service"} {
			if strings.HasSuffix(base, suffix) {
				return true, fmt.Sprintf("cgdev's groups would go under %s, which the systemd unit %s manages", parent, base)
			}
		}
	}
	return false, ""
}

// SystemdReachable says whether a manager the systemd driver would use
// accepts connections, and which ("" when none).
func SystemdReachable(h *Host) (bool, string) {
	for _, ep := range systemdEndpoints(h) {
		if dialable(ep.socket) {
			return true, ep.String()
		}
	}
	return false, ""
}
