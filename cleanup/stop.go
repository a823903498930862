package cleanup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/fallback"
	"github.com/cgdev/cgdev/internal/human"
	"github.com/cgdev/cgdev/internal/proc"
	"golang.org/x/sys/unix"
)

// StopOptions describe a project's stop. Groups are found through the driver
// by project name, never through PID files, so a stop works when the state
// files are gone or wrong, and never signals a process they merely name.
type StopOptions struct {
	Project string // project id: the groups' project and the CGDEV_PROJECT marker
	Dir     string // project directory, for the pattern sweep's working-directory test
	// Services limits the stop to these services; empty means every group of
	// the project, including services no longer in the config.
	Services []string
	// Order lists service names dependants first; groups not in it are
	// signalled before all of those in it.
	Order []string
	// Signal and Grace give each service's stop signal and grace period.
	Signal func(service string) syscall.Signal
	Grace  func(service string) time.Duration
	// OrphanGrace is what orphans get between SIGTERM and SIGKILL.
	OrphanGrace time.Duration
	Force       bool // no grace: cgroup.kill at once, SIGKILL to orphans
	// Hurry, once closed (a second Ctrl-C), ends every grace still running
	// as Force would have: what is left is killed at once, and the stop
	// goes on to its sweep, compose down and verify. Closed before Stop
	// begins, it is Force.
	Hurry       <-chan struct{}
	Containers  bool // phase 4 only
	Patterns    []*regexp.Regexp
	ComposeFile string
	// ComposeTimeout bounds phase 4 (compose.timeout); 0 is the default,
	// 2 minutes.
	ComposeTimeout time.Duration
	// Forget removes the tracking entries of the stopped services (phase 5):
	// stopped lists those whose groups are gone, running those that were to
	// stop but whose groups still hold processes (their entries stay).
	Forget func(stopped, running []string) error
	// BeforeSignal, when set and not Force, is called with the groups
	// phase 1 is about to signal, in its order, before it signals them
	// (the services' stop_commands). It must return within a bound of its
	// own; whatever it reports, the groups are signalled after. Its ctx
	// ends early when Hurry closes.
	BeforeSignal func(ctx context.Context, groups []cgroup.Group)
	Out          io.Writer

	procDir string // where the sweep lists processes: /proc unless a test says otherwise
}

// StopReport is what Stop did and what survived.
type StopReport struct {
	Groups    []GroupResult
	Orphans   []Orphan
	Survivors []string // empty when the stop is verified complete
}

// Stop runs the five phases, reporting each as [k/5] on opt.Out:
//  1. the stop signal to every process of each service, dependants first;
//  2. a concurrent, event-driven wait for each group to empty, cgroup.kill
//     after its grace period, and removal of the group;
//  3. the orphan sweep: processes of this project (marker, or a pattern with
//     a working directory inside the project) and this user, outside the
//     groups; never cgdev itself or its ancestors;
//  4. docker compose down, when a compose file is configured;
//  5. verification: no process in a group or carrying the marker, groups
//     and tracking files removed.
//
// It returns an error listing the survivors unless the verification holds.
//
// groups are the project's groups as the driver lists them (Driver.Groups),
// listed once by the caller under the project's lock; Stop takes those of
// opt.Services. /proc is scanned once when no orphan is found: the sweep's
// first scan runs while the groups drain (with --force, while the kernel
// kills them), and reads nothing of the processes that were in the groups
// when the stop began, which die with them; a clean scan is also phase 5's
// evidence.
func Stop(ctx context.Context, groups []cgroup.Group, opt StopOptions) (*StopReport, error) {
	if opt.Project == "" {
		return nil, errors.New("stop: no project id (an empty one would name cgdev runs)")
	}
	r := &reporter{out: opt.Out}
	rep := &StopReport{}
	if opt.Containers {
		if err := composeDown(ctx, opt.ComposeFile, opt.Dir, opt.composeTimeout(), r); err != nil {
			return rep, err
		}
		return rep, nil
	}
	if opt.hurried() {
		opt.Force = true
	}
	groups = servicesGroups(groups, opt.Services)
	self := proc.Protected()
	members := groupMembers(groups)
	if err := refuseOwnGroup(members, self, opt); err != nil {
		return rep, err
	}
	orderGroups(groups, opt.Order)
	if opt.BeforeSignal != nil && !opt.Force {
		bctx, cancel := opt.graceContext(ctx) // a second Ctrl-C cuts it short too
		opt.BeforeSignal(bctx, groups)
		cancel()
	}
	firstScan := make(chan orphanScan, 1)
	go func() { firstScan <- scanOrphans(opt, self, members) }()
	signalled := signalAll(groups, opt, r)
	var drainErrs []error
	rep.Groups, drainErrs = drainAll(ctx, groups, signalled, opt, r)
	reportEscapes(groups, r)
	var clean bool
	rep.Orphans, clean = sweep(ctx, opt, self, <-firstScan, r)
	if len(opt.Services) > 0 {
		r.phase(4, "containers: left up (only some services are being stopped)")
	} else if err := composeDown(ctx, opt.ComposeFile, opt.Dir, opt.composeTimeout(), r); err != nil {
		rep.Survivors = append(rep.Survivors, err.Error())
	}
	rep.Survivors = append(rep.Survivors, verify(groups, drainErrs, clean, opt, self, r)...)
	if len(rep.Survivors) > 0 {
		return rep, fmt.Errorf("stop incomplete; still there:\n  %s", strings.Join(rep.Survivors, "\n  "))
	}
	return rep, nil
}

