package launcher

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/internal/human"
	"github.com/cgdev/cgdev/internal/safefile"
	"golang.org/x/sys/unix"
)

// StopOptions configure Stop (the flags of cgdev stop).
type StopOptions struct {
	Force      bool           // cgroup.kill at once, no grace
	Containers bool           // only docker compose down
	Grace      *time.Duration // overrides every service's grace when set
	// Hurry, once closed, ends the graces still running (cleanup.StopOptions.Hurry).
	Hurry <-chan struct{}
	Out   io.Writer
	// KeepSupervisor leaves the supervisor running when the named services
	// were all it watched (restart: they start again at once under it).
	KeepSupervisor bool
}

// Stop stops the named services (all when names is empty) with the five
// phases of cleanup.Stop, filled in from the config: stop signals, grace
// periods, dependants-first order, orphan patterns, the compose file, and
// the removal of the tracking files. The caller holds the project lock; the
// project's groups are listed once, here.
func Stop(ctx context.Context, p *Project, drv cgroup.Driver, names []string, opt StopOptions) error {
	cfg := p.Config
	groups, err := drv.Groups(p.ID)
	if err != nil {
		return fmt.Errorf("finding the groups of project %s: %w", p.ID, err)
	}
	if err := p.checkNames(names, groups, true); err != nil {
		return err
	}
	grace := func(name string) time.Duration {
		if opt.Grace != nil {
			return *opt.Grace
		}
		if s := cfg.Service(name); s != nil {
			return s.Grace
		}
		return cfg.Grace
	}
	orphanGrace := cfg.Grace
	if opt.Grace != nil {
		orphanGrace = *opt.Grace
	}
	// The supervisor goes first, so that it restarts nothing mid-stop; the
	// groups are listed again once it is gone.
	resume, supervised := false, slices.ContainsFunc(groups, func(g cgroup.Group) bool { return g.Name() == SupervisorGroup })
	if !opt.Containers && supervised {
		hctx, cancel := cleanup.HurryContext(ctx, opt.Hurry)
		resume = pauseSupervisor(hctx, p, drv, names, opt.Out)
		cancel()
		if groups, err = drv.Groups(p.ID); err != nil {
			return fmt.Errorf("finding the groups of project %s: %w", p.ID, err)
		}
	}
	rep, err := cleanup.Stop(ctx, groups, cleanup.StopOptions{
		Project:  p.ID,
		Dir:      p.Dir,
		Services: withHelpers(names, groups),
		Order:    dependantsFirst(cfg),
		Signal: func(name string) syscall.Signal {
			if s := cfg.Service(name); s != nil {
				return s.StopSignal
			}
			return unix.SIGTERM
		},
		Grace:          grace,
		OrphanGrace:    orphanGrace,
		Force:          opt.Force,
		Hurry:          opt.Hurry,
		Containers:     opt.Containers,
		Patterns:       cfg.Patterns,
		ComposeFile:    cfg.Compose,
		ComposeTimeout: cfg.ComposeTimeout,
		Forget:         p.forget(len(names) == 0),
		BeforeSignal:   p.stopCommands(drv, opt.Out),
		Out:            opt.Out,
	})
	if rep != nil {
		p.markStopped(rep.Groups)
	}
	if !opt.Containers {
		p.RemoveRecords(names)
	}
	switch {
	case resume:
		resumeSupervisor(p, drv, opt.Out)
	case supervised && len(names) > 0 && !opt.Containers && !opt.KeepSupervisor:
		endIdleSupervisor(ctx, p, drv, opt.Out)
	}
	return err
}

