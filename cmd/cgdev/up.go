package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
)

func upCommand(g *globals) *cobra.Command {
	var opt upOptions
	c := &cobra.Command{
		Use:   "up [SVC...] [-n N] [-t] [-e FILE] [-p PORT]",
		Short: "start, follow the logs, and stop everything on Ctrl-C",
		Long: `Start the services (all, or those named with what they depend on), follow their
logs from this start on (what they wrote before up began following included),
and on Ctrl-C (SIGINT, SIGTERM, SIGHUP) stop everything it started (what
ran before up began is left running; a second Ctrl-C forces that stop, as
stop --force would). The
project's supervisor starts and watches the services, and up prints a
"cgdev | " line whenever one exits, is OOM-killed, becomes unhealthy, is
restarted or given up on. Exits 1 when a service failed to start, after
stopping the rest.`,
		ValidArgsFunction: g.completeServices,
		RunE: func(_ *cobra.Command, args []string) error {
			return upCmd(g, args, opt)
		},
	}
	c.Flags().IntVarP(&opt.lines, "lines", "n", 0, "print the last `N` lines of each log before following")
	c.Flags().BoolVarP(&opt.timestamps, "timestamps", "t", false, "prefix each line with when it was written")
	addIgnoreUnsupported(c, &opt.ignoreUnsupported)
	addProcfileFlags(c, g)
	return c
}

type upOptions struct {
	lines             int
	timestamps        bool
	ignoreUnsupported bool
}

// upCmd starts, follows the logs, and on Ctrl-C (or SIGTERM, SIGHUP) stops
// what it started. The project lock is held while starting and while
// stopping, not while following, so status and logs work meanwhile.
func upCmd(g *globals, names []string, opt upOptions) error {
	s, err := openSession(g, projectFile)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.checkNames(names, false); err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	eventsFrom := s.project.EventsEnd()
	// up always runs the supervisor: it is what sees a service end and says
	// so (the events up follows), whatever the restart policies.
	results, ranBefore, startErr := startLocked(ctx, g, s, names, true, launcher.StartOptions{Driver: s.driver.Name(), IgnoreUnsupported: opt.ignoreUnsupported, Out: g.stdout})
	var follow []string // all when no names were given
	from := map[string]int64{}
	for _, r := range results {
		if len(names) > 0 {
			follow = append(follow, r.Name)
		}
		if r.State == "running" || r.State == "ready" || r.State == "completed" {
			from[r.Name] = r.LogFrom // this start's output, from its first line
		}
	}
	if startErr == nil && ctx.Err() == nil {
		fmt.Fprintln(g.stdout, "\ncgdev: following the logs; Ctrl-C stops what up started")
		err = launcher.Logs(ctx, s.project, follow, launcher.LogOptions{Follow: true, Lines: opt.lines, Timestamps: opt.timestamps, Color: useColor(g), Out: g.stdout,
			From: from, Events: true, EventsFrom: eventsFrom})
		if err != nil {
			fmt.Fprintf(g.stderr, "cgdev up: %v\n", err)
		}
		fmt.Fprintln(g.stdout)
	}
	unlock, err := g.lock(s.project)
	if err != nil {
		return err
	}
	defer unlock()
	if stop, all := ownServices(s, names, ranBefore); all || len(stop) > 0 {
		if _, err := runStop(g, s, stop, launcher.StopOptions{Out: g.stdout}, ctx.Err() != nil); err != nil {
			return err
		}
	}
	if startErr != nil {
		return &exitError{code: exitFailure, msg: startErr.Error()}
	}
	return nil
}

// startLocked starts names (launcher.StartServices) under the project's
// lock, and says which services ran before (seen under the same lock, so
// that a concurrent start's services are not taken for this one's).
func startLocked(ctx context.Context, g *globals, s *session, names []string, supervise bool, opt launcher.StartOptions) (results []launcher.StartResult, ranBefore []string, err error) {
	unlock, err := g.lock(s.project)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	ranBefore = runningServices(s)
	results, err = launcher.StartServices(ctx, s.project, s.driver, names, supervise, opt)
	return results, ranBefore, err
}

// runningServices names the project's services that have processes now
// (the supervisor is not a service).
func runningServices(s *session) []string {
	groups, err := s.driver.Groups(s.project.ID)
	if err != nil {
		return nil
	}
	var out []string
	for _, g := range groups {
		if pids, err := g.Procs(); err == nil && len(pids) > 0 && g.Name() != launcher.SupervisorGroup {
			out = append(out, g.Name())
		}
	}
	return out
}

// ownServices names what up stops when it ends: the services it was asked
// for (all when names is empty) with what they depend on, less those that
// ran before it began, which it found running and leaves so. all means
// everything (no names, nothing ran before): the full stop, supervisor,
// orphan sweep and containers included.
func ownServices(s *session, names, ranBefore []string) (stop []string, all bool) {
	if len(names) == 0 && len(ranBefore) == 0 {
		return nil, true
	}
	services, err := s.project.Config.Closure(names)
	if err != nil {
		return names, false
	}
	for _, svc := range services {
		if !slices.Contains(ranBefore, svc.Name) {
			stop = append(stop, svc.Name)
		}
	}
	return stop, false
}
