package launcher

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/internal/proc"
	"golang.org/x/sys/unix"
)

// supervisorGrace is what the supervisor gets between SIGTERM and SIGKILL.
const supervisorGrace = 5 * time.Second

// launchTimeout bounds the wait for a new supervisor to listen.
const launchTimeout = 20 * time.Second

// StartServices starts services as `cgdev start` does. When no service to
// start, and none running, has a restart policy, a liveness check or a
// watch (and supervise is false), it starts them in this process (Start)
// and nothing stays resident. Otherwise the project's supervisor starts
// them, as their parent: the running one, or one launched now (which adopts
// the services already running: it resumes supervision after its
// predecessor was killed). Its progress is printed as Start would print it.
func StartServices(ctx context.Context, p *Project, drv cgroup.Driver, names []string, supervise bool, opt StartOptions) ([]StartResult, error) {
	if !supervise && !needsSupervisor(p, drv, names) {
		return Start(ctx, p, drv, names, opt)
	}
	config, err := filepath.Abs(p.Config.File)
	if err != nil {
		return nil, err
	}
	env := opt.Env
	if env == nil {
		env = os.Environ()
	}
	req := svRequest{Op: "start", Names: names, Config: config, Env: env, IgnoreUnsupported: opt.IgnoreUnsupported}
	var done *svReply
	for attempt := 0; ; attempt++ {
		if err := ensureSupervisor(ctx, p, drv, opt.Out); err != nil {
			return nil, err
		}
		done, err = ask(ctx, p, drv, req, opt.Out)
		// A supervisor exiting as it had nothing left to do closes the
		// connection before any answer: the next attempt starts a new one.
		if err == nil || ctx.Err() != nil || !errors.Is(err, errNoAnswer) || attempt > 0 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	results := make([]StartResult, len(done.Results))
	for i, r := range done.Results {
		results[i] = StartResult{Name: r.Name, State: r.State, LogFrom: r.LogFrom}
	}
	if done.Err != "" {
		return results, errors.New(done.Err)
	}
	return results, nil
}

// needsSupervisor says whether starting names needs the supervisor: one of
// them (or what they depend on) is supervised, a service that runs is
// (supervision to resume), or a supervisor runs already (it must be the
// parent of what starts, to see how it ends).
func needsSupervisor(p *Project, drv cgroup.Driver, names []string) bool {
	services, err := p.Config.Closure(names)
	if err != nil {
		return false // Start reports it
	}
	for _, s := range services {
		if s.Supervised() {
			return true
		}
	}
	groups, err := drv.Groups(p.ID)
	if err != nil {
		return false
	}
	for _, g := range groups {
		if pids, err := g.Procs(); err != nil || len(pids) == 0 {
			continue
		}
		if g.Name() == SupervisorGroup {
			return true
		}
		if s := p.Config.Service(g.Name()); s != nil && s.Supervised() {
			return true
		}
	}
	return false
}

// ensureSupervisor makes sure the project's supervisor runs and answers:
// one that runs but does not answer is replaced.
func ensureSupervisor(ctx context.Context, p *Project, drv cgroup.Driver, out io.Writer) error {
	g := findSupervisor(drv, p.ID)
	if g != nil {
		c, err := dial(p, g)
		if err == nil {
			c.Close()
			return nil
		}
		fmt.Fprintf(out, "cgdev: the supervisor does not answer (%v); replacing it\n", err)
		if _, err := cleanup.StopGroup(context.Background(), g, unix.SIGKILL, 0); err != nil {
			return fmt.Errorf("removing the supervisor that does not answer: %w", err)
		}
	}
	resumed := runningSupervised(p, drv)
	pid, err := launchSupervisor(ctx, p, drv)
	if err != nil {
		return err
	}
	if len(resumed) > 0 {
		fmt.Fprintf(out, "cgdev: supervision was off; resumed: supervisor PID %d adopts %s (how they end will not be known until they restart)\n", pid, strings.Join(resumed, ", "))
	} else {
		fmt.Fprintf(out, "cgdev: supervisor started, PID %d\n", pid)
	}
	return nil
}

// runningSupervised lists the configured services with a restart policy,
// liveness check or watch whose group holds processes.
func runningSupervised(p *Project, drv cgroup.Driver) []string {
	live, err := liveGroups(drv, p.ID)
	if err != nil {
		return nil
	}
	var names []string
	for _, s := range p.Config.Services {
		if live[s.Name] != nil && s.Supervised() {
			names = append(names, s.Name)
		}
	}
	return names
}

// launchSupervisor starts `cgdev __supervise` for p in its group, through
// the driver like a service, and waits until it listens. Its stderr goes
// to .cgdev/logs/_supervisor.log.
func launchSupervisor(ctx context.Context, p *Project, drv cgroup.Driver) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	config, err := filepath.Abs(p.Config.File)
	if err != nil {
		return 0, err
	}
	logPath, log := p.LogFile(SupervisorGroup), p.serviceLog(SupervisorGroup)
	logf, from, err := log.openForService(SupervisorGroup)
	if err != nil {
		return 0, fmt.Errorf("the supervisor's log: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	cmd := exec.Command(exe, "--driver", drv.Name(), "-C", p.Dir, "-f", config, "__supervise")
	cmd.Dir, cmd.Stdout, cmd.Stderr = p.Dir, w, logf
	cmd.Env = append(proc.StripMarkers(os.Environ()), proc.ProjectEnv+"="+p.ID, proc.ServiceEnv+"="+SupervisorGroup)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	spec := cgroup.Spec{Project: p.ID, Name: SupervisorGroup, Description: "cgdev supervisor of " + p.Dir}
	g, err := drv.Start(ctx, spec, cmd)
	w.Close()
	if err != nil {
		return 0, fmt.Errorf("starting the supervisor: %w", err)
	}
	go cmd.Wait() // reaped here if it dies before this process exits
	r.SetReadDeadline(time.Now().Add(launchTimeout))
	line, err := bufio.NewReader(r).ReadString('\n')
	var pid int
	if _, serr := fmt.Sscanf(line, "ready %d", &pid); err != nil || serr != nil {
		cleanup.StopGroup(context.Background(), g, unix.SIGKILL, 0)
		return 0, fmt.Errorf("the supervisor did not start (%v); last lines of %s:\n%s", errors.Join(err, serr), displayPath(logPath), log.tailText(logTailLines, from))
	}
	return pid, nil
}

// dial connects to the project's supervisor, g, and checks that the
// process answering belongs to g (the abstract socket's name could be taken
// by any process of this user).
func dial(p *Project, g cgroup.Group) (net.Conn, error) {
	c, err := net.DialTimeout("unix", socketName(p.ID), 5*time.Second)
	if err != nil {
		return nil, err
	}
	cred, err := peer(c)
	if err == nil {
		pids, _ := g.Procs()
		if int(cred.Uid) != os.Geteuid() || !slices.Contains(pids, int(cred.Pid)) {
			err = fmt.Errorf("the process answering on %s (PID %d) is not the project's supervisor", socketName(p.ID), cred.Pid)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// ask sends req to the supervisor, copies its output to out and returns
// its final reply. Cancelling ctx closes the connection (the supervisor
// then abandons the request).
func ask(ctx context.Context, p *Project, drv cgroup.Driver, req svRequest, out io.Writer) (*svReply, error) {
	g := findSupervisor(drv, p.ID)
	if g == nil {
		return nil, errNoSupervisor
	}
	c, err := dial(p, g)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(c)
	for answered := false; ; answered = true {
		var r svReply
		if err := dec.Decode(&r); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !answered {
				return nil, fmt.Errorf("%w: %v", errNoAnswer, err)
			}
			return nil, fmt.Errorf("the supervisor went away during the request: %w", err)
		}
		if r.Out != "" {
			io.WriteString(out, r.Out)
		}
		if r.Done {
			return &r, nil
		}
	}
}

// errNoAnswer is a connection closed before the supervisor answered.
var errNoAnswer = errors.New("the supervisor closed the connection without answering")

// pauseSupervisor makes sure the supervisor restarts nothing that a stop
// of names (all when empty) is about to stop. A full stop stops the
// supervisor first; a partial stop asks it to release those services, and
// stops it only when it does not answer: then resume says to start a new
// one afterwards for the services left running. ctx ending (a stop's
// second signal) cuts both waits short: the supervisor is then killed at
// once.
func pauseSupervisor(ctx context.Context, p *Project, drv cgroup.Driver, names []string, out io.Writer) (resume bool) {
	g := findSupervisor(drv, p.ID)
	if g == nil {
		return false
	}
	if len(names) > 0 {
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		slow := time.AfterFunc(time.Second, func() {
			fmt.Fprintf(out, "cgdev: waiting for the supervisor to release %s (a second Ctrl-C stops it at once)\n", strings.Join(names, ", "))
		})
		_, err := ask(actx, p, drv, svRequest{Op: "release", Names: names}, out)
		slow.Stop()
		if err == nil {
			return false
		}
		fmt.Fprintf(out, "cgdev: the supervisor does not answer (%v); stopping it\n", err)
	}
	stopSupervisor(ctx, g, "first (PID %d), so that it restarts nothing", out)
	return len(names) > 0
}

// endIdleSupervisor stops the supervisor once a stop by name has left no
// service running: it has nothing left to watch, and a full stop would have
// taken it down too (left alone, it would idle out idleGrace later). While
// any service runs it stays, watching it (up reports how it ends).
func endIdleSupervisor(ctx context.Context, p *Project, drv cgroup.Driver, out io.Writer) {
	groups, err := drv.Groups(p.ID)
	if err != nil || len(liveOf(groups)) > 0 {
		return
	}
	if g := supervisorIn(groups); g != nil {
		stopSupervisor(ctx, g, "(PID %d): no service left to watch", out)
	}
}

// stopSupervisor stops the supervisor's group g: SIGTERM (it leaves the
// services as they are), supervisorGrace, then SIGKILL. The line printed
// is "supervisor: stopped " + how, with the supervisor's PID for its %d.
func stopSupervisor(ctx context.Context, g cgroup.Group, how string, out io.Writer) {
	pid := 0
	if m := guessMain(g); m != nil {
		pid = m.PID
	}
	if _, err := cleanup.StopGroup(ctx, g, unix.SIGTERM, supervisorGrace); err != nil {
		fmt.Fprintf(out, "cgdev: stopping the supervisor: %v\n", err)
	} else {
		fmt.Fprintf(out, "supervisor: stopped "+how+"\n", pid)
	}
}

// resumeSupervisor starts a supervisor for the supervised services still
// running, after a stop had to stop the one before.
func resumeSupervisor(p *Project, drv cgroup.Driver, out io.Writer) {
	if p.NoConfig || len(runningSupervised(p, drv)) == 0 {
		return
	}
	if err := ensureSupervisor(context.Background(), p, drv, out); err != nil {
		fmt.Fprintf(out, "cgdev: warning: supervision is off: %v; run `cgdev start` to resume it\n", err)
	}
}
