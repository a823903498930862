package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
	"golang.org/x/sys/unix"
)

func runCmd(g *globals, args []string) error {
	fs := newFlagSet(g, "run")
	fs.SetInterspersed(false) // everything after the command is the command's
	var (
		opt   launcher.RunOptions
		props []string
	)
	fs.StringVar(&opt.Name, "name", "", "name of the run's cgroup (default: the command's name, plus a random suffix)")
	fs.StringArrayVarP(&props, "property", "p", nil, "resource limit in systemd syntax, repeatable: "+joinNames(cgroup.PropertyNames()))
	fs.DurationVar(&opt.Grace, "grace", 3*time.Second, "time leftovers get between SIGTERM and SIGKILL after the command exits")
	fs.BoolVar(&opt.IgnoreUnsupported, "ignore-unsupported", false, "run without the limits this machine cannot enforce (with a warning) instead of refusing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
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
	opt.Stdin, opt.Stdout, opt.Stderr, opt.Log = os.Stdin, os.Stdout, os.Stderr, g.stderr
	exit, err := launcher.Run(context.Background(), drv, fs.Args(), opt)
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
