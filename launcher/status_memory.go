package launcher

import (
	"os"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/proc"
)

// memory fills s's memory columns from the group's stats: the kernel's
// memory.current and memory.peak where the group has memory accounting,
// else the summed RSS of its processes, marked as an estimate (shared
// pages count once per process that maps them, so it errs high).
func (s *ServiceStatus) memory(g cgroup.Group, stats cgroup.Stats, h *cgroup.Host) {
	switch {
	case stats.HasMemory && !stats.MemoryEstimated:
		s.MemoryCurrent, s.MemoryPeak = &stats.MemoryCurrent, &stats.MemoryPeak
		return
	case stats.HasMemory: // the fallback driver's sum of RSS
		s.MemoryNA = "the fallback driver has no cgroup to account memory"
		s.MemoryCurrent, s.MemoryEstimate = &stats.MemoryCurrent, true
		return
	}
	s.MemoryNA = memoryNA(h, g.Path())
	if rss, ok := groupRSS(g); ok {
		s.MemoryCurrent, s.MemoryEstimate = &rss, true
	}
}

// groupRSS sums the resident memory of g's processes from /proc; false
// when the group's processes cannot be listed.
func groupRSS(g cgroup.Group) (uint64, bool) {
	pids, err := g.Procs()
	if err != nil {
		return 0, false
	}
	page := uint64(os.Getpagesize())
	var sum uint64
	for _, pid := range pids {
		if p, err := proc.ReadProc(pid); err == nil {
			sum += uint64(max(p.RSSPages, 0)) * page
		}
	}
	return sum, true
}

// memoryColumns are the MEM and PEAK cells of a running service: an
// estimate is shown as ~SIZE, and footnoted.
func memoryColumns(s ServiceStatus) (mem, peak string) {
	switch {
	case s.MemoryCurrent == nil:
		return "n/a*", "n/a*"
	case s.MemoryEstimate:
		return "~" + cgroup.HumanBytes(*s.MemoryCurrent), "n/a*"
	}
	mem, peak = cgroup.HumanBytes(*s.MemoryCurrent), "-"
	if s.MemoryPeak != nil && *s.MemoryPeak > 0 {
		peak = cgroup.HumanBytes(*s.MemoryPeak)
	}
	return mem, peak
}

// memoryFootnote explains the ~ and n/a* of the memory columns.
func memoryFootnote(why string) string {
	return "~ estimate: the summed RSS of the group's processes; * n/a: no kernel memory accounting (" + why + ")"
}
