package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/cgdev/cgdev/internal/human"
	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// killTreeCmd stops a process and everything it forked: SIGTERM, a wait that
// ends when the last one exits, SIGKILL for the rest. Like tree, it needs no
// cgroup.
func killTreeCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "kill-tree [--grace D] PID",
		Short: "stop a process and all its descendants: SIGTERM, wait, SIGKILL the rest",
	}
	grace := c.Flags().Duration("grace", 3*time.Second, "time `D` the processes get between SIGTERM and SIGKILL (0 kills at once)")
	c.RunE = func(_ *cobra.Command, args []string) error { return killTreeCmd(g, args, grace) }
	c.ValidArgsFunction = cobra.NoFileCompletions
	return c
}

func killTreeCmd(g *globals, args []string, grace *time.Duration) error {
	if *grace < 0 {
		return usageError("--grace %s: must not be negative", *grace)
	}
	pid, err := pidArg(args)
	if err != nil {
		return err
	}
	// A second Ctrl-C should not leave the tree half-stopped: cancelling the
	// grace period only moves on to SIGKILL.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	res, err := launcher.KillTree(ctx, pid, *grace)
	fmt.Fprintf(g.stdout, "kill-tree %d: %d process(es) found, %d reached by SIGTERM, %d needed SIGKILL, done in %s\n",
		pid, res.Found, res.Terminated, res.Killed, human.Duration(res.Took))
	return err
}
