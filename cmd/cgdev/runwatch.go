package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// runWatchCommand is what the watcher every `cgdev run` starts execs when
// that cgdev dies (launcher.WatchRun): it kills the run's group. It is not
// meant to be run by hand; fd 3 is the pipe from its cgdev.
func runWatchCommand(g *globals) *cobra.Command {
	var services []string
	c := &cobra.Command{
		Use:    "__run-watch RUN [--stop-services SVC,...]",
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
			err = launcher.WatchRun(drv, args[0], owner, g.stderr)
			if len(services) == 0 {
				return err
			}
			// run --with's cgdev was killed while its command ran: the
			// services it started go too, as its own end would stop them.
			fmt.Fprintf(g.stderr, "cgdev: run %s: its cgdev is gone; stopping the services it started: %s\n", args[0], strings.Join(services, ", "))
			return errors.Join(err, stopCmd(g, services, launcher.StopOptions{}))
		},
	}
	c.Flags().StringSliceVar(&services, "stop-services", nil, "then stop the services `SVC,...` of the project (-C, -f)")
	return c
}
