package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// session is an opened project with its driver: what every service command needs.
type session struct {
	project *launcher.Project
	host    *cgroup.Host
	driver  cgroup.Driver
}

// addFileFlag adds -f/--file to a service command's flags.
func addFileFlag(fs *pflag.FlagSet) *string {
	return fs.StringP("file", "f", "", "project file (default: ./cgdev.yaml, else ./Procfile)")
}

// openSession loads the project file and opens the driver: --driver, else
// $CGDEV_DRIVER, else the config's driver:, else the one that started the
// running services (state.json), else the one holding live groups of the
// project (state lost), else auto.
func openSession(g *globals, file string) (*session, error) {
	p, err := launcher.OpenProject(file)
	if err != nil {
		return nil, err
	}
	return openDriver(g, p)
}

// openDriver opens p's driver, as openSession says.
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

// openLocked takes the project's lock, so that commands that change what
// runs never interleave, and then opens the session: the driver is chosen
// under the lock, since a concurrent start could otherwise be creating the
// groups the choice looks for (a second start saw a first one's service
// through the fallback driver's scan, not yet through the direct driver's
// listing, and recorded the fallback driver).
func openLocked(g *globals, file string) (*session, func(), error) {
	p, err := launcher.OpenProject(file)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := p.Lock()
	if err != nil {
		return nil, nil, err
	}
	s, err := openDriver(g, p)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return s, unlock, nil
}

// interruptible returns a context cancelled by SIGINT, SIGTERM or SIGHUP.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM, unix.SIGHUP)
}

func startCmd(g *globals, args []string) error {
	fs := newFlagSet(g, "start")
	file := addFileFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, unlock, err := openLocked(g, *file)
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := interruptible()
	defer cancel()
	if _, err := launcher.Start(ctx, s.project, s.driver, fs.Args(), launcher.StartOptions{Driver: s.driver.Name(), Out: g.stdout}); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	return nil
}
