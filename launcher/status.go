package launcher

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/human"
	"github.com/cgdev/cgdev/internal/proc"
)

// ServiceStatus is one line of cgdev status (and one object of --json).
type ServiceStatus struct {
	Name  string `json:"name"`
	State string `json:"state"` // judge's states (status_state.go), disabled: stopped, and started only when named, or completed: a oneshot that exited 0
	// Configured is false for a group still running for a service since
	// removed from the config.
	Configured bool   `json:"configured"`
	PID        int    `json:"pid,omitempty"`
	Procs      int    `json:"processes"`
	Cgroup     string `json:"cgroup,omitempty"`
	// MemoryCurrent is the kernel's count for the group (memory.current),
	// or, where the kernel gives the group no memory accounting, the summed
	// RSS of its processes, with MemoryEstimate set and MemoryNA saying why
	// (null only when not even that could be read). MemoryPeak is null
	// without accounting.
	MemoryCurrent  *uint64 `json:"memory_current"`
	MemoryPeak     *uint64 `json:"memory_peak"`
	MemoryEstimate bool    `json:"memory_estimate,omitempty"`
	MemoryNA       string  `json:"memory_na,omitempty"`
	// CPUPercent is the group's CPU time over its uptime (100 = one core busy).
	CPUPercent *float64  `json:"cpu_percent"`
	Started    time.Time `json:"started,omitzero"`
	Uptime     Duration  `json:"uptime,omitempty"`
	Ready      string    `json:"ready,omitempty"`
	// Detail qualifies State: "code 3", "SIGKILL", "MemoryMax=512M, peak
	// 512M", "crash loop: 5 restarts in 1m", "main exited (code 1), 4
	// processes left", "2, next in 4s" (status_state.go).
	Detail      string       `json:"detail,omitempty"`
	Restarts    int          `json:"restarts"`
	LastExit    *ServiceExit `json:"last_exit,omitempty"`
	NextRestart time.Time    `json:"next_restart,omitzero"`
	Health      string       `json:"health,omitempty"`
	// OOMKills counts the processes the kernel's OOM killer killed in the
	// service's group (memory.events oom_kill; under systemd, also a scope
	// that ended with result oom-kill and is gone).
	OOMKills uint64 `json:"oom_kills,omitempty"`
	// oomKill is the kernel's evidence that the OOM killer ended a service
	// whose group is now empty (OOMKills > 0), with its limit and peak.
	oomKill *OOMKill
	cpu     time.Duration // the group's CPU time, for CPUPercent
}

// Status reports every configured service, and every group of the project
// that no longer is in the config. It reads the kernel's groups for what
// runs and state.json only for what it alone knows (main PID, start time,
// readiness); a corrupt or missing state.json costs only those columns.
func Status(p *Project, drv cgroup.Driver, h *cgroup.Host) ([]ServiceStatus, error) {
	groups, err := drv.Groups(p.ID)
	if err != nil {
		return nil, err
	}
	st, _ := p.LoadState()
	p.touchLogs()
	byName := map[string]cgroup.Group{}
	for _, g := range serviceGroups(groups) {
		byName[g.Name()] = g
	}
	supervised := supervisorIn(groups) != nil
	names := p.Config.Names()
	for n := range byName {
		if p.Config.Service(n) == nil {
			names = append(names, n)
		}
	}
	var out []ServiceStatus
	for _, n := range inConfigOrder(p.Config, names, func(n string) string { return n }) {
		// The exit record is read before the group: its watcher writes it
		// after the end it tells of, so the processes seen are never older
		// than the record (a main killed, still a zombie in the scan, and
		// its end already recorded would read "2 process(es) left").
		er := p.LoadRecord(n)
		svc := p.Config.Service(n)
		s := serviceStatus(n, byName[n], st.Services[n], svc, h)
		s.Configured = svc != nil
		judge(&s, st.Services[n], er, supervised)
		if (s.State == "starting" || s.State == "restarting") && s.Procs > 0 && s.PID == 0 {
			s.sinceRestart(byName[n])
		}
		if svc != nil && svc.Disabled && s.State == "stopped" {
			s.State = "disabled" // not started without its name: not down
		}
		if svc != nil && svc.Oneshot() && s.State == "exited" && s.Detail == "code 0" {
			s.State, s.Detail = "completed", "exit 0" // a oneshot's success: done, not down
		}
		out = append(out, s)
	}
	return out, nil
}

