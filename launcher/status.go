package launcher

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/fallback"
)

// ServiceStatus is one line of cgdev status (and one object of --json).
type ServiceStatus struct {
	Name   string `json:"name"`
	State  string `json:"state"` // running, stopped
	PID    int    `json:"pid,omitempty"`
	Procs  int    `json:"processes"`
	Cgroup string `json:"cgroup,omitempty"`
	// MemoryCurrent and MemoryPeak are null when the kernel gives the group no
	// memory accounting; MemoryNA then says why.
	MemoryCurrent *uint64 `json:"memory_current"`
	MemoryPeak    *uint64 `json:"memory_peak"`
	MemoryNA      string  `json:"memory_na,omitempty"`
	// CPUPercent is the group's CPU time over its uptime (100 = one core busy).
	CPUPercent *float64  `json:"cpu_percent"`
	Started    time.Time `json:"started,omitzero"`
	Uptime     Duration  `json:"uptime,omitempty"`
	Ready      string    `json:"ready,omitempty"`
	// OOMKills counts the processes the kernel's OOM killer killed in the
	// service's group (memory.events oom_kill; under systemd, also a scope
	// that ended with result oom-kill and is gone).
	OOMKills uint64 `json:"oom_kills,omitempty"`
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
	byName := map[string]cgroup.Group{}
	for _, g := range groups {
		byName[g.Name()] = g
	}
	names := p.Config.Names()
	var extra []string
	for n := range byName {
		if p.Config.Service(n) == nil {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	var out []ServiceStatus
	for _, n := range append(names, extra...) {
		out = append(out, serviceStatus(n, byName[n], st.Services[n], h))
	}
	return out, nil
}

func serviceStatus(name string, g cgroup.Group, rec *ServiceState, h *cgroup.Host) ServiceStatus {
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
		return s
	}
	s.State, s.Procs, s.Cgroup = "running", stats.Procs, g.Path()
	if stats.HasMemory {
		s.MemoryCurrent, s.MemoryPeak = &stats.MemoryCurrent, &stats.MemoryPeak
	} else {
		s.MemoryNA = memoryNA(h)
	}
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
	s.Started = rec.Started
	up := time.Since(rec.Started)
	s.Uptime = Duration(up.Round(time.Second))
	if up > 0 {
		pct := float64(stats.CPUUsage) / float64(up) * 100
		s.CPUPercent = &pct
	}
	switch {
	case rec.Guessed:
		s.Ready = "unknown (no state.json)"
	case rec.Ready != "":
		s.Ready = fmt.Sprintf("ready after %s (%s)", roundDuration(time.Duration(rec.ReadyAfter)), rec.Ready)
	default:
		s.Ready = "no check"
	}
	return s
}

// memoryNA says why a group has no memory.current.
func memoryNA(h *cgroup.Host) string {
	switch {
	case h == nil:
		return "the memory controller is not available"
	case h.BoundToV1("memory"):
		return "the memory controller is bound to cgroup v1 on this host (hybrid mode)"
	case !h.Has("memory"):
		return "the memory controller is not enabled for cgdev's cgroups"
	}
	return "this driver does not report memory"
}

// PrintStatus writes the status table.
func PrintStatus(w io.Writer, list []ServiceStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tPID\tPROCS\tMEM\tPEAK\tCPU%\tUPTIME\tREADY")
	var na string
	for _, s := range list {
		if s.State != "running" {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\n", s.Name, s.State)
			continue
		}
		mem, peak := "n/a*", "n/a*"
		if s.MemoryCurrent != nil {
			mem, peak = cgroup.HumanBytes(*s.MemoryCurrent), "-"
			if *s.MemoryPeak > 0 {
				peak = cgroup.HumanBytes(*s.MemoryPeak)
			}
		} else {
			na = s.MemoryNA
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, dash(s.PID), s.Procs, mem, peak,
			pct(s.CPUPercent), uptime(s), orDash(s.Ready))
	}
	tw.Flush()
	for _, s := range list {
		if s.OOMKills > 0 {
			fmt.Fprintf(w, "! %s: OOM: the kernel killed %d process(es) of this service for exceeding its memory limit\n", s.Name, s.OOMKills)
		}
	}
	if na != "" {
		fmt.Fprintf(w, "* memory n/a: %s\n", na)
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
	return time.Duration(s.Uptime).String()
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
		p, err := fallback.ReadProc(pid)
		if err != nil || p.PGID != pid || in[p.PPID] {
			continue
		}
		started := bootTime().Add(time.Duration(p.StartTicks) * time.Second / fallback.ClockTicks)
		return &ServiceState{PID: pid, StartTicks: p.StartTicks, PGID: pid, Started: started, Guessed: true}
	}
	return nil
}

// bootTime is when the system booted, from /proc/uptime.
func bootTime() time.Time {
	return time.Now().Add(-fallback.Uptime())
}
