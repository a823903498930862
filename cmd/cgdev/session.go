package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/safefile"
	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// session is an opened project with its driver: what every service command needs.
type session struct {
	project *launcher.Project
	host    *cgroup.Host
	driver  cgroup.Driver
}

// needs says what a service command requires of the project it finds.
type needs int

const (
	anyProject  needs = iota // stop, status, ps: a .cgdev/ whose config is gone will do
	projectFile              // start, restart, up, logs: the services must be configured
)

// openSession finds and loads the project (openProject) and opens its
// driver (openDriver).
func openSession(g *globals, need needs) (*session, error) {
	p, err := openProject(g, need)
	if err != nil {
		return nil, err
	}
	return openDriver(g, p)
}

// openProject finds and loads the project: launcher.OpenProject's -f, else
// the nearest cgdev.yaml, Procfile or .cgdev/ from the working directory up.
func openProject(g *globals, need needs) (*launcher.Project, error) {
	p, err := launcher.OpenProjectWith(g.file, g.load)
	if err != nil && need == anyProject {
		// stop, status and ps work by the project's id: a file that
		// cannot be loaded must not keep what runs from being stopped.
		if q, qerr := launcher.OpenProjectDir(g.file); qerr == nil {
			fmt.Fprintf(g.stderr, "cgdev: warning: %v\ncgdev: warning: going on by the project directory %s alone: its services as the kernel has them, the default grace and stop signal\n", err, q.Dir)
			p, err = q, nil
		}
	}
	if err != nil {
		return nil, err
	}
	p.SetWarnings(g.stderr)
	if p.NoConfig && need == projectFile {
		return nil, fmt.Errorf("the project in %s has no cgdev.yaml or Procfile any more (only its .cgdev/ state): stop, status and ps still work there", p.Dir)
	}
	return p, nil
}

// openDriver opens p's driver: --driver, else $CGDEV_DRIVER, else the
// config's driver:, else the one that started the running services
// (state.json), else the one holding live groups of the project (state
// lost), else auto.
func openDriver(g *globals, p *launcher.Project) (*session, error) {
	h, err := cgroup.Detect()
	if err != nil {
		return nil, err
	}
	configured := p.Config.Driver
	if configured == "" {
		if st, err := p.LoadState(); err == nil && st.Driver != "" {
			configured = st.Driver
		}
	}
	drv, err := launcher.DriverForProject(launcher.DriverName(g.driver, configured), p.ID, h)
	if err != nil {
		return nil, err
	}
	return &session{project: p, host: h, driver: drv}, nil
}

// close releases the driver (systemd's connection to the manager).
func (s *session) close() { s.driver.Close() }

// openLocked takes the project's lock, so that commands that change what
// runs never interleave, and then opens the driver; the function it returns
// closes the driver and releases the lock. The driver is chosen
// under the lock, since a concurrent start could otherwise be creating the
// groups the choice looks for (a second start saw a first one's service
// through the fallback driver's scan, not yet through the direct driver's
// listing, and recorded the fallback driver).
func openLocked(g *globals, need needs) (*session, func(), error) {
	p, err := openProject(g, need)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := g.lock(p)
	if err != nil && need == anyProject && (safefile.IsNotOurs(err) || errors.Is(err, unix.EROFS)) {
		// stop needs no file of cgdev's: it goes on from the kernel alone.
		fmt.Fprintf(g.stderr, "cgdev: warning: %v; going on without the project lock\n", err)
		unlock, err = func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	s, err := openDriver(g, p)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return s, func() { s.close(); unlock() }, nil
}

// lockPatience is how long a command waits on the project lock before it
// says whose lock it is.
const lockPatience = time.Second

// lock takes p's lock as a user can wait for it: after lockPatience without
// it, it says once on stderr who holds it; SIGINT, SIGTERM or SIGHUP end the
// wait at once, the lock not taken and nothing changed (exit 128+n).
func (g *globals) lock(p *launcher.Project) (unlock func(), err error) {
	ctx, cancel := interruptible()
	defer cancel()
	heldBy := ""
	unlock, err = p.LockWait(ctx, lockPatience, func(h *launcher.LockHolder) {
		heldBy = ", held by a process that did not say who it is"
		if h != nil {
			heldBy = ", held by " + h.String()
		}
		fmt.Fprintf(g.stderr, "cgdev: waiting for the project lock%s; Ctrl-C gives up\n", heldBy)
	})
	var caught caughtSignal
	if errors.As(err, &caught) {
		return nil, &exitError{code: caught.exitCode(), msg: fmt.Sprintf("%v while waiting for the project lock%s: gave up, nothing was changed", caught, heldBy)}
	}
	return unlock, err
}

// checkNames refuses, as a usage error, a service name that is not in the
// config (nor, with running, the name of a group still running: a service
// removed from the config while it ran).
func (s *session) checkNames(names []string, running bool) error {
	var drv cgroup.Driver
	if running {
		drv = s.driver
	}
	if err := s.project.CheckNames(drv, names); err != nil {
		return usageError("%v", err)
	}
	return nil
}

// completeServices completes service names from the project's config (as
// -C and -f on the line find it), leaving out those already given.
func (g *globals) completeServices(_ *cobra.Command, args []string, word string) ([]string, cobra.ShellCompDirective) {
	if g.enterDir() != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	p, err := launcher.OpenProject(g.file)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, n := range p.Config.Names() {
		if strings.HasPrefix(n, word) && !slices.Contains(args, n) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeDrivers completes --driver.
func completeDrivers(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return launcher.DriverNames(), cobra.ShellCompDirectiveNoFileComp
}
