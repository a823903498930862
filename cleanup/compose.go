package cleanup

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// composeTimeout bounds phase 4 as a whole: `down` waits up to each
// container's stop timeout (10 s by default, containers in parallel), so two
// minutes is ample for a healthy engine; a hung one must not hang the stop
// (which holds the project lock) forever.
const composeTimeout = 2 * time.Minute

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
	c, ok := findCompose(ctx)
	if !ok {
		r.phase(4, "containers: SKIPPED, neither `docker compose` (the Compose v2 plugin) nor `docker-compose` is installed; compose.file %s not brought down", file)
		return nil
	}
	if docker, err := exec.LookPath("docker"); err == nil {
		if err := engineReachable(ctx, docker); err != nil {
			r.phase(4, "containers: SKIPPED, the Docker engine is not reachable (%v); compose.file %s not brought down", err, file)
			return nil
		}
	}
	args := append(append([]string{}, c.argv[1:]...), "-f", file, "down")
	r.phase(4, "containers: %s -f %s down", c.name, file)
	cmd := exec.CommandContext(ctx, c.argv[0], args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, r.out, r.out
	cmd.WaitDelay = 5 * time.Second // a child of compose may hold our output open
	err := cmd.Run()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		r.detail("GAVE UP after %s: %s -f %s down did not finish (is the Docker engine hung?); its containers may still run", timeout, c.name, file)
		return fmt.Errorf("containers: %s -f %s down did not finish within %s", c.name, file, timeout)
	case err != nil:
		return fmt.Errorf("containers: %s -f %s down: %v", c.name, file, err)
	}
	return nil
}

// findCompose returns the Compose to use: the docker CLI's compose plugin
// when `docker compose version` answers, else docker-compose on $PATH.
func findCompose(ctx context.Context) (compose, bool) {
	if docker, err := exec.LookPath("docker"); err == nil {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		if exec.CommandContext(pctx, docker, "compose", "version").Run() == nil {
			return compose{argv: []string{docker, "compose"}, name: "docker compose"}, true
		}
	}
	if dc, err := exec.LookPath("docker-compose"); err == nil {
		return compose{argv: []string{dc}, name: "docker-compose"}, true
	}
	return compose{}, false
}

// engineReachable asks the engine for its version, with a short timeout.
func engineReachable(ctx context.Context, docker string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, docker, "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg == "" {
			msg = err.Error()
		}
		return errors.New(msg)
	}
	return nil
}
