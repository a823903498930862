package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
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
		list  bool
		stop  []string
		with  []string
	)
	c := &cobra.Command{
		Use:   "run [--with SVC,...] [--name N] [-p PROP=VALUE]... [--grace D] [--ignore-unsupported] [--] CMD [ARGS...] | --list | --stop RUN|all",
		Short: "run one command in its own cgroup, in the foreground",
		Long: `Run one command in a cgroup of its own, in the foreground, like systemd-run
--scope: stdio and the terminal pass through, signals are forwarded, the exit
status is the command's (128+n when signal n ended it), and once it exits
whatever it left behind is stopped (SIGTERM, the grace period, SIGKILL; a
second signal to cgdev kills it at once).
Memory, task and CPU limits use systemd's property names; a limit this
machine cannot enforce is refused unless --ignore-unsupported is given. An
OOM kill is reported plainly.

--with starts the project's services named (and what they depend on) that
are not running, as start does, waits until they are ready, runs the
command, then stops what it started (leaving what already ran) and exits
with the command's status. A service that does not become ready stops what
this run started; the command is then not run, and cgdev exits 1. Ctrl-C
stops the command and then the services this run started; a second Ctrl-C
forces that stop.

No run outlives its cgdev: when cgdev is killed (kill -9, a CI timeout), a
watcher it started kills the run's group within a second (with --with, then
stops the services this run started). --list shows the
runs and --stop stops them; both, and every run, first collect the groups of
runs whose cgdev is gone.

Every word after CMD is the command's, flags included: "cgdev run ls --help"
shows ls's help.`,
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveDefault
		},
		RunE: func(_ *cobra.Command, args []string) error {
			if list || len(stop) > 0 {
				if len(with) > 0 {
					return usageError("--with runs a command: not with --list or --stop")
				}
				return runsCmd(g, args, list, stop, opt.Grace)
			}
			return runCmd(g, args, opt, props, with)
		},
	}
	fs := c.Flags()
	fs.SetInterspersed(false) // everything after the command is the command's
	fs.StringVar(&opt.Name, "name", "", "name `N` of the run's cgroup (default: the command's name, plus a random suffix)")
	fs.StringArrayVarP(&props, "property", "p", nil, "resource limit in systemd syntax (`PROP=VALUE`), repeatable: "+joinNames(cgroup.PropertyNames()))
	fs.DurationVar(&opt.Grace, "grace", 3*time.Second, "time `D` leftovers get between SIGTERM and SIGKILL after the command exits (with --stop: the run's processes)")
	fs.StringSliceVar(&with, "with", nil, "start the project's services `SVC,...` (and their dependencies) not running yet, wait until ready, run the command, then stop what this run started; repeatable")
	fs.BoolVar(&list, "list", false, "list the runs: name, the PID of their cgdev (gone: none) and their processes")
	fs.StringArrayVar(&stop, "stop", nil, "stop the run named `RUN` (as --list names it; all: every run) with SIGTERM, then SIGKILL after --grace; repeatable")
	fs.BoolVar(&opt.IgnoreUnsupported, "ignore-unsupported", false, "run without the limits this machine cannot enforce (with a warning) instead of refusing")
	c.RegisterFlagCompletionFunc("with", g.completeServiceList)
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

