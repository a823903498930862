package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// superviseCommand is the project's supervisor, which start, restart and up
// launch (in a group of its own) when a service has restart:, healthcheck:
// or watch:. It is not meant to be run by hand.
func superviseCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "__supervise",
		Short:  "the project's supervisor (started by start, restart and up)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(*cobra.Command, []string) error {
			s, err := openSession(g, projectFile)
			if err != nil {
				return err
			}
			defer s.close()
			// SIGTERM (stop) ends it, leaving the services as they are; it has
			// no terminal, and a SIGHUP or SIGPIPE is no reason to go.
			signal.Ignore(unix.SIGHUP, unix.SIGPIPE)
			ctx, cancel := signal.NotifyContext(context.Background(), unix.SIGTERM, os.Interrupt)
			defer cancel()
			return launcher.Supervise(ctx, s.project, s.driver, os.Stdout)
		},
	}
}
