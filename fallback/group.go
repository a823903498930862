package fallback

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/proc"
	"golang.org/x/sys/unix"
)

// Reason says why a process is counted in a Group.
type Reason string

const (
	ByLeader       Reason = "leader"        // the recorded first process (PID and start time)
	ByMarker       Reason = "marker"        // carries the group's CGDEV_* marker
	ByEarlierScan  Reason = "seen before"   // found by an earlier scan and still the same process
	ByTree         Reason = "descendant"    // forked, directly or not, by a member
	ByProcessGroup Reason = "process group" // in the process group of a leader
	BySession      Reason = "session"       // in the session of a leader
)

// Member is one process of a Group and why it belongs.
type Member struct {
	proc.Proc
	Why Reason
}

// selector says which marked processes form a group: a project's service, or
// a run. The zero selector matches no marker (a plain process tree).
type selector struct {
	project, service string
	run              string
}

func (s selector) match(m proc.Marker) bool {
	switch {
	case s.run != "":
		return m.Run == s.run
	case s.project != "":
		return m.Project == s.project && m.Service == s.service
	}
	return false
}

// scope is whose processes may ever be counted: never PID 1, never cgdev
// itself nor its ancestors (the shell that runs it), no zombie, and only the
// caller's own unless the caller is root.
type scope struct {
	uid       int // effective uid of the caller; 0 means any
	self      int
	protected map[int]bool // self and its ancestors
}

func callerScope() scope {
	return scope{uid: os.Geteuid(), self: os.Getpid(), protected: proc.Protected()}
}

func (s scope) allows(p proc.Proc) bool {
	return p.PID > 1 && !s.protected[p.PID] && p.State != 'Z' && (s.uid == 0 || p.UID == s.uid)
}

// Group is a set of processes identified without a cgroup. A process belongs
// when it is in scope and
//   - is a recorded leader whose start time still matches, or
//   - carries the group's marker (CGDEV_PROJECT+CGDEV_SERVICE, or CGDEV_RUN), or
//   - was found by an earlier scan of this Group and is still the same process, or
//   - descends from a member, or
//   - is in the process group or session of a leader, or of a marked process
//     that leads its group or session (marker groups only).
//
// Membership is recomputed from /proc on every call; there are no state files.
// It implements cgroup.Group.
type Group struct {
	name   string
	sel    selector
	expand bool // count process group and session members
	scope  scope

	mu      sync.Mutex
	leaders []proc.Identity
	known   map[proc.Identity]bool
	reached map[proc.Identity]Member // what Signal and Kill reached, for the report
}

var _ cgroup.Group = (*Group)(nil)

func newGroup(name string, sel selector, expand bool, leaders ...proc.Identity) *Group {
	return &Group{name: name, sel: sel, expand: expand, scope: callerScope(), leaders: leaders,
		known: map[proc.Identity]bool{}, reached: map[proc.Identity]Member{}}
}

// TreeGroup is root and its descendants, for as long as root is the same
// process: what `cgdev kill-tree` stops. It counts no marker and no process
// group, only the tree (and members it has already seen, so that a child
// orphaned by its parent's death mid-stop is still stopped). Processes of
// other users are left out unless the caller is root.
func TreeGroup(root proc.Identity) *Group {
	return newGroup("tree of PID "+strconv.Itoa(root.PID), selector{}, false, root)
}

// Name is the service or run name.
func (g *Group) Name() string { return g.name }

// Path is "": a fallback group has no cgroupfs directory.
func (g *Group) Path() string { return "" }

// Leaders returns the recorded first processes.
func (g *Group) Leaders() []proc.Identity {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]proc.Identity(nil), g.leaders...)
}

// Members scans /proc and returns the group's processes, ordered by PID,
// each with the first reason that ties it to the leader: leader, then its
// tree, process group and session; only then the marker (so ByMarker means
// the process left the leader's tree, group and session: it escaped, and
// only the marker found it), what descends from such escapees, and members
// seen by an earlier scan.
//
// An empty result comes only from a complete snapshot (proc.Scan), or
// after trying for 100 ms: one that missed processes forked during it could
// miss a group handing over to a daemon.
func (g *Group) Members() ([]Member, error) {
	deadline := time.Now().Add(incompleteTimeout)
	for {
		ms, complete, err := g.scan()
		if err != nil || len(ms) > 0 || complete || time.Now().After(deadline) {
			return ms, err
		}
		time.Sleep(time.Millisecond)
	}
}

// incompleteTimeout bounds how long Members scans again while processes
// keep being forked faster than a snapshot can settle and it finds no member.
const incompleteTimeout = 100 * time.Millisecond

