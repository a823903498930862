package cleanup

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// defaultComposeTimeout bounds phase 4 as a whole unless compose.timeout
// says otherwise: `down` waits up to each container's stop timeout (10 s by
// default, containers in parallel), so two minutes is ample for a healthy
// engine; a hung one must not hang the stop (which holds the project lock)
// forever.
const defaultComposeTimeout = 2 * time.Minute

// composeTimeout is the bound of phase 4: ComposeTimeout, or the default.
func (opt StopOptions) composeTimeout() time.Duration {
	if opt.ComposeTimeout > 0 {
		return opt.ComposeTimeout
	}
	return defaultComposeTimeout
}

// errHung is a docker command that did not answer within its bound.
var errHung = errors.New("did not answer")

// probeTimeout bounds each question to the docker CLI before the down.
const probeTimeout = 10 * time.Second

// compose is a way to run Docker Compose.
type compose struct {
	argv []string // the command before its arguments: docker compose, or docker-compose
	name string   // how the report names it
}

// composeDown is phase 4: it brings the containers of the compose file down
// with whichever Compose is installed (the v2 plugin, `docker compose`, else
// the standalone `docker-compose`, v1 or v2), and gives up after timeout. It
// returns an error when the containers may still run; a machine without
// Compose or without a reachable engine is reported and skipped.
func composeDown(ctx context.Context, file, dir string, timeout time.Duration, r *reporter) error {
	if file == "" {
		r.phase(4, "containers: no compose.file configured, nothing to do")
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	gaveUp := func(after time.Duration, what string) error {
		r.detail("GAVE UP after %s: %s did not finish (is the Docker engine hung?); compose.file %s not brought down, its containers may still run", after, what, file)
		return fmt.Errorf("containers: %s did not finish within %s", what, after)
	}
	probeBound := min(probeTimeout, timeout)
	c, err := findCompose(ctx)
	switch {
	case errors.Is(err, errHung):
		r.phase(4, "containers: %v", err)
		return gaveUp(probeBound, "`docker compose version`")
	case err != nil:
		r.phase(4, "containers: SKIPPED, neither `docker compose` (the Compose v2 plugin) nor `docker-compose` is installed; compose.file %s not brought down", file)
		return nil
	}
	if docker, err := exec.LookPath("docker"); err == nil {
		err := engineReachable(ctx, docker)
		switch {
		case errors.Is(err, errHung):
			r.phase(4, "containers: %v", err)
			return gaveUp(probeBound, "`docker version`")
		case err != nil:
			r.phase(4, "containers: SKIPPED, the Docker engine is not reachable (%v); compose.file %s not brought down", err, file)
			return nil
		}
	}
	args := append(append([]string{}, c.argv[1:]...), "-f", file, "down")
	r.phase(4, "containers: %s -f %s down", c.name, file)
	cmd := dockerCommand(ctx, c.argv[0], args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, r.out, r.out
	err = cmd.Run()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return gaveUp(timeout, fmt.Sprintf("%s -f %s down", c.name, file))
	case err != nil:
		return fmt.Errorf("containers: %s -f %s down: %v", c.name, file, err)
	}
	return nil
}

// dockerCommand is exec.CommandContext in a process group of its own, the
// whole group killed when ctx ends: a hung CLI's children (compose plugin,
// a wrapper script's sleep) go with it rather than outlive the stop.
func dockerCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second // a child that left the group may hold our output open
	return cmd
}

// probe runs a docker question with probeTimeout (or less, ctx's end); a
// question that does not answer in time is errHung.
func probe(ctx context.Context, name string, args ...string) ([]byte, error) {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	out, err := dockerCommand(pctx, name, args...).CombinedOutput()
	if errors.Is(pctx.Err(), context.DeadlineExceeded) {
		return out, fmt.Errorf("`%s %s` %w", filepath.Base(name), strings.Join(args, " "), errHung)
	}
	return out, err
}

// findCompose returns the Compose to use: the docker CLI's compose plugin
// when `docker compose version` answers, else docker-compose on $PATH. Its
// error is errHung when docker did not answer, else none is installed.
func findCompose(ctx context.Context) (compose, error) {
	if docker, err := exec.LookPath("docker"); err == nil {
		_, err := probe(ctx, docker, "compose", "version")
		if err == nil {
			return compose{argv: []string{docker, "compose"}, name: "docker compose"}, nil
		}
		if errors.Is(err, errHung) {
			return compose{}, err
		}
	}
	if dc, err := exec.LookPath("docker-compose"); err == nil {
		return compose{argv: []string{dc}, name: "docker-compose"}, nil
	}
	return compose{}, errors.New("no Compose installed")
}

// engineReachable asks the engine for its version, with a short timeout;
// errHung when it does not answer.
func engineReachable(ctx context.Context, docker string) error {
	out, err := probe(ctx, docker, "version", "--format", "{{.Server.Version}}")
	if err != nil && !errors.Is(err, errHung) {
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg == "" {
			msg = err.Error()
		}
		return errors.New(msg)
	}
	return err
}
