package main

import (
	"fmt"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
)

func restartCommand(g *globals) *cobra.Command {
	var opt launcher.StopOptions
	var ignore bool
	c := &cobra.Command{
		Use:   "restart [SVC...] [--force] [-e FILE] [-p PORT]",
		Short: "stop, then start, the named services (all without names)",
		Long: `Stop the named services (every configured service without names) with stop's
phases, then start them again, under one lock. Restarting every service
leaves the compose file's containers up: only services are restarted.
Interrupted during the stop (SIGINT, SIGTERM, SIGHUP), restart completes
the stop as stop does (a second signal forces it), does not start the
services again, and exits 128+n.`,
		ValidArgsFunction: g.completeServices,
		RunE: func(_ *cobra.Command, args []string) error {
			opt.Out = g.stdout
			return restartCmd(g, args, opt, ignore)
		},
	}
	c.Flags().BoolVar(&opt.Force, "force", false, "no grace period: cgroup.kill at once")
	addIgnoreUnsupported(c, &ignore)
	addProcfileFlags(c, g)
	return c
}

func restartCmd(g *globals, names []string, opt launcher.StopOptions, ignoreUnsupported bool) error {
	s, unlock, err := openLocked(g, projectFile)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.checkNames(names, false); err != nil {
		return err
	}
	if len(names) == 0 {
		// Every service that starts without names, named: a partial stop of them
		// leaves the containers up, which a full stop would bring down.
		names = s.project.Config.DefaultNames()
	}
	opt.KeepSupervisor = true // the services start again at once, under it
	if sig, err := runStop(g, s, names, opt, false); err != nil {
		return err
	} else if sig != 0 {
		c := caughtSignal{sig}
		return &exitError{code: c.exitCode(), msg: fmt.Sprintf("%v during the stop: the services were stopped and are not started again", c)}
	}
	ctx, cancel := interruptible()
	defer cancel()
	if _, err := launcher.StartServices(ctx, s.project, s.driver, names, false, launcher.StartOptions{Driver: s.driver.Name(), IgnoreUnsupported: ignoreUnsupported, Out: g.stdout}); err != nil {
		return &exitError{code: exitFailure, msg: err.Error()}
	}
	return nil
}
