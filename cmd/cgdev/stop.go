package main

import (
	"context"

	"github.com/cgdev/cgdev/launcher"
)

func stopCmd(g *globals, args []string) error {
	fs := newFlagSet(g, "stop")
	file := addFileFlag(fs)
	var opt launcher.StopOptions
	fs.BoolVar(&opt.Force, "force", false, "no grace period: cgroup.kill at once")
	fs.BoolVar(&opt.Containers, "containers", false, "only bring down the compose file's containers; leave processes alone")
	grace := fs.Duration("grace", 0, "grace period for every service, overriding the config (e.g. 500ms, 10s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.Changed("grace") {
		if *grace < 0 {
			return usageError("--grace %s: must not be negative", *grace)
		}
		opt.Grace = grace
	}
	s, unlock, err := openLocked(g, *file)
	if err != nil {
		return err
	}
	defer unlock()
	opt.Out = g.stdout
	return runStop(s, fs.Args(), opt)
}

// runStop stops and turns an incomplete stop into exit status 1. Stopping
// is not interrupted by Ctrl-C: a half-done stop is worse than a slow one.
func runStop(s *session, names []string, opt launcher.StopOptions) error {
	if err := launcher.Stop(context.Background(), s.project, s.driver, names, opt); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	return nil
}
