package main

import (
	"context"
	"syscall"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
)

func stopCommand(g *globals) *cobra.Command {
	var opt launcher.StopOptions
	c := &cobra.Command{
		Use:   "stop [SVC...] [--force] [--containers] [--grace D]",
		Short: "stop the project's services and everything they spawned, in five verified phases",
		Long: `Stop the named services (all without names) and everything they spawned, in
five phases: the stop signal to every process of each group (dependants
first); a wait that ends the moment each group is empty, then SIGKILL to the
whole group after its grace period; an orphan sweep of the project's marked
processes; docker compose down (full stop, when compose.file is set); and a
verification. Exit 0 only when nothing is left.

A signal does not leave a stop half-done: the first SIGINT (Ctrl-C),
SIGTERM or SIGHUP is noted and the stop goes on; the second forces it, as
--force would, and the stop still verifies.

stop works without the config file (a project found by its .cgdev/ directory)
and without any state file: the kernel's cgroups say what runs.`,
		ValidArgsFunction: g.completeServices,
	}
	c.Flags().BoolVar(&opt.Force, "force", false, "no grace period: cgroup.kill at once")
	c.Flags().BoolVar(&opt.Containers, "containers", false, "only bring down the compose file's containers; leave processes alone")
	grace := c.Flags().Duration("grace", 0, "grace period `D` for every service, overriding the config (e.g. 500ms, 10s)")
	c.RunE = func(c *cobra.Command, args []string) error {
		if c.Flags().Changed("grace") {
			if *grace < 0 {
				return usageError("--grace %s: must not be negative", *grace)
			}
			opt.Grace = grace
		}
		return stopCmd(g, args, opt)
	}
	return c
}

func stopCmd(g *globals, names []string, opt launcher.StopOptions) error {
	s, unlock, err := openLocked(g, anyProject)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.checkNames(names, true); err != nil {
		return err
	}
	opt.Out = g.stdout
	_, err = runStop(g, s, names, opt, false)
	return err
}

// runStop stops and turns an incomplete stop into exit status 1. Stopping
// is not ended by a signal: a half-done stop is worse than a slow one. The
// first SIGINT, SIGTERM or SIGHUP is noted, the second forces the stop
// (stopSignals); asked says that one already asked for it (up's Ctrl-C).
// It returns the first signal received during the stop (0 for none): the
// stop completed, and the caller decides what is left undone.
func runStop(g *globals, s *session, names []string, opt launcher.StopOptions, asked bool) (syscall.Signal, error) {
	signals := holdStopSignals(g.stderr, asked)
	opt.Hurry = signals.Hurry()
	err := launcher.Stop(context.Background(), s.project, s.driver, names, opt)
	sig := signals.release()
	if err != nil {
		return sig, &exitError{code: exitFailure, msg: err.Error()}
	}
	return sig, nil
}
