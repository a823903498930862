package launcher

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/proc"
)

// PS writes, for each running service (or only those named), its process
// tree: PID, CPU % (over the process's lifetime), RSS and command line.
func PS(w io.Writer, p *Project, drv cgroup.Driver, names []string) error {
	groups, err := drv.Groups(p.ID)
	if err != nil {
		return err
	}
	groups = inConfigOrder(p.Config, serviceGroups(groups), cgroup.Group.Name)
	want := map[string]bool{}
	for _, n := range names {
		if p.Config.Service(n) == nil {
			return fmt.Errorf("no service %q in %s", n, p.Config.File)
		}
		want[n] = true
	}
	uptime := proc.Uptime()
	page := int64(os.Getpagesize())
	shown := 0
	for _, g := range groups {
		if len(want) > 0 && !want[g.Name()] {
			continue
		}
		pids, err := g.Procs()
		if err != nil || len(pids) == 0 {
			continue
		}
		shown++
		procs := map[int]proc.Proc{}
		for _, pid := range pids {
			if pr, err := proc.ReadProc(pid); err == nil {
				procs[pid] = pr
			}
		}
		fmt.Fprintf(w, "%s  (processes: %d, cgroup: %s)\n", g.Name(), len(procs), orDash(g.Path()))
		fmt.Fprintf(w, "  %7s %6s %8s  %s\n", "PID", "CPU%", "RSS", "COMMAND")
		children := map[int][]int{}
		var roots []int
		for pid, pr := range procs {
			if _, ok := procs[pr.PPID]; ok {
				children[pr.PPID] = append(children[pr.PPID], pid)
			} else {
				roots = append(roots, pid)
			}
		}
		sort.Ints(roots)
		var walk func(pid int, prefix string, depth int)
		walk = func(pid int, prefix string, depth int) {
			pr := procs[pid]
			cpu := "-"
			if pct, ok := pr.CPUPercent(uptime); ok {
				cpu = fmt.Sprintf("%.1f", pct)
			}
			cmd := pr.Command()
			fmt.Fprintf(w, "  %7d %6s %8s  %s%s\n", pid, cpu, cgroup.HumanBytes(uint64(pr.RSSPages*page)), prefix, cmd)
			kids := children[pid]
			sort.Ints(kids)
			for _, k := range kids {
				walk(k, strings.Repeat("  ", depth)+"└─ ", depth+1)
			}
		}
		for _, r := range roots {
			walk(r, "", 0)
		}
	}
	if shown == 0 {
		fmt.Fprintln(w, "no service is running")
	}
	return nil
}
