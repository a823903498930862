package launcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/internal/human"
	"github.com/cgdev/cgdev/internal/proc"
	"golang.org/x/sys/unix"
)

// settle is how long a service without a readiness check must keep running
// to count as started: long enough to catch a typo'd command or a port
// already taken, short enough not to be noticed.
const settle = 300 * time.Millisecond

// logTailLines is how much of a failed service's log start shows.
const logTailLines = 20

// StartOptions configure Start.
type StartOptions struct {
	Driver string // the driver's name, recorded in state.json
	// IgnoreUnsupported starts services without the limits the driver
	// cannot enforce (with a warning each) instead of refusing to start.
	IgnoreUnsupported bool
	Out               io.Writer // progress lines and the summary
	// Env is the environment services start with (before their env_file
	// and env); nil means cgdev's own.
	Env []string

	// onStart, when set, is told of each service started, with the
	// instance to watch (the supervisor's hook), once all are started and
	// the daemonizing ones known (noteDaemonized).
	onStart func(inst *instance)
}

// StartResult is what happened to one service.
type StartResult struct {
	Name   string
	PID    int
	Cgroup string
	State  string // ready, running (no check), completed (a oneshot), already running, already completed, failed, skipped
	Took   time.Duration
	Err    error
	// LogFrom is where this start's output begins in the service's log.
	LogFrom int64 `json:"log_from,omitempty"`
}

// Start starts the named services (all when names is empty) and what they
// depend on, each in a group of its own, each once its dependencies are ready
// (independent services start concurrently). It waits for every readiness
// check, records what runs in state.json and .pids/, prints a summary and
// returns; nothing of cgdev stays resident. A service that exits early or
// misses its readiness timeout has its group killed and removed, and its log
// tail printed; the error then names every service that failed. The caller
// holds the project lock.
func Start(ctx context.Context, p *Project, drv cgroup.Driver, names []string, opt StartOptions) ([]StartResult, error) {
	services, err := p.Config.Closure(names)
	if err != nil {
		return nil, err
	}
	for _, s := range services {
		what := "starting " + s.Name
		if s.Limits, err = enforceable(drv, s.Limits, opt.IgnoreUnsupported, what, opt.Out); err != nil {
			return nil, fmt.Errorf("service %s (%s:%d): %w", s.Name, p.Config.File, s.Line, err)
		}
	}
	st, _ := p.LoadState() // an unusable state.json is a warning (printed by LoadState): the kernel knows
	groups, err := drv.Groups(p.ID)
	if err != nil {
		return nil, err
	}
	collectStaleHelpers(groups, opt.Out)
	running := liveOf(groups)
	if err := checkPortsFree(p.Config, services, running); err != nil {
		return nil, err
	}
	if opt.Env == nil {
		opt.Env = os.Environ()
	}
	var stale []string
	for name, rec := range st.Services {
		switch {
		case running[name] == nil:
			stale = append(stale, name) // stopped or crashed since: the kernel knows best
		case !rec.Identity().Alive():
			// Its group runs on (a daemonizing command) but the recorded main
			// process is gone: its PID may name another process by now, and
			// must not be written to .pids/ again for scripts to signal.
			stale = append(stale, name)
		case !holds(running[name], rec.PID):
			// The recorded main process lives, but outside the service's
			// group (state.json edited, or a PID recycled within a clock
			// tick): the group is the truth, and a process outside it is
			// not the service's to list in .pids/.
			stale = append(stale, name)
		}
	}
	for _, name := range stale {
		delete(st.Services, name) // nor shown as its PID when already running
	}
	adopted := p.adoptUnrecorded(running, st)
	s := &starter{p: p, drv: drv, out: &syncWriter{w: opt.Out}, total: len(services), running: running, state: st,
		env: opt.Env, named: names,
		done: map[string]chan struct{}{}, launched: map[string]*latch{}, results: map[string]*StartResult{}, started: map[string]*ServiceState{}}
	results := s.startAll(ctx, services)
	s.noteDaemonized()
	if opt.onStart != nil {
		for _, inst := range s.insts {
			opt.onStart(inst)
		}
	}
	err = p.UpdateState(func(cur *State) {
		cur.Project, cur.Dir, cur.Driver = p.ID, p.Dir, drv.Name()
		for _, name := range stale {
			delete(cur.Services, name)
		}
		for name, rec := range adopted {
			if cur.Services[name] == nil { // a supervisor may have recorded it since
				cur.Services[name] = rec
			}
		}
		maps.Copy(cur.Services, s.started)
	})
	if err != nil {
		fmt.Fprintf(opt.Out, "cgdev: warning: recording state: %v\n", err)
	}
	printSummary(opt.Out, inConfigOrder(p.Config, results, func(r StartResult) string { return r.Name }))
	var failed []string
	for _, r := range results {
		if r.State == "failed" || r.State == "skipped" {
			failed = append(failed, r.Name)
		}
	}
	if len(failed) > 0 {
		return results, fmt.Errorf("%d of %d service(s) not started: %s", len(failed), len(results), strings.Join(failed, ", "))
	}
	return results, nil
}