// scan computes the members from one snapshot of /proc, and reports whether
// that snapshot was complete.
func (g *Group) scan() (members []Member, complete bool, err error) {
	t, err := proc.Snapshot()
	if err != nil {
		return nil, false, fmt.Errorf("scanning /proc for %s: %w", g.name, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s := &membership{t: t, scope: g.scope, expand: g.expand, why: map[int]Reason{}, anchors: map[int]bool{}, others: map[int]bool{}}
	var marked []int
	if g.sel != (selector{}) {
		for _, p := range t.Procs {
			if !g.scope.allows(p) {
				continue
			}
			switch m := proc.MarkerOf(p); {
			case g.sel.match(m):
				marked = append(marked, p.PID)
			case g.sel.project != "" && m.Project == g.sel.project && m.Service != "":
				s.others[p.PID] = true // another group of the project: its own, and so is what it forks
			}
		}
	}
	for _, id := range g.leaders {
		p, ok := t.Procs[id.PID]
		switch {
		case ok && p.StartTicks == id.StartTicks:
			s.anchors[id.PID] = true // a zombie leader still holds its group and session IDs
			s.add(p.PID, ByLeader)
		case !ok && s.holdsMarked(marked, id.PID):
			// The leader is gone and its PID unused. The kernel frees a PID
			// only when no process has it as PID, PGID or SID, so a group or
			// session with that ID has existed without a break since the
			// leader made it; a marked member confirms it is that one.
			s.anchors[id.PID] = true
		}
	}
	s.close()
	for _, pid := range marked {
		s.add(pid, ByMarker)
		if p := t.Procs[pid]; p.PGID == pid || p.SID == pid {
			s.anchors[pid] = true
		}
	}
	for id := range g.known {
		if p, ok := t.Procs[id.PID]; ok && p.StartTicks == id.StartTicks {
			s.add(p.PID, ByEarlierScan)
		}
	}
	s.close()
	members = make([]Member, 0, len(s.why))
	g.known = make(map[proc.Identity]bool, len(s.why))
	for pid, r := range s.why {
		p := t.Procs[pid]
		members = append(members, Member{p, r})
		g.known[p.Identity()] = true
	}
	sort.Slice(members, func(i, j int) bool { return members[i].PID < members[j].PID })
	return members, t.Complete, nil
}

// membership is one computation of a Group's members over a snapshot.
type membership struct {
	t       *proc.Table
	scope   scope
	expand  bool
	why     map[int]Reason
	anchors map[int]bool // PIDs whose process group and session count
	others  map[int]bool // marked for another group of the same project: never counted, nor their descendants
	members []int        // in the order found
}

// holdsMarked reports whether one of the marked processes is in the
// process group or session id.
func (s *membership) holdsMarked(marked []int, id int) bool {
	for _, pid := range marked {
		if p := s.t.Procs[pid]; p.PGID == id || p.SID == id {
			return true
		}
	}
	return false
}

// add counts pid for reason r unless it is out of scope, belongs to
// another group of the project (the project's supervisor is the parent of
// its services, which are not its members) or is already counted.
func (s *membership) add(pid int, r Reason) {
	if _, ok := s.why[pid]; ok || s.others[pid] || !s.scope.allows(s.t.Procs[pid]) {
		return
	}
	s.why[pid] = r
	s.members = append(s.members, pid)
}

// close adds the descendants of every member, and the members of the
// anchors' process groups and sessions, until nothing new is found.
func (s *membership) close() {
	for n := -1; n != len(s.why); {
		n = len(s.why)
		for _, pid := range s.descendants() {
			s.add(pid, ByTree)
		}
		if !s.expand || len(s.anchors) == 0 {
			continue
		}
		for _, p := range s.t.Procs {
			switch {
			case s.anchors[p.PGID]:
				s.add(p.PID, ByProcessGroup)
			case s.anchors[p.SID]:
				s.add(p.PID, BySession)
			}
		}
	}
}

// descendants returns the descendants of the members, not descending into
// processes of another group of the project.
func (s *membership) descendants() []int {
	if len(s.others) == 0 {
		return s.t.Subtree(s.members...)
	}
	var out []int
	queue := append([]int(nil), s.members...)
	seen := map[int]bool{}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range s.t.Children(pid) {
			if !seen[c] && !s.others[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// record notes that a signal reached m.
func (g *Group) record(m Member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.reached[m.Identity()]; !ok {
		g.reached[m.Identity()] = m
	}
}

// Reached returns every process a signal from Signal or Kill has reached,
// ordered by PID, with the reason it was counted when first reached.
func (g *Group) Reached() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.reached))
	for _, m := range g.reached {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// Summarize says how members were found, escapees (found only by the
// marker) by name, e.g. "5: leader 1, descendant 3, marker 1 (4711 sleep 1000)".
func Summarize(ms []Member) string {
	count := map[Reason]int{}
	var escaped []string
	for _, m := range ms {
		count[m.Why]++
		if m.Why == ByMarker {
			escaped = append(escaped, fmt.Sprintf("%d %s", m.PID, truncate(proc.Cmdline(m.PID), 40, m.Comm)))
		}
	}
	parts := []string{}
	for _, r := range []Reason{ByLeader, ByTree, ByProcessGroup, BySession, ByMarker, ByEarlierScan} {
		if count[r] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, count[r]))
		}
	}
	out := fmt.Sprintf("%d: %s", len(ms), strings.Join(parts, ", "))
	if len(escaped) > 0 {
		out += " (left the tree, group and session; found by the marker: " + strings.Join(escaped, "; ") + ")"
	}
	return out
}

func truncate(s string, n int, empty string) string {
	if s == "" {
		return empty
	}
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

func (g *Group) identities() ([]proc.Identity, error) {
	ms, err := g.Members()
	ids := make([]proc.Identity, len(ms))
	for i, m := range ms {
		ids[i] = m.Identity()
	}
	return ids, err
}

// Procs lists the PIDs in the group.
func (g *Group) Procs() ([]int, error) {
	ms, err := g.Members()
	pids := make([]int, len(ms))
	for i, m := range ms {
		pids[i] = m.PID
	}
	return pids, err
}

// signalRounds bounds how often Signal rescans for processes forked while it
// was signalling.
const signalRounds = 4

// Signal sends sig to each member through a pidfd (see proc.Identity.Signal), then
// rescans and signals members forked meanwhile, until a scan finds none new.
// It returns how many distinct processes it reached. A process it may not
// signal (EPERM) is skipped; the error is returned only if no process at all
// was reached.
func (g *Group) Signal(sig syscall.Signal) (int, error) {
	sent := map[proc.Identity]bool{}
	reached := 0
	var errs []error
	for range signalRounds {
		ms, err := g.Members()
		if err != nil {
			return reached, err
		}
		fresh := 0
		for _, m := range ms {
			id := m.Identity()
			if sent[id] {
				continue
			}
			sent[id] = true
			fresh++
			ok, err := id.Signal(sig)
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				reached++
				g.record(m)
			}
		}
		if fresh == 0 {
			break
		}
	}
	if reached == 0 && len(errs) > 0 {
		return 0, fmt.Errorf("%s: %w", g.name, errors.Join(errs...))
	}
	return reached, nil
}

// Kill sends SIGKILL to every member as Signal does, rescanning for members
// forked meanwhile, and returns without waiting for any to die. Without a
// cgroup there is no atomic cgroup.kill: a child forked by a member that
// Kill has already passed is not reached. cleanup.Kill waits and calls Kill
// again until the group is empty.
func (g *Group) Kill() error {
	_, err := g.Signal(unix.SIGKILL)
	return err
}

// WaitEmpty returns nil as soon as a scan finds no member, or ctx's error.
// Between scans it sleeps in poll(2) on the members' pidfds, which wake it
// when they exit; it rescans only then, to catch members forked meanwhile.
func (g *Group) WaitEmpty(ctx context.Context) error {
	for {
		ids, err := g.identities()
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if err := proc.WaitExited(ctx, ids); err != nil {
			if ids, _ := g.identities(); len(ids) == 0 {
				return nil
			}
			return err
		}
	}
}

// Remove removes nothing, as a fallback group has no trace beyond its
// processes, but keeps the contract: while the group has members it returns
// an error wrapping cgroup.ErrPopulated.
func (g *Group) Remove() error {
	ms, err := g.Members()
	if err != nil {
		return err
	}
	if len(ms) > 0 {
		return fmt.Errorf("%s: %d process(es) left: %w", g.name, len(ms), cgroup.ErrPopulated)
	}
	return nil
}

// Stats sums the members' counters from /proc: CPU time, resident memory (as
// MemoryCurrent; shared pages count once per process) and threads.
func (g *Group) Stats() (cgroup.Stats, error) {
	ms, err := g.Members()
	if err != nil {
		return cgroup.Stats{}, err
	}
	s := cgroup.Stats{Procs: len(ms), HasMemory: len(ms) > 0, MemoryEstimated: true}
	page := uint64(os.Getpagesize())
	for _, m := range ms {
		s.CPUUsage += time.Duration(m.UTime+m.STime) * time.Second / proc.ClockTicks
		s.MemoryCurrent += uint64(max(m.RSSPages, 0)) * page
		s.TasksCurrent += uint64(m.Threads)
	}
	return s, nil
}
