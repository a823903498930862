package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/cgdev/cgdev/launcher"
	"golang.org/x/sys/unix"
)

// killTreeCmd stops a process and everything it forked: SIGTERM, a wait that
// ends when the last one exits, SIGKILL for the rest. Like tree, it needs no
// cgroup.
func killTreeCmd(g *globals, args []string) error {
	fs := newFlagSet(g, "kill-tree")
	grace := fs.Duration("grace", 3*time.Second, "time the processes get between SIGTERM and SIGKILL (0 kills at once)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *grace < 0 {
		return usageError("--grace %s: must not be negative", *grace)
	}
	pid, err := pidArg(fs.Args())
	if err != nil {
		return err
	}
	// A second Ctrl-C should not leave the tree half-stopped: cancelling the
	// grace period only moves on to SIGKILL.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	res, err := launcher.KillTree(ctx, pid, *grace)
	fmt.Fprintf(g.stdout, "kill-tree %d: %d process(es) found, %d reached by SIGTERM, %d needed SIGKILL, done in %s\n",
		pid, res.Found, res.Terminated, res.Killed, res.Took.Round(time.Millisecond))
	return err
}