// adoptUnrecorded records in st, for each running service that st does not
// describe (a start SIGKILLed before it wrote state.json, a state.json
// lost), its group's leader as its main process, marked Guessed, as status
// and the supervisor adopt it: the group is the truth, and a process of
// the group is the service's to show and to list in .pids/. It returns
// what it added, for this start to record.
func (p *Project) adoptUnrecorded(running map[string]cgroup.Group, st *State) map[string]*ServiceState {
	adopted := map[string]*ServiceState{}
	for name, g := range running {
		if st.Services[name] != nil {
			continue
		}
		if rec := guessMain(g); rec != nil {
			rec.Cgroup, rec.Log = g.Path(), p.LogFile(name)
			st.Services[name], adopted[name] = rec, rec
		}
	}
	return adopted
}

// holds says whether pid is a process of g (or of its sub-groups); false
// when g cannot be read.
func holds(g cgroup.Group, pid int) bool {
	pids, err := g.Procs()
	return err == nil && slices.Contains(pids, pid)
}

// liveGroups returns the project's groups that hold processes, by service
// name, and removes empty leftovers of services that died.
func liveGroups(drv cgroup.Driver, project string) (map[string]cgroup.Group, error) {
	groups, err := drv.Groups(project)
	if err != nil {
		return nil, err
	}
	return liveOf(groups), nil
}

// liveOf is liveGroups over the project's groups already listed.
func liveOf(groups []cgroup.Group) map[string]cgroup.Group {
	live := map[string]cgroup.Group{}
	for _, g := range serviceGroups(groups) {
		if pids, err := g.Procs(); err == nil && len(pids) > 0 {
			live[g.Name()] = g
		} else if err == nil {
			g.Remove()
		}
	}
	return live
}

// starter starts a set of services concurrently, in dependency order.
type starter struct {
	p       *Project
	drv     cgroup.Driver
	out     *syncWriter
	total   int
	running map[string]cgroup.Group
	state   *State // as read before starting: the recorded PIDs of what runs
	env     []string
	named   []string // the services asked for by name

	mu       sync.Mutex
	finished int
	done     map[string]chan struct{} // closed when the service is ready, completed, failed or skipped
	launched map[string]*latch        // fired when its process runs, or when it is done
	results  map[string]*StartResult
	started  map[string]*ServiceState
	insts    []*instance // those in started
}

// noteDaemonized marks as daemonized each service started whose main
// process has exited 0 by now, before this start records them: a main that
// exits 0 while start still waits (for other services, or in a loaded
// machine just after its settle period) is a daemonizing command, as one
// that exits within the settle period is. The decision is taken once the
// last service is ready, so it does not hinge on the scheduler's timing
// around the 300 ms mark. The supervisor is handed the instances after
// this, so that it too takes such a main's exit for a daemonizer's.
func (s *starter) noteDaemonized() {
	for _, inst := range s.insts {
		if !inst.rec.Daemonized && inst.main.exitedZero(inst.rec.Identity()) {
			inst.rec.Daemonized = true
		}
	}
}

func (s *starter) startAll(ctx context.Context, services []*Service) []StartResult {
	for _, svc := range services {
		s.done[svc.Name] = make(chan struct{})
		s.launched[svc.Name] = newLatch()
	}
	var wg sync.WaitGroup
	for _, svc := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(s.done[svc.Name])
			defer s.launched[svc.Name].fire()
			r := s.startWhenDepsReady(ctx, svc)
			s.mu.Lock()
			s.results[svc.Name] = &r
			s.finished++
			k := s.finished
			s.mu.Unlock()
			s.progress(k, r)
		}()
	}
	wg.Wait()
	out := make([]StartResult, len(services))
	for i, svc := range services {
		out[i] = *s.results[svc.Name]
	}
	return out
}

func (s *starter) result(name string) *StartResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.results[name]
}