// markStopped writes "--- cgdev: stopped <svc> at <time> (…) ---" in the log
// of each service whose group the stop emptied: the line after the
// service's last, with the time, that logs --timestamps and --since use.
func (p *Project) markStopped(groups []cleanup.GroupResult) {
	now := time.Now().Format(time.RFC3339)
	for _, g := range groups {
		if _, helper := helperOwner(g.Name); helper {
			continue // a check's or stop_command's leftovers: no log of their own
		}
		how := "exited after the stop signal"
		switch {
		case g.ForcedBy == cleanup.ForcedByFlag:
			how = "forced: killed at once by stop --force"
		case g.ForcedBy == cleanup.ForcedBySignal:
			how = "forced: killed during its grace by a second signal"
		case g.Forced:
			how = "killed after its grace"
		}
		line := fmt.Sprintf("--- cgdev: stopped %s at %s (%s in %s) ---", g.Name, now, how, human.Duration(g.Took))
		if err := p.serviceLog(g.Name).mark(line); err != nil && !missing(err) {
			p.warnOnce(fmt.Errorf("log of %s: %w", g.Name, err))
		}
	}
}

// CheckNames accepts names of configured services and, when drv is given,
// of the project's groups (a service removed from the config while it ran
// can still be stopped or looked at). The error names the services there are.
// The groups are listed only when a name is not a configured service.
func (p *Project) CheckNames(drv cgroup.Driver, names []string) error {
	var groups []cgroup.Group
	if drv != nil && slices.ContainsFunc(names, func(n string) bool { return p.Config.Service(n) == nil }) {
		groups, _ = drv.Groups(p.ID)
	}
	return p.checkNames(names, groups, drv != nil)
}

// checkNames is CheckNames over groups already listed; running says
// whether they were looked at, for the error's wording.
func (p *Project) checkNames(names []string, groups []cgroup.Group, running bool) error {
	known := map[string]bool{}
	for _, g := range serviceGroups(groups) {
		known[g.Name()] = true
	}
	for _, n := range names {
		if p.Config.Service(n) == nil && !known[n] {
			also := ""
			if running {
				also = " and no such group running"
			}
			return fmt.Errorf("no service %q in %s%s (services: %s)",
				n, p.Config.File, also, strings.Join(p.Config.Names(), ", "))
		}
	}
	return nil
}

// withHelpers adds to the services a partial stop names the helper groups
// of theirs among groups (helper.go: what a check killed mid-way left); a
// full stop (no names) takes every group anyway.
func withHelpers(names []string, groups []cgroup.Group) []string {
	if len(names) == 0 {
		return nil
	}
	out := slices.Clone(names)
	for _, g := range groups {
		if svc, helper := helperOwner(g.Name()); helper && slices.Contains(names, svc) {
			out = append(out, g.Name())
		}
	}
	return out
}

// dependantsFirst orders every configured service after all that depend on it.
func dependantsFirst(cfg *Config) []string {
	order, _ := cfg.Closure(nil)
	names := make([]string, len(order))
	for i, s := range order {
		names[len(order)-1-i] = s.Name
	}
	return names
}

// forget returns the hook that drops stopped services from state.json and
// the .pids files; after a full stop the files are removed, unless a service
// survived it: then only its entry stays. An unreadable state.json is left as
// it is (an error) where entries must stay: rewriting it from nothing would
// drop those of the services still running. Files in cgdev's place that are
// not cgdev's (a user's .pids file, a symlink) are left alone with a
// warning, which does not fail the stop: they are no survivor.
func (p *Project) forget(all bool) func(stopped, running []string) error {
	return func(stopped, running []string) error {
		if all && len(running) == 0 {
			return p.RemoveState()
		}
		if _, err := p.LoadState(); safefile.IsNotOurs(err) {
			return nil // not cgdev's to rewrite: LoadState warned, the user's file stays as it is
		} else if err != nil {
			return fmt.Errorf("not updated, so as not to lose the entries of the services still running: %w", err)
		}
		return p.UpdateState(func(st *State) {
			drop := stopped
			if all {
				drop = nil
				for n := range st.Services {
					if !slices.Contains(running, n) {
						drop = append(drop, n)
					}
				}
			}
			for _, n := range drop {
				delete(st.Services, n)
			}
		})
	}
}