// touchLogs rotates the configured services' logs when due and records
// a checkpoint of each (what every command that looks at the project does:
// there is no daemon to do it).
func (p *Project) touchLogs() {
	for _, n := range p.Config.Names() {
		if err := p.serviceLog(n).touch(); err != nil && !missing(err) {
			p.warnOnce(fmt.Errorf("log of %s: %w", n, err))
		}
	}
}

// StatusDown is the exit status of `cgdev status` when a service it
// reports on is not running, as LSB init scripts and `systemctl status`
// use 3 for "not running".
const StatusDown = 3

// StatusCode is the exit status for a status report: 0 when every
// configured service in list is up (running or ready), completed (a
// oneshot that exited 0) or disabled (stopped, and started only when
// named), StatusDown otherwise: stopped, starting,
// restarting, unhealthy, degraded, exited, killed, oom-killed or failed (a
// disabled service started by name that then ended included). Groups
// running for services no longer in the config do not count. This is the
// one place that decides what "down" means.
func StatusCode(list []ServiceStatus) int {
	for _, s := range list {
		if s.Configured && !s.Up() && s.State != "disabled" && s.State != "completed" {
			return StatusDown
		}
	}
	return 0
}

// Up says whether the service counts as up: running, or ready.
func (s ServiceStatus) Up() bool { return s.State == "running" || s.State == "ready" }

// serviceStatus reads the group of service name (svc nil when it is no
// longer configured) and state.json's record of its start.
func serviceStatus(name string, g cgroup.Group, rec *ServiceState, svc *Service, h *cgroup.Host) ServiceStatus {
	s := ServiceStatus{Name: name, State: "stopped"}
	if g == nil {
		return s
	}
	stats, err := g.Stats()
	if err != nil {
		return s
	}
	s.OOMKills = stats.OOMKills
	if stats.Procs == 0 {
		if stats.OOMKills > 0 {
			var limits cgroup.Limits
			if svc != nil {
				limits = svc.Limits
			}
			s.oomKill = oomKillOf(stats, limits)
		}
		return s
	}
	s.State, s.Procs, s.Cgroup = "running", stats.Procs, g.Path()
	s.memory(g, stats, h)
	if rec == nil {
		rec = guessMain(g)
	}
	if rec == nil {
		return s
	}
	if rec.Identity().Alive() {
		if pids, _ := g.Procs(); slices.Contains(pids, rec.PID) {
			s.PID = rec.PID
		}
	}
	s.since(rec.Started, stats.CPUUsage)
	switch {
	case rec.Guessed:
		s.Ready = "unknown (no state.json)"
	case rec.Ready != "":
		s.Ready = fmt.Sprintf("ready after %s (%s)", human.Duration(time.Duration(rec.ReadyAfter)), rec.Ready)
	default:
		s.Ready = "no check"
	}
	return s
}

// since sets Started, Uptime and CPU% for a main process started at
// started in a group that used cpu. Uptime is exact to the millisecond
// under a second (a service up for 400 ms is not up for "0ms"), to the
// second beyond.
func (s *ServiceStatus) since(started time.Time, cpu time.Duration) {
	s.Started, s.cpu = started, cpu
	up := time.Since(started)
	if up < time.Second {
		s.Uptime = Duration(max(up.Round(time.Millisecond), time.Millisecond))
	} else {
		s.Uptime = Duration(up.Round(time.Second))
	}
	if up > 0 {
		pct := float64(cpu) / float64(up) * 100
		s.CPUPercent = &pct
	}
}