func (s *starter) startWhenDepsReady(ctx context.Context, svc *Service) StartResult {
	r := StartResult{Name: svc.Name}
	for _, d := range svc.DependsOn {
		if err := s.waitFor(d, svc.Condition(d)); err != nil {
			r.State, r.Err = "skipped", fmt.Errorf("not started: it depends on %s, which %v", d, err)
			return r
		}
	}
	if err := ctx.Err(); err != nil {
		r.State, r.Err = "skipped", fmt.Errorf("not started: %w", err)
		return r
	}
	if svc.Oneshot() && s.running[svc.Name] == nil && !slices.Contains(s.named, svc.Name) {
		if rec := s.p.LoadRecord(svc.Name); completed(rec) {
			// Run once since the last stop: a start of what depends on
			// it does not run it again (cgdev start NAME or restart does).
			r.State, r.PID = "already completed", rec.Last.PID
			return r
		}
	}
	if g := s.running[svc.Name]; g != nil {
		r.State, r.Cgroup = "already running", g.Path()
		s.mu.Lock()
		if rec := s.state.Services[svc.Name]; rec != nil {
			r.PID = rec.PID
		}
		s.mu.Unlock()
		return r
	}
	inst, tail, err := s.launch(ctx, svc)
	if ctx.Err() == nil {
		s.p.recordStart(svc.Name, inst, err)
	}
	if err != nil {
		r.State, r.Err = "failed", err
		switch log := displayPath(s.p.LogFile(svc.Name)); {
		case tail != "":
			r.Err = fmt.Errorf("%w\n--- last lines of %s ---\n%s", err, log, tail)
		case inst == nil && !errors.Is(err, errNotStarted):
			r.Err = fmt.Errorf("%w (it wrote nothing to %s)", err, log)
		}
		return r
	}
	rec := inst.rec
	r.PID, r.Cgroup, r.Took, r.State, r.LogFrom = rec.PID, rec.Cgroup, time.Duration(rec.ReadyAfter), "running", inst.logFrom
	if svc.Oneshot() {
		r.State, r.Cgroup = "completed", "" // its group is gone: nothing of it runs
		return r
	}
	s.mu.Lock()
	s.started[svc.Name] = rec
	s.insts = append(s.insts, inst)
	s.mu.Unlock()
	if svc.Ready != nil {
		r.State = "ready"
	}
	return r
}

// waitFor waits until dependency dep meets cond, and says why it never will.
func (s *starter) waitFor(dep, cond string) error {
	if cond == CondStarted {
		s.launched[dep].wait()
	} else {
		<-s.done[dep]
	}
	r := s.result(dep)
	switch {
	case r == nil: // started, still on its way to ready
		return nil
	case r.State == "failed":
		first, _, _ := strings.Cut(r.Err.Error(), "\n")
		return fmt.Errorf("failed (%s)", first)
	case r.State == "skipped":
		return errors.New("was skipped")
	case cond == CondCompleted && r.State != "completed" && r.State != "already completed":
		return fmt.Errorf("is %s, not completed", r.State)
	}
	return nil
}

// launch starts svc (startService). A oneshot that fails is run again
// while its restart policy (on-failure) says so, at its delays, as a
// supervisor would restart a service.
func (s *starter) launch(ctx context.Context, svc *Service) (*instance, string, error) {
	launched := s.launched[svc.Name].fire
	var rec ServiceRecord
	for {
		inst, tail, err := startService(ctx, s.p, s.drv, svc, s.env, launched)
		if err == nil || !svc.Oneshot() || inst == nil || inst.ended == nil || ctx.Err() != nil {
			return inst, tail, err
		}
		d := svc.Restart.decide(&rec, inst.ended, time.Now())
		if !d.restart {
			if d.gaveUp != "" {
				err = fmt.Errorf("%w; gave up (%s)", err, d.gaveUp)
			}
			return inst, tail, err
		}
		s.out.printf("      %s: %s; running it again in %s (restart %d)\n", svc.Name, inst.ended, human.Duration(d.delay), rec.Restarts)
		select {
		case <-ctx.Done():
			return inst, tail, err
		case <-time.After(d.delay):
		}
	}
}

func (s *starter) progress(k int, r StartResult) {
	var what string
	switch r.State {
	case "ready":
		what = fmt.Sprintf("ready in %s", human.Duration(r.Took))
	case "completed":
		what = fmt.Sprintf("completed (exit 0) in %s", human.Duration(r.Took))
	case "already completed":
		what = "already completed since the last stop, not run again (cgdev start " + r.Name + " runs it again)"
	case "running":
		what = fmt.Sprintf("running (PID %d, no readiness check)", r.PID)
	case "already running":
		what = "already running, left as it is"
	default:
		what = fmt.Sprintf("%s: %v", strings.ToUpper(r.State), r.Err)
	}
	s.out.printf("[%d/%d] %s … %s\n", k, s.total, r.Name, what)
}

