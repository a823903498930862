package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// On a machine whose PID 1 is systemd, systemd owns the whole cgroup tree:
// a program may create cgroups only inside a subtree systemd delegated to it
// (a service or scope with Delegate=yes), never beside systemd's own units
// and never at the root (systemd's "Control Group APIs and Delegation",
// https://systemd.io/CGROUP_DELEGATION/). So there cgdev's base lives inside
// the delegated unit it runs in, or the direct driver is not used at all.

// Delegation is what Detect found about the subtree cgdev may manage itself
// on a host whose cgroup tree systemd owns.
type Delegation struct {
	// Cgroup is the delegated cgroup cgdev runs in (relative to the mount),
	// "" when none: then the direct driver cannot be used.
	Cgroup string `json:"cgroup"`
	// Unit is the systemd unit it belongs to, when known.
	Unit string `json:"unit,omitempty"`
	// How says how the delegation was found, or why there is none.
	How string `json:"how"`
}

// delegateXattrs are the extended attributes systemd (v251 and later) sets
// on the cgroup of a unit with Delegate=yes; unprivileged users can read
// only the user.* one, which user managers do not set before v253.
var delegateXattrs = []string{"trusted.delegate", "user.delegate"}

// findDelegation returns the delegated cgroup this process runs in: the
// nearest cgroup at or above its own that carries systemd's delegate mark,
// stopping at the first unit cgroup (a .slice, .scope or .service) without
// one; else, when that unit's manager answers, the unit's Delegate property.
func (h *Host) findDelegation() Delegation {
	for c := h.OwnCgroup; c != "" && c != "/"; c = filepath.Dir(c) {
		if hasDelegateMark(filepath.Join(h.Cgroup2Mount, c)) {
			return Delegation{Cgroup: c, Unit: unitOf(c), How: "the unit " + unitOf(c) + " has Delegate=yes (systemd marks its cgroup with the delegate xattr)"}
		}
		if isUnitCgroup(c) {
			return h.askDelegation(c)
		}
	}
	return Delegation{How: "this process runs in no systemd unit (" + orRoot(h.OwnCgroup) + ")"}
}

// askDelegation asks the manager of the unit whose cgroup is unitCG whether
// it delegates that cgroup (about 10 ms: BenchmarkDelegationLookup). It uses
// the go-systemd client: over a plain godbus connection to the manager's
// private socket, a call made right after authentication went unanswered in
// about 40% of tries here.
func (h *Host) askDelegation(unitCG string) Delegation {
	none := Delegation{How: fmt.Sprintf("this process runs in the systemd unit %s, which does not delegate its cgroup (no Delegate=yes)", unitOf(unitCG))}
	conn, _, err := dialManager(h)
	if err != nil {
		none.How += fmt.Sprintf(" (its manager could not be asked: %v)", err)
		return none
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	name, err := conn.GetUnitNameByPID(ctx, uint32(os.Getpid()))
	if err != nil || name != unitOf(unitCG) {
		return none // another manager's unit: that one delegates nothing to us
	}
	p, err := conn.GetUnitTypePropertyContext(ctx, name, unitType(name), "Delegate")
	if err != nil {
		return none
	}
	if v, ok := p.Value.Value().(bool); !ok || !v {
		return none
	}
	return Delegation{Cgroup: unitCG, Unit: name, How: "the unit " + name + " has Delegate=yes (its manager says so)"}
}

// refusal is the direct driver's error where systemd owns the tree and
// delegated none of it to this process.
func (d *Delegation) refusal() error {
	user := "--user "
	if os.Geteuid() == 0 {
		user = ""
	}
	return fmt.Errorf("direct driver: systemd owns this machine's cgroup tree and delegated no part of it to cgdev (%s), and cgdev does not write into cgroups systemd manages; use --driver systemd (a transient scope per group), or run cgdev inside a unit with Delegate=yes, e.g. a shell started with: systemd-run %s--scope -p Delegate=yes bash", d.How, user)
}

func hasDelegateMark(dir string) bool {
	buf := make([]byte, 8)
	for _, x := range delegateXattrs {
		if n, err := unix.Getxattr(dir, x, buf); err == nil && string(buf[:n]) == "1" {
			return true
		}
	}
	return false
}

// isUnitCgroup reports whether cgroup c is a systemd unit's: its name ends
// in .slice, .scope or .service.
func isUnitCgroup(c string) bool {
	return unitType(unitOf(c)) != ""
}

func unitOf(c string) string { return filepath.Base(c) }

// unitType is the D-Bus interface suffix of a unit name ("Scope",
// "Service", "Slice"), or "" when it names no such unit.
func unitType(name string) string {
	for _, t := range []string{"Scope", "Service", "Slice"} {
		if strings.HasSuffix(name, "."+strings.ToLower(t)) {
			return t
		}
	}
	return ""
}

func orRoot(c string) string {
	if c == "" {
		return "/"
	}
	return c
}

// LeafName is the sub-cgroup that takes the processes of a delegated cgroup
// when cgdev must enable controllers in it: the name docker's dind
// entrypoint uses for the same move, so the two agree.
const LeafName = "init"

// enableControllers enables controllers in the cgroup.subtree_control of
// dir, the cgroup cgdev's base is created in. cgroup2 refuses that (EBUSY)
// while dir itself holds processes, unless it is the root of the whole
// hierarchy: its "no internal processes" rule. That is the case in a
// container's cgroup namespace (its PID 1 sits at the namespace root) and in
// a delegated unit (the shell or service that runs cgdev sits in it). Then
// every process of dir, cgdev included, is moved into dir/init first, as
// systemd's delegation rules ask and docker's dind does, and the write is
// retried. It returns how many processes it moved.
func enableControllers(dir Dir, controllers []string) (moved int, err error) {
	if len(controllers) == 0 {
		return 0, nil
	}
	want := "+" + strings.Join(controllers, " +")
	for attempt := 0; ; attempt++ {
		err := dir.WriteFile("cgroup.subtree_control", want)
		if err == nil || !errors.Is(err, unix.EBUSY) || attempt == 5 {
			return moved, err
		}
		n, merr := moveProcsToLeaf(dir)
		moved += n
		if merr != nil {
			return moved, fmt.Errorf("%w; moving its processes into %s/%s to make room (cgroup2's no-internal-processes rule): %v", err, dir, LeafName, merr)
		}
	}
}

// moveProcsToLeaf moves every process of dir (not of its sub-cgroups) into
// dir/LeafName, creating it.
func moveProcsToLeaf(dir Dir) (int, error) {
	leaf := Dir(filepath.Join(string(dir), LeafName))
	if err := os.Mkdir(string(leaf), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return 0, err
	}
	procs, err := dir.ReadFile("cgroup.procs")
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, f := range strings.Fields(procs) {
		pid, _ := strconv.Atoi(f)
		err := leaf.WriteFile("cgroup.procs", f)
		switch {
		case err == nil:
			moved++
		case errors.Is(err, unix.ESRCH):
			// exited meanwhile
		default:
			return moved, fmt.Errorf("process %d: %w", pid, err)
		}
	}
	return moved, nil
}
