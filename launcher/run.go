package launcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/internal/human"
	"golang.org/x/sys/unix"
)

// RunOptions configure Run.
type RunOptions struct {
	Name              string        // group name; default: the command's base name
	Limits            cgroup.Limits // resource limits
	IgnoreUnsupported bool          // run without limits the driver cannot enforce, with a warning
	Grace             time.Duration // how long leftovers get between SIGTERM and SIGKILL
	Stdin             *os.File
	Stdout, Stderr    *os.File
	Log               io.Writer // where cgdev's own messages go
	// Services, when set, are what the run's watcher stops after it has
	// killed the run, should cgdev be killed while the command runs (run
	// --with: the services this run started).
	Services *RunServices
}

// RunServices are services of the project in Dir (config file Config) that
// a run started.
type RunServices struct {
	Dir, Config string
	Names       []string
}

// Run runs args in a new group, in the foreground, the way `systemd-run
// --scope` does: stdio and the terminal pass through, INT, TERM, HUP and QUIT
// are forwarded, and once the command exits whatever it left in its group is
// stopped. It returns how the command ended.
func Run(ctx context.Context, drv cgroup.Driver, args []string, opt RunOptions) (Exit, error) {
	path, limits, err := prepareRun(drv, args, opt.Limits, opt.IgnoreUnsupported, opt.Log)
	if err != nil {
		return Exit{}, err
	}
	name, claim, err := claimRunName(opt.Name, args[0])
	if err != nil {
		return Exit{}, err
	}
	defer claim.release()
	if err := CollectRuns(drv, opt.Log); err != nil {
		fmt.Fprintf(opt.Log, "cgdev: warning: collecting stale runs: %v\n", err)
	}
	watcher, err := startRunWatcher(drv.Name(), name, opt.Stderr, opt.Services)
	if err != nil {
		return Exit{}, err
	}
	defer watcher.stop()
	cmd := exec.Command(path, args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opt.Stdin, opt.Stdout, opt.Stderr
	term := takeTerminal(cmd, opt.Stdin, opt.Stdout, opt.Stderr)

	signals := catchRunSignals(opt.Log)
	defer signals.release()

	spec := cgroup.Spec{Name: name, Description: "cgdev run " + args[0], Limits: limits}
	g, err := drv.Start(ctx, spec, cmd)
	if err != nil {
		term.restore()
		return Exit{}, err
	}
	markOwned(g)
	memory := cgroup.WatchMemory(g.Path()) // the peak and OOM kills, should the group vanish
	exited := make(chan struct{})
	signals.start(cmd.Process, exited)
	werr := term.wait(cmd)
	close(exited)
	term.restore()
	exit := exitOf(cmd.ProcessState, werr)
	reportOOM(g, limits, memory, opt.Log)
	reap(g, opt, signals.hurry)
	return exit, nil
}

// CheckRun returns the error Run would return before starting anything: no
// command, a command not found, a limit drv cannot enforce (unless
// opt.IgnoreUnsupported). run --with checks before it starts services.
func CheckRun(drv cgroup.Driver, args []string, opt RunOptions) error {
	_, _, err := prepareRun(drv, args, opt.Limits, opt.IgnoreUnsupported, io.Discard)
	return err
}

// prepareRun finds the command in $PATH and returns the limits to apply
// (enforceable).
func prepareRun(drv cgroup.Driver, args []string, l cgroup.Limits, ignore bool, log io.Writer) (string, cgroup.Limits, error) {
	if len(args) == 0 {
		return "", l, errors.New("no command given (usage: cgdev run [OPTIONS] -- CMD [ARGS...])")
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return "", l, fmt.Errorf("command %q: %w", args[0], unwrapExecErr(err))
	}
	limits, err := enforceable(drv, l, ignore, "running the command", log)
	return path, limits, err
}

// enforceable returns the limits to apply: all of l, or with ignore, those
// the driver can enforce, after a warning to log that says what goes
// without which ("running the command WITHOUT [MemoryMax]"). Without
// ignore, a limit the driver cannot enforce is an error that names the flag
// that would go on without it.
func enforceable(drv cgroup.Driver, l cgroup.Limits, ignore bool, what string, log io.Writer) (cgroup.Limits, error) {
	err := drv.Check(&l)
	var unsupported *cgroup.UnsupportedError
	if err == nil || !errors.As(err, &unsupported) || !ignore {
		if unsupported != nil {
			err = fmt.Errorf("%w\n(--ignore-unsupported goes on without these limits)", err)
		}
		return l, err
	}
	fmt.Fprintf(log, "cgdev: warning: %s WITHOUT %v, as --ignore-unsupported asks:\n%v\n", what, unsupported.Properties(), err)
	return l.Without(unsupported.Properties()...), nil
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// claimRunName returns a name for the run (runName) that this process holds
// (claimRun): no other run has it, and none can take it while it runs.
func claimRunName(name, command string) (string, *runClaim, error) {
	for range 10 {
		n, err := runName(name, command)
		if err != nil {
			return "", nil, err
		}
		claim, err := claimRun(n)
		if err != nil {
			return "", nil, err
		}
		if claim != nil {
			claim.serve()
			return n, claim, nil
		}
	}
	return "", nil, errors.New("no free run name after 10 tries")
}

// runName returns name (validated), or the command's base name, plus a random
// suffix so that concurrent runs of one command get distinct groups.
func runName(name, command string) (string, error) {
	if name == "" {
		name = unsafeChars.ReplaceAllString(filepath.Base(command), "_")
	} else if unsafeChars.MatchString(name) {
		return "", fmt.Errorf("--name %q: use letters, digits, '-', '_' and '.'", name)
	}
	var b [3]byte
	rand.Read(b[:])
	if len(name) > 60 {
		name = name[:60]
	}
	return name + "-" + hex.EncodeToString(b[:]), nil
}

func unwrapExecErr(err error) error {
	if errors.Is(err, exec.ErrNotFound) {
		return errors.New("not found in $PATH")
	}
	var e *exec.Error
	if errors.As(err, &e) {
		return e.Err
	}
	return err
}

// runSignals are the signals cgdev catches during a run. While the command
// runs, each is relayed to its main process, as systemd-run --scope does by
// being that process. Once it has exited they hurry the reaping, as a
// second signal hurries a stop: the first signal cgdev receives is noted,
// the second (counting those relayed) closes hurry, which ends the grace
// of the leftovers (they are killed at once); later ones are ignored.
type runSignals struct {
	ch       chan os.Signal
	done     chan struct{} // closed by release
	ended    chan struct{} // closed when relay returns
	hurry    chan struct{}
	log      io.Writer
	relaying bool // relay started
}

func catchRunSignals(log io.Writer) *runSignals {
	s := &runSignals{ch: make(chan os.Signal, 4), done: make(chan struct{}), ended: make(chan struct{}), hurry: make(chan struct{}), log: log}
	signal.Notify(s.ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	return s
}

// start relays the signals to p until exited is closed, then lets them
// hurry the reaping, until release.
func (s *runSignals) start(p *os.Process, exited <-chan struct{}) {
	s.relaying = true
	go s.relay(p, exited)
}

func (s *runSignals) relay(p *os.Process, exited <-chan struct{}) {
	defer close(s.ended)
	count, reaping, hurried := 0, false, false
	for {
		select {
		case sig := <-s.ch:
			count++
			if !reaping {
				p.Signal(sig)
			} else if count == 1 {
				fmt.Fprintln(s.log, "cgdev: reaping the run's leftovers; press Ctrl-C again to force")
			}
		case <-exited:
			reaping, exited = true, nil
		case <-s.done:
			return
		}
		if reaping && count >= 2 && !hurried {
			hurried = true
			fmt.Fprintln(s.log, "cgdev: forcing: the run's leftovers are killed now")
			close(s.hurry)
		}
	}
}

// release stops catching the signals.
func (s *runSignals) release() {
	signal.Stop(s.ch)
	close(s.done)
	if s.relaying {
		<-s.ended
	}
}

// Exit is how a command ended.
type Exit struct {
	Code   int            // its exit status, or 128+N when killed by signal N
	Signal syscall.Signal // the signal that killed it, or 0
}

func exitOf(ps *os.ProcessState, err error) Exit {
	if ps == nil {
		return Exit{Code: 1}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Exit{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return Exit{Code: ps.ExitCode()}
}

// reportOOM says plainly when the kernel's OOM killer struck inside the
// group. (When it killed the main process, the status is already 137.)
// The watch supplies what the group itself may no longer tell: a systemd
// scope's cgroup can be gone by now.
func reportOOM(g cgroup.Group, l cgroup.Limits, w *cgroup.MemoryWatch, log io.Writer) {
	peak, kills := w.Stop()
	st, err := g.Stats()
	if err != nil {
		return
	}
	st.OOMKills, st.MemoryPeak = max(st.OOMKills, kills), max(st.MemoryPeak, peak)
	if st.OOMKills == 0 {
		return
	}
	limit := "the memory limit"
	if v, ok := l.Get("MemoryMax"); ok {
		limit = "MemoryMax=" + v
	}
	fmt.Fprintf(log, "cgdev: OOM: the kernel killed %d process(es) of this run for exceeding %s (peak memory %s)\n",
		st.OOMKills, limit, cgroup.HumanBytes(st.MemoryPeak))
}

// reap stops whatever the command left in its group and removes the group.
// hurry, once closed, ends the grace: what is left is killed at once.
func reap(g cgroup.Group, opt RunOptions, hurry <-chan struct{}) {
	left, _ := g.Procs()
	if len(left) == 0 {
		if err := g.Remove(); err != nil {
			fmt.Fprintf(opt.Log, "cgdev: cleaning up run %s: %v\n", g.Name(), err)
		}
		return
	}
	ctx, cancel := cleanup.HurryContext(context.Background(), hurry)
	defer cancel()
	res, err := cleanup.StopGroup(ctx, g, unix.SIGTERM, opt.Grace)
	if err != nil {
		fmt.Fprintf(opt.Log, "cgdev: cleaning up run %s: %v\n", g.Name(), err)
	}
	how := "on SIGTERM"
	switch {
	case res.Forced && ctx.Err() != nil && res.Took < opt.Grace:
		how = "with SIGKILL, forced by a second signal"
	case res.Forced:
		how = fmt.Sprintf("with SIGKILL after the %s grace period", opt.Grace)
	}
	fmt.Fprintf(opt.Log, "cgdev: reaped %d leftover process(es) %s in %s\n", len(left), how, human.Duration(res.Took))
}
