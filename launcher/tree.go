package launcher

// cgdev tree and cgdev kill-tree: a process and its descendants, read from
// /proc, with any driver and outside any project.

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/fallback"
	"github.com/cgdev/cgdev/internal/proc"
	"golang.org/x/sys/unix"
)

// Node is one process of a tree listing.
type Node struct {
	proc.Proc
	Depth   int     // 0 for the root, 1 for its children, ...
	Service string  // from the process's marker: the service, "run:NAME", or ""
	CPU     float64 // percent of one CPU, averaged since the process started (as ps(1) shows it)
	RSS     uint64  // resident memory in bytes
	Command string  // command line, or "[comm]" when it has none (kernel threads, zombies)
}

// Tree lists pid and its descendants, breadth first: the root, its
// children, their children, and so on.
func Tree(pid int) ([]Node, error) {
	t, err := proc.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("scanning /proc: %w", err)
	}
	if _, ok := t.Procs[pid]; !ok {
		return nil, fmt.Errorf("no process with PID %d", pid)
	}
	uptime := proc.Uptime()
	page := uint64(os.Getpagesize())
	var nodes []Node
	level, depth := []int{pid}, 0
	for len(level) > 0 {
		var next []int
		for _, p := range level {
			nodes = append(nodes, node(t.Procs[p], depth, uptime, page))
			next = append(next, t.Children(p)...)
		}
		level, depth = next, depth+1
	}
	return nodes, nil
}

func node(p proc.Proc, depth int, uptime time.Duration, page uint64) Node {
	n := Node{Proc: p, Depth: depth, Service: proc.ReadMarker(p.PID).Label(), RSS: uint64(max(p.RSSPages, 0)) * page}
	n.CPU, _ = p.CPUPercent(uptime)
	n.Command = p.Command()
	return n
}

// WriteTree prints nodes as a table, each command indented by its depth.
func WriteTree(w io.Writer, nodes []Node) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tPPID\tSERVICE\tCPU%\tRSS\tCOMMAND")
	for _, n := range nodes {
		svc := n.Service
		if svc == "" {
			svc = "-"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%.1f\t%s\t%s%s\n", n.PID, n.PPID, svc, n.CPU,
			cgroup.HumanBytes(n.RSS), strings.Repeat("  ", n.Depth), n.Command)
	}
	return tw.Flush()
}

// KillResult says what KillTree did.
type KillResult struct {
	Found      int           // processes in the tree, root included, when it began
	Terminated int           // processes SIGTERM reached
	Killed     int           // processes still there after the grace period, then SIGKILLed
	Took       time.Duration // from the first signal to an empty tree
}

// KillTree stops pid and its descendants the way cgdev stops every group
// (cleanup.StopGroup): SIGTERM and SIGCONT to each, a wait of up to grace
// that ends the moment the last one exits (pidfds, no sleep), then SIGKILL
// to whatever is left, repeated until nothing new appears. A grace of 0
// kills at once. The tree is fallback.TreeGroup: the descendants only, and
// the children orphaned during the stop. It refuses PID 1, cgdev itself and
// its ancestors (whose trees hold cgdev), and, unless the caller is root,
// another user's process.
func KillTree(ctx context.Context, pid int, grace time.Duration) (KillResult, error) {
	var res KillResult
	root, err := treeRoot(pid)
	if err != nil {
		return res, err
	}
	g := fallback.TreeGroup(root.Identity())
	found, err := g.Procs()
	if err != nil {
		return res, err
	}
	res.Found = len(found)
	stopped, err := cleanup.StopGroup(ctx, g, unix.SIGTERM, grace)
	res.Terminated, res.Killed, res.Took = stopped.Signalled, stopped.Killed, stopped.Took
	return res, err
}

// treeRoot reads pid, refusing what KillTree must never stop.
func treeRoot(pid int) (proc.Proc, error) {
	p, err := proc.ReadProc(pid)
	if err != nil || p.State == 'Z' {
		return p, fmt.Errorf("no live process with PID %d", pid)
	}
	switch uid := os.Geteuid(); {
	case pid <= 1:
		return p, fmt.Errorf("refusing to kill the tree of PID %d", pid)
	case pid == os.Getpid():
		return p, fmt.Errorf("PID %d is cgdev itself", pid)
	case proc.Protected()[pid]:
		return p, fmt.Errorf("PID %d is an ancestor of cgdev (the shell running it, or a parent of that shell)", pid)
	case uid != 0 && p.UID != uid:
		return p, fmt.Errorf("PID %d belongs to uid %d, not to you (uid %d)", pid, p.UID, uid)
	}
	return p, nil
}
