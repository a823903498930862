package main

import (
	"context"
	"fmt"

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
and on Ctrl-C (SIGINT, SIGTERM, SIGHUP) stop everything it started. The
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
	if err := s.checkNames(names, false); err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	eventsFrom := s.project.EventsEnd()
	results, startErr := startLocked(ctx, g, s, names, opt.ignoreUnsupported)
	var started []string
	from := map[string]int64{}
	for _, r := range results {
		if len(names) > 0 {
			started = append(started, r.Name)
		}
		if r.State == "running" || r.State == "ready" || r.State == "completed" {
			from[r.Name] = r.LogFrom // this start's output, from its first line
		}
	}
	if startErr == nil && ctx.Err() == nil {
		fmt.Fprintln(g.stdout, "\ncgdev: following the logs; Ctrl-C stops everything")
		err = launcher.Logs(ctx, s.project, started, launcher.LogOptions{Follow: true, Lines: opt.lines, Timestamps: opt.timestamps, Color: useColor(g), Out: g.stdout,
			From: from, Events: true, EventsFrom: eventsFrom})
		if err != nil {
			fmt.Fprintf(g.stderr, "cgdev up: %v\n", err)
		}
		fmt.Fprintln(g.stdout)
	}
	unlock, err := s.project.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := runStop(s, started, launcher.StopOptions{Out: g.stdout}); err != nil {
		return err
	}
	if startErr != nil {
		return &exitError{code: exitFailure, msg: startErr.Error()}
	}
	return nil
}

func startLocked(ctx context.Context, g *globals, s *session, names []string, ignoreUnsupported bool) ([]launcher.StartResult, error) {
	unlock, err := s.project.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	// up always runs the supervisor: it is what sees a service end and says
	// so (the events up follows), whatever the restart policies.
	return launcher.StartServices(ctx, s.project, s.driver, names, true, launcher.StartOptions{Driver: s.driver.Name(), IgnoreUnsupported: ignoreUnsupported, Out: g.stdout})
}