// groupMembers maps the PIDs in groups to their group's name.
func groupMembers(groups []cgroup.Group) map[int]string {
	members := map[int]string{}
	for _, g := range groups {
		pids, _ := g.Procs()
		for _, pid := range pids {
			members[pid] = g.Name()
		}
	}
	return members
}

// refuseOwnGroup returns an error when cgdev or one of its ancestors (the
// protected PIDs) belongs to a service being stopped: it is one of the
// groups' members, or carries the marker of one of the services (a fallback
// group never lists cgdev's ancestors, so there the marker is what tells).
// Stopping that service would kill the shell running cgdev, and cgdev with
// it, half-way.
func refuseOwnGroup(members map[int]string, protected map[int]bool, opt StopOptions) error {
	refuse := func(service string, pid int) error {
		return fmt.Errorf("cgdev is running inside service %s's group (PID %d, %q, is cgdev or the shell running it); stopping %s would stop cgdev itself: run it from outside the service",
			service, pid, proc.Cmdline(pid), service)
	}
	for pid := range protected {
		if service, ok := members[pid]; ok {
			return refuse(service, pid)
		}
	}
	for pid := range protected {
		if pid <= 1 {
			continue
		}
		m := proc.ReadMarker(pid)
		if m.Project == opt.Project && (len(opt.Services) == 0 || slices.Contains(opt.Services, m.Service)) {
			return refuse(m.Service, pid)
		}
	}
	return nil
}

// reportEscapes says, for groups found without a cgroup (fallback), how each
// process they stopped was found, naming those that left the service's tree,
// process group and session and were caught only by their marker: the tools
// a user learns escape.
func reportEscapes(groups []cgroup.Group, r *reporter) {
	for _, g := range groups {
		if fg, ok := g.(*fallback.Group); ok {
			if reached := fg.Reached(); len(reached) > 0 {
				r.detail("%s: stopped %s", g.Name(), fallback.Summarize(reached))
			}
		}
	}
}

// servicesGroups returns the groups of services, or all for none.
func servicesGroups(groups []cgroup.Group, services []string) []cgroup.Group {
	if len(services) == 0 {
		return groups
	}
	return slices.DeleteFunc(slices.Clone(groups), func(g cgroup.Group) bool {
		return !slices.Contains(services, g.Name())
	})
}

// orderGroups sorts groups as order lists their names (dependants first),
// groups it does not list first, by name.
func orderGroups(groups []cgroup.Group, order []string) {
	rank := map[string]int{}
	for i, n := range order {
		rank[n] = i + 1
	}
	sort.SliceStable(groups, func(i, j int) bool {
		ri, rj := rank[groups[i].Name()], rank[groups[j].Name()]
		if ri != rj {
			return ri < rj
		}
		return groups[i].Name() < groups[j].Name()
	})
}

// signalAll is phase 1. It returns when each group was signalled.
func signalAll(groups []cgroup.Group, opt StopOptions, r *reporter) []time.Time {
	at := make([]time.Time, len(groups))
	if len(groups) == 0 {
		r.phase(1, "stop signal: no service group is running")
		return at
	}
	if opt.Force {
		// Killed here, while the sweep's first scan runs: the write to
		// cgroup.kill returns once the kernel has signalled every process,
		// which for a thousand takes about as long as the scan. Drain kills
		// again and waits.
		for i, g := range groups {
			at[i] = time.Now()
			g.Kill()
		}
		r.phase(1, "stop signal: skipped (--force): %s get cgroup.kill at once", names(groups))
		return at
	}
	var parts []string
	for i, g := range groups {
		sig := opt.Signal(g.Name())
		at[i] = time.Now()
		n, err := SignalGroup(g, sig)
		switch {
		case err != nil:
			parts = append(parts, fmt.Sprintf("%s (error: %v)", g.Name(), err))
		default:
			parts = append(parts, fmt.Sprintf("%s %s→%d", g.Name(), unix.SignalName(sig), n))
		}
	}
	r.phase(1, "stop signal, dependants first: %s", strings.Join(parts, ", "))
	return at
}