// sinceRestart is since for a service being restarted whose recorded main
// process is gone (s.PID 0): state.json still describes the instance that
// ended, until the supervisor records the new one once it is ready; the
// new one leads the group (g). Ready is not yet known.
func (s *ServiceStatus) sinceRestart(g cgroup.Group) {
	s.Ready, s.Started, s.Uptime, s.CPUPercent = "", time.Time{}, 0, nil
	if m := guessMain(g); m != nil {
		s.since(m.Started, s.cpu)
	}
}

// memoryNA says why the group at dir (a cgroup path; "" for none) has no
// memory.current: the first reason that holds, from the host down to the
// group itself.
func memoryNA(h *cgroup.Host, dir string) string {
	switch {
	case h == nil:
		return "the memory controller is not available"
	case h.BoundToV1("memory"):
		return "the memory controller is bound to cgroup v1 on this host (hybrid mode)"
	case !h.Has("memory"):
		return "the memory controller is not enabled for cgdev's cgroups"
	case dir != "" && !hasController(dir, "memory"):
		return "the memory controller is not enabled for this group: its parent's cgroup.subtree_control lacks memory, which cgdev enables only where a service has a memory limit"
	}
	return "the kernel reports no memory.current for this group"
}

// hasController says whether the cgroup at dir has controller c (its
// cgroup.controllers: what its parent enabled for it); true when that
// cannot be read, so that no reason is made up.
func hasController(dir, c string) bool {
	list, err := cgroup.Dir(dir).ReadFile("cgroup.controllers")
	return err != nil || slices.Contains(strings.Fields(list), c)
}

// PrintStatus writes the status table.
func PrintStatus(w io.Writer, list []ServiceStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tPID\tPROCS\tMEM\tPEAK\tCPU%\tUPTIME\tRESTARTS\tREADY")
	var na string
	for _, s := range list {
		if s.Procs == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t%d\t-\n", s.Name, s.StateText(), s.Restarts)
			continue
		}
		mem, peak := memoryColumns(s)
		if s.MemoryNA != "" {
			na = s.MemoryNA
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.StateText(), dash(s.PID), s.Procs, mem, peak,
			pct(s.CPUPercent), uptime(s), s.Restarts, orDash(s.Ready))
	}
	tw.Flush()
	printLastExits(w, list)
	printOOMKills(w, list)
	if na != "" {
		fmt.Fprintf(w, "%s\n", memoryFootnote(na))
	}
}

func dash(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func pct(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *p)
}

func uptime(s ServiceStatus) string {
	if s.Started.IsZero() {
		return "-"
	}
	return human.Duration(time.Duration(s.Uptime))
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// guessMain finds the main process of a group that state.json does not
// describe (deleted, corrupt): the lowest PID that leads its own process
// group and whose parent is outside the group. Services' main processes are
// started so (Setsid); a double-forked daemon keeps its parent's group.
func guessMain(g cgroup.Group) *ServiceState {
	pids, err := g.Procs()
	if err != nil {
		return nil
	}
	in := make(map[int]bool, len(pids))
	for _, pid := range pids {
		in[pid] = true
	}
	slices.Sort(pids)
	for _, pid := range pids {
		p, err := proc.ReadProc(pid)
		if err != nil || p.PGID != pid || in[p.PPID] {
			continue
		}
		started := bootTime().Add(time.Duration(p.StartTicks) * time.Second / proc.ClockTicks)
		return &ServiceState{PID: pid, StartTicks: p.StartTicks, PGID: pid, Started: started, Guessed: true}
	}
	return nil
}

// bootTime is when the system booted, from /proc/uptime.
func bootTime() time.Time {
	return time.Now().Add(-proc.Uptime())
}

// printOOMKills names the services whose groups lost processes to the
// kernel's OOM killer, unless their state already says so (oom-killed).
func printOOMKills(w io.Writer, list []ServiceStatus) {
	for _, s := range list {
		if s.OOMKills > 0 && s.State != "oom-killed" {
			fmt.Fprintf(w, "! %s: OOM: the kernel killed %d process(es) of this service for exceeding its memory limit\n", s.Name, s.OOMKills)
		}
	}
}
