package main

import (
	"github.com/cgdev/cgdev/launcher"
)

func restartCmd(g *globals, args []string) error {
	fs := newFlagSet(g, "restart")
	file := addFileFlag(fs)
	var opt launcher.StopOptions
	fs.BoolVar(&opt.Force, "force", false, "no grace period: cgroup.kill at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("name the services to restart (usage: cgdev restart SVC...)")
	}
	s, unlock, err := openLocked(g, *file)
	if err != nil {
		return err
	}
	defer unlock()
	for _, n := range fs.Args() {
		if s.project.Config.Service(n) == nil {
			return usageError("no service %q in %s", n, s.project.Config.File)
		}
	}
	opt.Out = g.stdout
	if err := runStop(s, fs.Args(), opt); err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	if _, err := launcher.Start(ctx, s.project, s.driver, fs.Args(), launcher.StartOptions{Driver: s.driver.Name(), Out: g.stdout}); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	return nil
}
