package main

import (
	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
)

func startCommand(g *globals) *cobra.Command {
	var opt launcher.StartOptions
	c := &cobra.Command{
		Use:   "start [SVC...] [-e FILE] [-p PORT] [--ignore-unsupported]",
		Short: "start the project's services (or those named, with what they depend on) and wait until they are ready",
		Long: `Start the named services and what they depend on (all without names), each in a
group of its own as soon as its dependencies are ready, and wait for their
readiness checks. A service that already runs is left as it is. A service that
exits before it is ready, or misses its readiness timeout, is removed with
everything it spawned and its log tail shown; start then exits 1.

Nothing of cgdev stays resident, unless a service has restart:, healthcheck:
or watch:: then the project's supervisor (a process in a group of its own,
listed by status) starts the services as their parent and watches them; start
prints its progress as usual and exits. After the supervisor was killed,
start resumes supervision.

A limit the machine cannot enforce (memory_max on a hybrid cgroup host, say) is
refused before anything starts; --ignore-unsupported starts the services
without such limits instead, after a warning that names them.`,
		ValidArgsFunction: g.completeServices,
		RunE: func(_ *cobra.Command, args []string) error {
			opt.Out = g.stdout
			return startCmd(g, args, opt)
		},
	}
	addIgnoreUnsupported(c, &opt.IgnoreUnsupported)
	addProcfileFlags(c, g)
	return c
}

// addProcfileFlags adds foreman's -e/--env and -p/--port to a command that
// starts services.
func addProcfileFlags(c *cobra.Command, g *globals) {
	c.Flags().StringSliceVarP(&g.load.EnvFiles, "env", "e", nil, "read `FILE` (KEY=VALUE lines) into every service's environment; repeat or separate with commas (a Procfile's or process-compose.yaml's default .env is then not read)")
	c.Flags().IntVarP(&g.load.Port, "port", "p", 0, "a Procfile's base `PORT`: its first process type gets PORT=N, the next N+100, ... (default: PORT from .env, else $PORT, else 5000)")
	c.PreRunE = func(*cobra.Command, []string) error {
		if c.Flags().Changed("port") && (g.load.Port < 1 || g.load.Port > 65535) {
			return usageError("-p/--port %d: a port is 1 to 65535", g.load.Port)
		}
		return nil
	}
}

// addIgnoreUnsupported adds --ignore-unsupported to a command that starts services.
func addIgnoreUnsupported(c *cobra.Command, ignore *bool) {
	c.Flags().BoolVar(ignore, "ignore-unsupported", false, "start services without the limits this machine cannot enforce (with a warning) instead of refusing")
}

func startCmd(g *globals, names []string, opt launcher.StartOptions) error {
	s, unlock, err := openLocked(g, projectFile)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.checkNames(names, false); err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	opt.Driver = s.driver.Name()
	if _, err := launcher.StartServices(ctx, s.project, s.driver, names, false, opt); err != nil {
		return &exitError{code: exitFailure, msg: err.Error()}
	}
	return nil
}
