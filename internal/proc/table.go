package proc

import (
	"os"
	"sort"
	"strconv"
)

// Table is a snapshot of every process in /proc.
type Table struct {
	Procs    map[int]Proc
	children map[int][]int
}

// Snapshot reads every process in /proc. Processes that exit meanwhile are skipped.
func Snapshot() (*Table, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	t := &Table{Procs: make(map[int]Proc, len(entries)), children: map[int][]int{}}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := ReadProc(pid)
		if err != nil {
			continue
		}
		t.Procs[pid] = p
		t.children[p.PPID] = append(t.children[p.PPID], pid)
	}
	for _, c := range t.children {
		sort.Ints(c)
	}
	return t, nil
}

// Children returns the direct children of pid.
func (t *Table) Children(pid int) []int { return t.children[pid] }

// Descendants returns every descendant of pid, breadth first (children, then
// their children, ...), excluding pid itself.
func (t *Table) Descendants(pid int) []int {
	return t.Subtree(pid)
}

// Subtree returns every descendant of the roots, breadth first, once each,
// excluding the roots themselves. One walk serves any number of roots.
func (t *Table) Subtree(roots ...int) []int {
	var out []int
	var queue []int
	seen := make(map[int]bool, len(roots))
	for _, r := range roots {
		seen[r] = true
	}
	for _, r := range roots {
		queue = append(queue, t.children[r]...)
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		queue = append(queue, t.children[p]...)
	}
	return out
}
