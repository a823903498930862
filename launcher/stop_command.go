package launcher

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/human"
)

// stopCommands returns stop's BeforeSignal hook (cleanup.StopOptions): for
// each group about to get its stop signal, in that order (dependants
// first), whose service has a stop_command and still holds processes, the
// command is run as a helper (helper.go: the service's directory and
// environment, a group of its own emptied afterwards), bounded by its
// stop_timeout. One that fails or hangs is reported on out, and the stop
// goes on: the stop signal and the grace period follow as for any service.
// Without a readable project file no stop_command can be known: a warning
// says so, and the services are stopped by signal alone.
func (p *Project) stopCommands(drv cgroup.Driver, out io.Writer) func(ctx context.Context, groups []cgroup.Group) {
	return func(ctx context.Context, groups []cgroup.Group) {
		groups = serviceGroups(groups)
		if p.NoConfig {
			if len(groups) > 0 {
				fmt.Fprintf(out, "cgdev: warning: the project file was not read, so no service's stop_command is run: %s stopped by signal alone\n", names(groups))
			}
			return
		}
		env := os.Environ()
		for _, g := range groups {
			svc := p.Config.Service(g.Name())
			if svc == nil || svc.StopCommand == "" {
				continue
			}
			if pids, err := g.Procs(); err == nil && len(pids) == 0 {
				continue // nothing of it runs: nothing to tell to stop
			}
			started := time.Now()
			if err := runStopCommand(ctx, p, drv, svc, env); err != nil {
				fmt.Fprintf(out, "cgdev: warning: stop_command of %s: %v; stopping it by signal anyway\n", svc.Name, err)
				continue
			}
			fmt.Fprintf(out, "stop_command of %s: %q exited 0 in %s\n", svc.Name, svc.StopCommand, human.Duration(time.Since(started)))
		}
	}
}

// runStopCommand runs svc's stop_command, when it has one, as a helper in
// the service's directory and environment (env, then the service's own),
// bounded by its stop_timeout; nil when it exited 0 or there is none.
func runStopCommand(ctx context.Context, p *Project, drv cgroup.Driver, svc *Service, env []string) error {
	if svc.StopCommand == "" {
		return nil
	}
	h := serviceHelper(p, drv, svc, helperStop, serviceEnv(env, svc))
	h.command = svc.StopCommand
	return h.runWithin(ctx, cmp.Or(svc.StopTimeout, defaultStopTimeout))
}

func names(groups []cgroup.Group) string {
	var s string
	for i, g := range groups {
		if i > 0 {
			s += ", "
		}
		s += g.Name()
	}
	return s
}