func runCmd(g *globals, args []string, opt launcher.RunOptions, props []string, with []string) error {
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
	opt.Stdin, opt.Stdout, opt.Stderr, opt.Log = os.Stdin, os.Stdout, os.Stderr, g.stderr
	var exit launcher.Exit
	var err error
	if len(with) > 0 {
		exit, err = runWith(g, with, args, opt)
	} else {
		exit, err = runAlone(g, args, opt)
	}
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

// openRunDriver opens the driver of runs without a project: --driver,
// $CGDEV_DRIVER or auto.
func openRunDriver(g *globals) (cgroup.Driver, error) {
	host, err := cgroup.Detect()
	if err != nil {
		return nil, err
	}
	return launcher.OpenDriver(launcher.DriverName(g.driver, ""), host)
}

// completeServiceList completes the last name of a comma-separated list of
// services (--with db,re → db,redis), leaving out those listed before it.
func (g *globals) completeServiceList(c *cobra.Command, _ []string, word string) ([]string, cobra.ShellCompDirective) {
	listed, last := "", word
	if i := strings.LastIndex(word, ","); i >= 0 {
		listed, last = word[:i+1], word[i+1:]
	}
	names, directive := g.completeServices(c, strings.Split(listed, ","), last)
	for i := range names {
		names[i] = listed + names[i]
	}
	return names, directive
}

// runAlone runs args with openRunDriver's driver.
func runAlone(g *globals, args []string, opt launcher.RunOptions) (launcher.Exit, error) {
	drv, err := openRunDriver(g)
	if err != nil {
		return launcher.Exit{}, err
	}
	defer drv.Close()
	return launcher.Run(context.Background(), drv, args, opt)
}

// runWith is run --with: it starts the services of with that are not
// running (start's path, under the project's lock), runs args with the
// project's driver (without the lock: status, logs and stop work
// meanwhile), then stops the services it started (stop's path, under the
// lock). Ctrl-C, SIGTERM and SIGHUP end the start or, forwarded by
// launcher.Run, the command; the stop that follows is not interrupted, and
// the next signal forces it.
// cgdev's own lines go to stderr: stdout is the command's.
func runWith(g *globals, with, args []string, opt launcher.RunOptions) (launcher.Exit, error) {
	s, err := openSession(g, projectFile)
	if err != nil {
		return launcher.Exit{}, err
	}
	defer s.driver.Close()
	if err := s.checkNames(with, false); err != nil {
		return launcher.Exit{}, err
	}
	if err := launcher.CheckRun(s.driver, args, opt); err != nil {
		return launcher.Exit{}, err // before any service starts
	}
	held := make(chan os.Signal, 4) // a signal must not end cgdev before it has stopped what it started
	signal.Notify(held, os.Interrupt, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(held)
	ctx, cancel := interruptible()
	results, _, startErr := startLocked(ctx, g, s, with, false, launcher.StartOptions{Driver: s.driver.Name(), IgnoreUnsupported: opt.IgnoreUnsupported, Out: g.stderr})
	interrupted := ctx.Err() != nil
	cancel()
	var exit launcher.Exit
	var runErr error
	var started []string
	for _, r := range results {
		if r.State == "ready" || r.State == "running" {
			started = append(started, r.Name)
		}
	}
	if startErr == nil && !interrupted {
		if config, err := filepath.Abs(s.project.Config.File); err == nil && len(started) > 0 {
			opt.Services = &launcher.RunServices{Dir: s.project.Dir, Config: config, Names: started}
		}
		exit, runErr = launcher.Run(context.Background(), s.driver, args, opt)
	}
	if len(started) > 0 { // no names would stop every service
		unlock, err := g.lock(s.project)
		if err != nil {
			return exit, err
		}
		defer unlock()
		// A signal already received (the start's, or one relayed to the
		// command) asked for this stop: the next one forces it.
		asked := interrupted || len(held) > 0
		if _, err := runStop(g, s, started, launcher.StopOptions{Out: g.stderr}, asked); err != nil {
			return exit, err
		}
	}
	switch {
	case startErr != nil:
		return exit, &exitError{code: exitFailure, msg: fmt.Sprintf("--with %s: %v; the command was not run", strings.Join(with, ","), startErr)}
	case interrupted:
		return exit, &exitError{code: exitFailure, msg: "interrupted while starting the services of --with; the command was not run"}
	}
	return exit, runErr
}

// runsCmd is run --list and run --stop.
func runsCmd(g *globals, args []string, list bool, stop []string, grace time.Duration) error {
	if len(args) > 0 {
		return usageError("--list and --stop take no command (got %q)", args[0])
	}
	if list && len(stop) > 0 {
		return usageError("--list and --stop go one at a time")
	}
	drv, err := openRunDriver(g)
	if err != nil {
		return err
	}
	defer drv.Close()
	if list {
		return launcher.ListRuns(g.stdout, g.stderr, drv)
	}
	if err := launcher.StopRuns(context.Background(), g.stdout, drv, stop, grace); err != nil {
		return &exitError{code: exitFailure, msg: err.Error()}
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
