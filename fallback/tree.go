package fallback

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/proc"
)

// TreeGroup is root and its descendants, for as long as root is the same
// process: what `cgdev kill-tree` stops. It counts no marker and no process
// group, only the tree (and members it has already seen, so that a child
// orphaned by its parent's death mid-stop is still stopped). Processes of
// other users are left out unless the caller is root.
func TreeGroup(root proc.Identity) *Group {
	return newGroup("tree of PID "+strconv.Itoa(root.PID), selector{}, false, root)
}

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

// KillTree stops pid and its descendants: SIGTERM to each, a wait of up to
// grace that ends the moment the last one exits (pidfds, no sleep), then
// SIGKILL to whatever is left, repeated until nothing new appears. A grace of
// 0 kills at once. It refuses PID 1, cgdev itself and its ancestors (whose
// trees hold cgdev), and, unless the caller is root, another user's process.
func KillTree(ctx context.Context, pid int, grace time.Duration) (KillResult, error) {
	var res KillResult
	p, err := proc.ReadProc(pid)
	if err != nil || p.State == 'Z' {
		return res, fmt.Errorf("no live process with PID %d", pid)
	}
	sc := callerScope()
	switch {
	case pid <= 1:
		return res, fmt.Errorf("refusing to kill the tree of PID %d", pid)
	case pid == sc.self:
		return res, fmt.Errorf("PID %d is cgdev itself", pid)
	case sc.protected[pid]:
		return res, fmt.Errorf("PID %d is an ancestor of cgdev (the shell running it, or a parent of that shell)", pid)
	case !sc.allows(p):
		return res, fmt.Errorf("PID %d belongs to uid %d, not to you (uid %d)", pid, p.UID, sc.uid)
	}
	g := TreeGroup(p.Identity())
	found, err := g.Procs()
	if err != nil {
		return res, err
	}
	res.Found = len(found)
	start := time.Now()
	if grace > 0 {
		if res.Terminated, err = g.Signal(syscall.SIGTERM); err != nil {
			return res, err
		}
		wctx, cancel := context.WithTimeout(ctx, grace)
		err = g.WaitEmpty(wctx)
		cancel()
		if err == nil {
			res.Took = time.Since(start)
			return res, nil
		}
	}
	left, _ := g.Procs()
	res.Killed = len(left)
	if err := g.Kill(); err != nil {
		return res, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.WaitEmpty(wctx); err != nil {
		left, _ := g.Procs()
		return res, fmt.Errorf("%d process(es) survived SIGKILL: %v", len(left), left)
	}
	res.Took = time.Since(start)
	return res, nil
}