// startService starts one service, with env as the environment before its
// own, and waits until it is ready; a oneshot, until it has exited 0 (its
// group is then emptied and removed, and inst.ended says how it ended).
// launched, when set, is called once its process runs. On failure its
// group is killed and removed, and the tail of its log is returned with the
// instance that failed (nil when the driver could not start it), whose end
// says how.
func startService(ctx context.Context, p *Project, drv cgroup.Driver, svc *Service, env []string, launched func()) (*instance, string, error) {
	logPath, log := p.LogFile(svc.Name), p.serviceLog(svc.Name)
	logf, from, err := log.openForService(svc.Name)
	if err != nil {
		return nil, "", fmt.Errorf("%w: its log: %w", errNotStarted, err)
	}

	cmd := serviceCommand(svc)
	cmd.Dir, cmd.Env = svc.Dir, serviceEnv(env, svc)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A session of its own: PGID = PID (for .pids.groups), no controlling
	// terminal, so a Ctrl-C meant for the shell never reaches a service.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	spec := cgroup.Spec{Project: p.ID, Name: svc.Name, Description: fmt.Sprintf("cgdev service %s of %s", svc.Name, p.Dir), Limits: svc.Limits}
	started := time.Now()
	g, err := drv.Start(ctx, spec, cmd)
	logf.Close()
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", errNotStarted, err)
	}
	leader, _ := proc.ReadProc(cmd.Process.Pid)
	inst := &instance{svc: svc, group: g, env: env, logFrom: from, main: waitMain(cmd)}
	inst.before = oomStats(g)
	inst.rec = &ServiceState{PID: cmd.Process.Pid, StartTicks: leader.StartTicks, PGID: cmp.Or(leader.PGID, cmd.Process.Pid),
		Cgroup: g.Path(), Started: started, Log: logPath}

	if launched != nil {
		launched()
	}
	if svc.Oneshot() {
		if err := completeOneshot(ctx, inst, started); err != nil {
			return inst, log.tailText(logTailLines, from), err
		}
		return inst, "", nil
	}
	renv := readyEnv{exec: serviceHelper(p, drv, svc, helperReady, cmd.Env), log: log, logFrom: from, group: g, ownPorts: svc.Ports}
	daemonized, err := waitStarted(ctx, svc, g, inst.main, renv)
	if err != nil {
		if ctx.Err() != nil {
			err = errors.New("interrupted before it was ready")
		}
		inst.after = oomStats(g)   // before the group goes: the OOM count and the peak
		inst.ended = inst.end(err) // before the kill below, which would be taken for the end
		if pids, _ := g.Procs(); len(pids) > 0 {
			// It runs (not ready in time): what it started outside its
			// group goes too. One that exited is not told to stop what
			// may not be its own (a container of that name it could not
			// replace).
			if serr := runStopCommand(context.Background(), p, drv, svc, env); serr != nil {
				err = fmt.Errorf("%w (and its stop_command: %v)", err, serr)
			}
		}
		if _, kerr := cleanup.StopGroup(context.Background(), g, unix.SIGKILL, 0); kerr != nil {
			err = fmt.Errorf("%w (and cleaning up: %v)", err, kerr)
		}
		return inst, log.tailText(logTailLines, from), err
	}
	inst.rec.Daemonized = daemonized
	if svc.Ready != nil {
		inst.rec.ReadyAfter, inst.rec.Ready = Duration(time.Since(started)), svc.Ready.String()
	}
	return inst, "", nil
}

