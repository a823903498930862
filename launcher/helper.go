package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/internal/proc"
	"golang.org/x/sys/unix"
)

// A helper is a short command cgdev runs for a service but that is not the
// service: a readiness or liveness exec check, a stop_command. Each run
// gets a throwaway group of its own, named helperName(service, kind), with
// the project's markers, so that what it leaves behind (a `setsid sleep &`)
// is found by the driver like any group of the project, and by stop's
// sweep, even when the cgdev that ran it was SIGKILLed; and the group is
// emptied (SIGKILL) and removed when the command ends, however it ends.
//
// A helper group's name is SERVICE.KIND.PID.N: a '.' never appears in a
// service name (checkServiceName), so a helper group is never taken for a
// service (serviceGroups leaves it out), and the part before the first '.'
// names the service it belongs to (helperOwner), whose partial stop stops
// it too.

// Helper kinds, the second part of a helper group's name.
const (
	helperReady  = "ready"  // a readiness exec check
	helperHealth = "health" // a liveness exec check
	helperStop   = "stop"   // a stop_command
)

// helperSeq numbers the helper groups of this process.
var helperSeq atomic.Uint64

// helperName is the name of a new helper group of service.
func helperName(service, kind string) string {
	return fmt.Sprintf("%s.%s.%d.%d", service, kind, os.Getpid(), helperSeq.Add(1))
}

// helperOwner returns the service a helper group belongs to, and false for
// a group that is not a helper's.
func helperOwner(group string) (string, bool) {
	svc, _, ok := strings.Cut(group, ".")
	return svc, ok
}

// helperCreator returns the PID of the cgdev that made a helper group (the
// third part of its name), and false for a group that is not a helper's.
func helperCreator(group string) (int, bool) {
	parts := strings.Split(group, ".")
	if len(parts) != 4 {
		return 0, false
	}
	pid, err := strconv.Atoi(parts[2])
	return pid, err == nil && pid > 0
}

// collectStaleHelpers empties and removes the helper groups among groups
// whose cgdev is gone (a start or supervisor SIGKILLed mid-check leaves
// its check's group behind), saying so on out when they held processes.
// A group whose creator's PID names a live process is left alone, even if
// that PID has been recycled: stop takes it then.
func collectStaleHelpers(groups []cgroup.Group, out io.Writer) {
	for _, g := range groups {
		pid, ok := helperCreator(g.Name())
		if !ok || unix.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		left, _ := g.Procs()
		if err := emptyGroup(g); err != nil {
			fmt.Fprintf(out, "cgdev: warning: collecting %s, left by a cgdev that is gone: %v\n", g.Name(), err)
		} else if len(left) > 0 {
			fmt.Fprintf(out, "cgdev: %s: the cgdev that ran it (PID %d) is gone; killed %d process(es) it left\n", g.Name(), pid, len(left))
		}
	}
}

// helper is one command to run in a throwaway group.
type helper struct {
	drv     cgroup.Driver
	project string
	service string
	kind    string   // helperReady, helperHealth or helperStop
	command string   // run with /bin/sh -c
	dir     string   // working directory
	env     []string // environment; cgdev's markers in it are replaced by the helper group's
}

// helperWaitDelay is how long a helper's output is read after it exited.
const helperWaitDelay = 200 * time.Millisecond

// serviceHelper is the helper of kind for svc, in its directory with env,
// its command still to be set.
func serviceHelper(p *Project, drv cgroup.Driver, svc *Service, kind string, env []string) helper {
	return helper{drv: drv, project: p.ID, service: svc.Name, kind: kind, dir: svc.Dir, env: env}
}

// helperTail is how much of a helper's output an error quotes.
const helperTail = 2 << 10

// run runs the command in a group of its own until it exits or ctx ends,
// then kills whatever is left in the group, waits for it to empty and
// removes it. It returns nil when the command exited 0, else an error that
// quotes the end of its output. A ctx that ends first returns ctx's error.
func (h helper) run(ctx context.Context) error {
	tail := &tailBuffer{max: helperTail}
	cmd := exec.Command("/bin/sh", "-c", h.command)
	cmd.Dir, cmd.Env = h.dir, proc.StripMarkers(h.env)
	cmd.Stdout, cmd.Stderr = tail, tail
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// A process it left in the background holds the output pipe open until
	// the group is emptied, which comes after Wait: Wait stops waiting for
	// the output that long after the command exited.
	cmd.WaitDelay = helperWaitDelay
	spec := cgroup.Spec{Project: h.project, Name: helperName(h.service, h.kind),
		Description: fmt.Sprintf("cgdev %s command of service %s", h.kind, h.service)}
	g, err := h.drv.Start(ctx, spec, cmd)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("could not start %q: %w", h.command, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	interrupted := false
	select {
	case err = <-done:
		if errors.Is(err, exec.ErrWaitDelay) {
			err = nil // it exited 0; a leftover held its output
		}
	case <-ctx.Done():
		interrupted = true
	}
	kerr := emptyGroup(g)
	if interrupted {
		<-done
		return errors.Join(ctx.Err(), kerr)
	}
	if err != nil {
		err = fmt.Errorf("%q: %v%s", h.command, describeExit(err), tail.quote())
	}
	if kerr != nil {
		err = errors.Join(err, fmt.Errorf("emptying the group of %q: %w", h.command, kerr))
	}
	return err
}

// emptyGroup kills whatever is in a helper's group (what the command left,
// a background process or a daemon; the command itself when it was
// interrupted), waits for it to empty and removes it. Remove comes first:
// it removes a group that is empty, and leaves one that is not (the
// contract of every driver); without a cgroup each look at a group is a
// scan of /proc, and most checks leave nothing.
func emptyGroup(g cgroup.Group) error {
	if err := g.Remove(); err == nil {
		return nil
	}
	_, err := cleanup.StopGroup(context.Background(), g, unix.SIGKILL, 0)
	return err
}

// runWithin is run bounded by timeout, saying so when it is what ended it.
func (h helper) runWithin(ctx context.Context, timeout time.Duration) error {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := h.run(tctx)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("%q: still running after %s: killed", h.command, timeout)
	}
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// quote is ": <last output>" for an error, or "" when there was none.
func (t *tailBuffer) quote() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return ""
	}
	return ": " + s
}
