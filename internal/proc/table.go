package proc

import (
	"os"
	"sort"
	"strconv"
)

// Table is a snapshot of every process in /proc.
type Table struct {
	Procs map[int]Proc
	// Complete is false when processes were still being forked after the
	// last round of Scan: the table may lack some of the newest.
	Complete bool
	children map[int][]int
}

// Snapshot reads every process in /proc (see Scan). Processes that exit
// meanwhile are skipped.
func Snapshot() (*Table, error) {
	t := &Table{Procs: map[int]Proc{}, children: map[int][]int{}}
	complete, err := Scan("/proc", func(pids []int) (exited int) {
		for _, pid := range pids {
			p, err := ReadProc(pid)
			if err != nil || p.State == 'Z' {
				exited++
			}
			if err == nil {
				t.Procs[pid] = p
				t.children[p.PPID] = append(t.children[p.PPID], pid)
			}
		}
		return exited
	})
	if err != nil {
		return nil, err
	}
	t.Complete = complete
	for _, c := range t.children {
		sort.Ints(c)
	}
	return t, nil
}

// scanRounds bounds how often Scan lists /proc again.
const scanRounds = 8

// Scan calls read with the PIDs of the processes in dir (/proc), in batches,
// each PID once, and read says how many of them it found exited (gone, or
// zombies). A listing of /proc is not atomic with the reads that follow it:
// a process that forks and exits in between hides its child, forked after
// the listing, as well as itself (a process handing over to a daemon, a
// double fork, looks gone). But the child existed before its parent was
// found exited, so a later listing has it: while read finds processes
// exited, Scan lists again and passes on the new PIDs. It reports false
// when that had not settled after scanRounds listings.
func Scan(dir string, read func(pids []int) (exited int)) (complete bool, err error) {
	seen := map[int]bool{}
	for range scanRounds {
		pids, err := listPIDs(dir)
		if err != nil {
			return false, err
		}
		fresh := pids[:0]
		for _, pid := range pids {
			if !seen[pid] {
				seen[pid] = true
				fresh = append(fresh, pid)
			}
		}
		if len(fresh) == 0 || read(fresh) == 0 {
			return true, nil
		}
	}
	return false, nil
}

// listPIDs lists the numeric entries of dir (/proc), unsorted.
func listPIDs(dir string) ([]int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
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
