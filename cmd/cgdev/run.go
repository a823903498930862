package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func runCommand(g *globals) *cobra.Command {
	var (
		opt   launcher.RunOptions
		props []string
	)
	c := &cobra.Command{
		Use:   "run [--name N] [-p PROP=VALUE]... [--grace D] [--ignore-unsupported] [--] CMD [ARGS...]",
		Short: "run one command in its own cgroup, in the foreground",
		Long: `Run one command in a cgroup of its own, in the foreground, like systemd-run
--scope: stdio and the terminal pass through, signals are forwarded, the exit
status is the command's (128+n when signal n ended it), and once it exits
whatever it left behind is stopped (SIGTERM, the grace period, SIGKILL).
Memory, task and CPU limits use systemd's property names; a limit this
machine cannot enforce is refused unless --ignore-unsupported is given. An
OOM kill is reported plainly.

Every word after CMD is the command's, flags included: "cgdev run ls --help"
shows ls's help.`,
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveDefault
		},
		RunE: func(_ *cobra.Command, args []string) error {
			return runCmd(g, args, opt, props)
		},
	}
	fs := c.Flags()
	fs.SetInterspersed(false) // everything after the command is the command's
	fs.StringVar(&opt.Name, "name", "", "name `N` of the run's cgroup (default: the command's name, plus a random suffix)")
	fs.StringArrayVarP(&props, "property", "p", nil, "resource limit in systemd syntax (`PROP=VALUE`), repeatable: "+joinNames(cgroup.PropertyNames()))
	fs.DurationVar(&opt.Grace, "grace", 3*time.Second, "time `D` leftovers get between SIGTERM and SIGKILL after the command exits")
	fs.BoolVar(&opt.IgnoreUnsupported, "ignore-unsupported", false, "run without the limits this machine cannot enforce (with a warning) instead of refusing")
	c.RegisterFlagCompletionFunc("property", func(_ *cobra.Command, _ []string, word string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, n := range cgroup.PropertyNames() {
			if strings.HasPrefix(n, word) {
				out = append(out, n+"=")
			}
		}
		return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
	})
	return c
}

func runCmd(g *globals, args []string, opt launcher.RunOptions, props []string) error {
	if len(args) == 0 {
		return usageError("no command given (usage: cgdev run [OPTIONS] -- CMD [ARGS...])")
	}
	for _, p := range props {
		if err := opt.Limits.Set(p); err != nil {
			return usageError("%v", err)
		}
	}
	if opt.Grace < 0 {
		return usageError("--grace %s: must not be negative", opt.Grace)
	}
	host, err := cgroup.Detect()
	if err != nil {
		return err
	}
	drv, err := launcher.OpenDriver(launcher.DriverName(g.driver, ""), host)
	if err != nil {
		return err
	}
	defer drv.Close()
	opt.Stdin, opt.Stdout, opt.Stderr, opt.Log = os.Stdin, os.Stdout, os.Stderr, g.stderr
	exit, err := launcher.Run(context.Background(), drv, args, opt)
	if err != nil {
		return err
	}
	if exit.Signal == syscall.SIGINT {
		// Die of SIGINT too, as a shell expects of a job ended by Ctrl-C:
		// a loop around cgdev then stops instead of going on. (Go's runtime
		// dies of the signal itself once its handler is reset.)
		// The signal goes to this thread, so it is handled before Main
		// could return and exit normally.
		signal.Reset(exit.Signal)
		runtime.LockOSThread()
		unix.Tgkill(os.Getpid(), unix.Gettid(), unix.SIGINT)
	}
	if exit.Code != 0 {
		return &exitError{code: exit.Code}
	}
	return nil
}

func joinNames(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}
