package main

import (
	"os"
	"os/signal"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// runWatchCommand is what the watcher every `cgdev run` starts execs when
// that cgdev dies (launcher.WatchRun): it kills the run's group. It is not
// meant to be run by hand; fd 3 is the pipe from its cgdev.
func runWatchCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "__run-watch RUN",
		Short:  "the watcher of a run (started by run)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			owner := os.NewFile(3, "cgdev run")
			drv, err := openRunDriver(g)
			if err != nil {
				return err
			}
			defer drv.Close()
			// It has no terminal, and its stderr may be a pipe that closes
			// with its cgdev: neither is a reason to leave the run running.
			signal.Ignore(unix.SIGHUP, unix.SIGPIPE, unix.SIGINT)
			return launcher.WatchRun(drv, args[0], owner, g.stderr)
		},
	}
}