// drainAll is phase 2: every group is waited for at once, each ending the
// moment its group is empty, or killed when its grace runs out.
func drainAll(ctx context.Context, groups []cgroup.Group, signalled []time.Time, opt StopOptions, r *reporter) ([]GroupResult, []error) {
	if len(groups) == 0 {
		r.phase(2, "wait: nothing to wait for")
		return nil, nil
	}
	results := make([]GroupResult, len(groups))
	errs := make([]error, len(groups))
	graceCtx, cancel := opt.graceContext(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, g := range groups {
		grace := opt.Grace(g.Name())
		if opt.Force {
			grace = 0
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Drain(graceCtx, g, signalled[i], grace)
		}()
	}
	wg.Wait()
	var exited, forced []string
	for i := range results {
		res := &results[i]
		switch {
		case !res.Forced:
		case opt.Force:
			res.ForcedBy = ForcedByFlag
		case opt.hurried() && res.Took < opt.Grace(res.Name):
			res.ForcedBy = ForcedBySignal
		}
		took := human.Duration(res.Took)
		switch {
		case errs[i] != nil:
			forced = append(forced, fmt.Sprintf("%s FAILED: %v", res.Name, errs[i]))
		case res.ForcedBy == ForcedByFlag:
			forced = append(forced, fmt.Sprintf("%s in %s", res.Name, took))
		case res.ForcedBy == ForcedBySignal:
			forced = append(forced, fmt.Sprintf("%s (forced by a second signal) in %s", res.Name, took))
		case res.Forced:
			forced = append(forced, fmt.Sprintf("%s (still running after its %s grace) in %s", res.Name, human.Duration(opt.Grace(res.Name)), took))
		default:
			exited = append(exited, fmt.Sprintf("%s in %s", res.Name, took))
		}
	}
	var parts []string
	if len(exited) > 0 {
		parts = append(parts, "exited: "+strings.Join(exited, ", "))
	}
	if len(forced) > 0 {
		parts = append(parts, "killed (SIGKILL to the whole group, cgroup.kill where it is a cgroup): "+strings.Join(forced, ", "))
	}
	r.phase(2, "wait: %s", strings.Join(parts, "; "))
	return results, errs
}

// hurried reports whether opt.Hurry is closed.
func (opt StopOptions) hurried() bool {
	select {
	case <-opt.Hurry:
		return true
	default:
		return false
	}
}

// graceContext is ctx, ended early when opt.Hurry is closed: what a grace
// period waits on.
func (opt StopOptions) graceContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return HurryContext(ctx, opt.Hurry)
}

// HurryContext is ctx, ended early when hurry is closed (a nil hurry never
// is): what a wait that a second Ctrl-C cuts short waits on.
func HurryContext(ctx context.Context, hurry <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if hurry != nil {
		go func() {
			select {
			case <-hurry:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

func names(groups []cgroup.Group) string {
	n := make([]string, len(groups))
	for i, g := range groups {
		n[i] = g.Name()
	}
	return strings.Join(n, ", ")
}

// forgettable splits the services a stop was asked to stop (every stopped
// group's, on a full stop) into those whose tracking entries it may drop and
// those whose groups still hold processes: their entries are what status and
// scripts know of them, and stay.
func forgettable(services []string, stopped []cgroup.Group, running map[string]bool) (gone, left []string) {
	if len(services) == 0 {
		for _, g := range stopped {
			services = append(services, g.Name())
		}
	}
	for _, s := range services {
		if running[s] {
			left = append(left, s)
		} else {
			gone = append(gone, s)
		}
	}
	return gone, left
}

// verify is phase 5. The groups whose drain succeeded are empty and
// removed; those whose drain failed are looked at again. When the sweep's
// last scan was clean it is the evidence that no process carries the
// marker; otherwise /proc is scanned again.
func verify(stopped []cgroup.Group, drainErrs []error, swept bool, opt StopOptions, protected map[int]bool, r *reporter) []string {
	var survivors []string
	running := map[string]bool{}
	for i, g := range stopped {
		if drainErrs[i] == nil {
			continue
		}
		if pids, _ := g.Procs(); len(pids) > 0 {
			running[g.Name()] = true
			survivors = append(survivors, fmt.Sprintf("service %s: %d process(es) in its group: %v", g.Name(), len(pids), pids))
		} else if err := g.Remove(); err != nil {
			survivors = append(survivors, fmt.Sprintf("service %s: group %s not removed: %v", g.Name(), g.Path(), err))
		}
	}
	if !swept {
		orphans, err := findOrphans(opt, protected, false)
		if err != nil {
			survivors = append(survivors, "processes carrying the marker: unknown: "+err.Error())
		}
		for _, o := range orphans {
			survivors = append(survivors, fmt.Sprintf("PID %d (%s) carries %s=%s", o.PID, o.Cmdline, proc.ProjectEnv, opt.Project))
		}
	}
	if opt.Forget != nil {
		gone, left := forgettable(opt.Services, stopped, running)
		if err := opt.Forget(gone, left); err != nil {
			survivors = append(survivors, "tracking files: "+err.Error())
		}
	}
	if len(survivors) > 0 {
		r.phase(5, "verify: FAILED, %d survivor(s)", len(survivors))
	} else {
		r.phase(5, "verify: no process left in the project's groups or carrying its marker; groups and tracking files removed")
	}
	return survivors
}