// completeOneshot waits for a oneshot's main process to exit, records how
// in inst.ended, and empties and removes its group: whatever it left running
// is stopped, so a oneshot leaves nothing behind. It fails unless the main
// process exited 0.
//
// Past its timeout (Service.Timeout, none when 0) it fails too: its group
// then gets the service's stop signal and grace before the kill, as a stop
// would give it (a migration may roll back).
func completeOneshot(ctx context.Context, inst *instance, started time.Time) error {
	var err error
	var timeout <-chan time.Time
	if inst.svc.Timeout > 0 {
		t := time.NewTimer(inst.svc.Timeout - time.Since(started))
		defer t.Stop()
		timeout = t.C
	}
	sig, grace := unix.SIGKILL, time.Duration(0)
	select {
	case <-inst.main.done:
		if inst.main.err != nil {
			err = fmt.Errorf("oneshot %s failed: %v", inst.svc.Name, describeExit(inst.main.err))
		}
	case <-ctx.Done():
		err = errors.New("interrupted before it completed")
	case <-timeout:
		err = fmt.Errorf("oneshot %s still running after its timeout of %s: stopped", inst.svc.Name, human.Duration(inst.svc.Timeout))
		sig, grace = inst.svc.StopSignal, inst.svc.Grace
	}
	inst.after = oomStats(inst.group)
	inst.ended = inst.end(err)
	inst.rec.ReadyAfter = Duration(time.Since(started))
	if _, kerr := cleanup.StopGroup(context.Background(), inst.group, sig, grace); kerr != nil {
		err = errors.Join(err, fmt.Errorf("emptying its group: %w", kerr))
	}
	return err
}

// completed says whether an exit record is that of a oneshot that
// completed: it ended with exit code 0.
func completed(rec *ServiceRecord) bool {
	return rec != nil && rec.Phase == phaseEnded && rec.Last != nil && rec.Last.Code != nil && *rec.Last.Code == 0 && rec.Last.Reason == ""
}

// latch is a one-time event many can wait for.
type latch struct {
	once sync.Once
	c    chan struct{}
}

func newLatch() *latch { return &latch{c: make(chan struct{})} }
func (s *latch) fire() { s.once.Do(func() { close(s.c) }) }
func (s *latch) wait() { <-s.c }

// errNotStarted marks a failure of the driver to start the command at all.
var errNotStarted = errors.New("could not start")

// serviceEnv is the caller's environment (base), then the service's
// env_file and env. The driver's Start adds the markers every descendant
// inherits, replacing any inherited ones.
func serviceEnv(base []string, svc *Service) []string {
	return append(append([]string(nil), base...), svc.Env...)
}

// waitStarted returns nil once svc is ready (or, without a check, has run for
// the settle period), and an error when it exits first, ctx ends or the check
// times out. A main process that exits 0 leaving processes behind (a
// daemonizing command) is fine, and reported as daemonized; an empty group
// or a non-zero exit is not.
func waitStarted(ctx context.Context, svc *Service, g cgroup.Group, m *mainProc, env readyEnv) (daemonized bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	empty := make(chan error, 1)
	go func() { empty <- g.WaitEmpty(ctx) }()
	ready := make(chan error, 1)
	if svc.Ready != nil {
		// An exec check runs in a helper group of its own, emptied and
		// removed when the check ends: waitStarted returns only after,
		// so that no helper group outlives an interrupted or failed start
		// (and keeps its project's group from being removed).
		checked := make(chan struct{})
		go func() { defer close(checked); ready <- svc.Ready.wait(ctx, env) }()
		defer func() { cancel(); <-checked }()
	} else {
		t := time.AfterFunc(settle, func() { ready <- nil })
		defer t.Stop()
	}
	exited := m.done
	for {
		select {
		case <-exited:
			if m.err != nil {
				return false, fmt.Errorf("exited before it was ready: %v", describeExit(m.err))
			}
			exited, daemonized = nil, true // exit 0: a daemonizing command; its group decides
		case err := <-empty:
			if err != nil {
				return daemonized, err
			}
			if exited != nil {
				// the main process's status says more than an empty group
				select {
				case <-exited:
					if m.err != nil {
						return false, fmt.Errorf("exited before it was ready: %v", describeExit(m.err))
					}
				case <-time.After(100 * time.Millisecond):
				}
			}
			return daemonized, errors.New("exited before it was ready: no process left in its group")
		case err := <-ready:
			if err == nil {
				if pop, _ := g.Procs(); len(pop) == 0 {
					return daemonized, errors.New("exited before it was ready: no process left in its group")
				}
			}
			return daemonized, err
		case <-ctx.Done():
			return daemonized, ctx.Err()
		}
	}
}

func describeExit(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + unix.SignalName(ws.Signal())
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	return err.Error()
}

func printSummary(w io.Writer, results []StartResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSERVICE\tPID\tSTATE\tREADY AFTER\tCGROUP")
	for _, r := range results {
		pid, took, cg := "-", "-", r.Cgroup
		if r.PID > 0 {
			pid = fmt.Sprint(r.PID)
		}
		if r.Took > 0 {
			took = human.Duration(r.Took)
		}
		if cg == "" {
			cg = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, pid, r.State, took, cg)
	}
	tw.Flush()
}

// syncWriter serialises lines written from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) printf(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, a...)
}
