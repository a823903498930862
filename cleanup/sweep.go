package cleanup

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgdev/cgdev/internal/proc"
	"golang.org/x/sys/unix"
)

// Orphan is a process of the project found outside its groups.
type Orphan struct {
	proc.Identity
	Cmdline string
	Why     string // what tied it to the project
	Killed  bool   // it outlived the grace period and got SIGKILL
}

// sweepRounds bounds how often the sweep looks again for orphans that the
// previous round's orphans forked meanwhile.
const sweepRounds = 3

// orphanScan is what one scan for orphans found.
type orphanScan struct {
	found []Orphan
	err   error
}

// scanOrphans is the sweep's first scan, run while the groups drain: it
// skips the processes that were in the groups when the stop began (they die
// with them; with --force the kernel is killing them meanwhile, and they
// would only be read as zombies), and what it finds is kept only if it is
// still alive once the groups are empty (sweep).
func scanOrphans(opt StopOptions, protected map[int]bool, members map[int]string) orphanScan {
	skip := maps.Clone(protected)
	for pid := range members {
		skip[pid] = true
	}
	found, err := findOrphans(opt, skip, true)
	return orphanScan{found, err}
}

// sweep is phase 3: it signals the project's orphans, waits up to the grace
// period for them to exit, SIGKILLs the rest, and looks again. Its first
// round takes first, a scan made while the groups drained, keeping what is
// still alive: a process forked by a member meanwhile died with its group.
// clean says that its last scan found no orphan: no process of the project
// is left outside its groups.
func sweep(ctx context.Context, opt StopOptions, protected map[int]bool, first orphanScan, r *reporter) (all []Orphan, clean bool) {
	first.found = slices.DeleteFunc(first.found, func(o Orphan) bool { return !o.Alive() })
	scanErr := first.err
	for round := 0; round < sweepRounds && scanErr == nil; round++ {
		found := first.found
		if round > 0 {
			found, scanErr = findOrphans(opt, protected, true)
			if scanErr != nil {
				break
			}
		}
		if len(found) == 0 {
			clean = true
			break
		}
		stopOrphans(ctx, found, opt)
		all = append(all, found...)
	}
	if scanErr != nil && len(all) == 0 {
		r.phase(3, "orphan sweep: FAILED: %v", scanErr)
		return nil, false
	}
	if len(all) == 0 {
		r.phase(3, "orphan sweep: no process of this project outside its groups")
		return nil, clean
	}
	var parts []string
	killed := 0
	for _, o := range all {
		parts = append(parts, fmt.Sprintf("%d %q (%s)", o.PID, truncate(o.Cmdline, 60), o.Why))
		if o.Killed {
			killed++
		}
	}
	failed := ""
	if scanErr != nil {
		failed = fmt.Sprintf("; then FAILED: %v", scanErr)
	}
	r.phase(3, "orphan sweep: stopped %d process(es) (%d needed SIGKILL): %s%s", len(all), killed, strings.Join(parts, ", "), failed)
	return all, clean
}

// stopOrphans signals found (SIGTERM, or SIGKILL with --force), waits up to
// the orphans' grace for them to exit (less when opt.Hurry closes), and
// SIGKILLs those left.
func stopOrphans(ctx context.Context, found []Orphan, opt StopOptions) {
	sig, grace := unix.SIGTERM, opt.OrphanGrace
	if opt.Force || opt.hurried() {
		sig, grace = unix.SIGKILL, 0
	}
	for i := range found {
		found[i].Identity.Signal(sig)
	}
	graceCtx, cancel := opt.graceContext(ctx)
	defer cancel()
	if !waitGone(graceCtx, found, grace) {
		for i := range found {
			if found[i].Alive() {
				found[i].Killed = true
				found[i].Identity.Signal(unix.SIGKILL)
			}
		}
		waitGone(ctx, found, 5*time.Second)
	}
}

// waitGone waits until none of procs is alive, at most d, and reports
// whether none is.
func waitGone(ctx context.Context, procs []Orphan, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	ids := make([]proc.Identity, len(procs))
	for i, p := range procs {
		ids[i] = p.Identity
	}
	return proc.WaitExited(ctx, ids) == nil
}

// findOrphans lists the processes of this user that belong to the project:
// those carrying its CGDEV_PROJECT marker (and, for a partial stop, the
// CGDEV_SERVICE of a stopped service), and with patterns (full stop only)
// those that carry no cgdev marker at all (no other project's service, no
// cgdev run), whose command matches one of opt.Patterns and whose working
// directory is inside the project. The protected PIDs (cgdev and its
// ancestors) are never listed.
//
// It reads two files per process (stat, then environ; zombies and kernel
// threads have an empty one), and more only for candidates, and lists /proc
// again for processes forked meanwhile (proc.Scan): on a host with a
// thousand processes the scan costs a few milliseconds.
func findOrphans(opt StopOptions, protected map[int]bool, withPatterns bool) ([]Orphan, error) {
	c := classifier{opt: opt, skip: protected, uid: os.Getuid(), stopping: map[string]bool{}}
	for _, s := range opt.Services {
		c.stopping[s] = true
	}
	c.patterns = withPatterns && len(opt.Services) == 0 && len(opt.Patterns) > 0
	var out []Orphan
	_, err := proc.Scan(cmp.Or(opt.procDir, "/proc"), func(pids []int) int {
		found, exited := c.classifyAll(pids)
		out = append(out, found...)
		return exited
	})
	if err != nil {
		return nil, fmt.Errorf("listing the processes: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out, nil
}

// classifyAll classifies pids, with a few workers: the reads are system
// calls, which they overlap. It also says how many of pids had exited.
func (c *classifier) classifyAll(pids []int) (orphans []Orphan, exited int) {
	c.exited.Store(0)
	workers := min(max(runtime.GOMAXPROCS(0), 2), 8, len(pids))
	found := make([][]Orphan, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(pids); i += workers {
				if o, ok := c.classify(pids[i]); ok {
					found[w] = append(found[w], o)
				}
			}
		}()
	}
	wg.Wait()
	for _, f := range found {
		orphans = append(orphans, f...)
	}
	return orphans, int(c.exited.Load())
}

// classifier decides, for one process, whether it is an orphan of the project.
type classifier struct {
	opt      StopOptions
	skip     map[int]bool
	uid      int
	stopping map[string]bool
	patterns bool
	// afterMarker, when set (by tests), runs between reading a process's
	// marker and confirming its identity.
	afterMarker func(pid int)
	exited      atomic.Int64 // processes found gone, or zombies, by classify
}

// classify reads pid's identity first, then what ties it to the project
// (marker, command line, working directory), then checks that the identity
// is still alive: had the PID been recycled between the reads, the marker
// or command read might be another process's than the identity recorded.
func (c *classifier) classify(pid int) (Orphan, bool) {
	if c.skip[pid] {
		return Orphan{}, false
	}
	p, err := proc.ReadProc(pid)
	if err != nil || p.State == 'Z' {
		c.exited.Add(1)
		return Orphan{}, false
	}
	if p.UID != c.uid {
		return Orphan{}, false
	}
	why := ""
	m := proc.MarkerOf(p)
	if c.afterMarker != nil {
		c.afterMarker(pid)
	}
	switch {
	case m.Project != "" && m.Project == c.opt.Project:
		if len(c.stopping) > 0 && !c.stopping[m.Service] {
			return Orphan{}, false
		}
		why = proc.ProjectEnv + " marker, service " + m.Service
	case m != proc.Marker{}:
		// Another project's service or a cgdev run: someone else's, however
		// its command line reads and wherever it runs.
		return Orphan{}, false
	case c.patterns:
		why = matchPattern(c.opt, pid)
	}
	if why == "" {
		return Orphan{}, false
	}
	cmdline := proc.Cmdline(pid)
	if !p.Identity().Alive() {
		return Orphan{}, false // exited, or its PID now names another process
	}
	return Orphan{Identity: p.Identity(), Cmdline: cmdline, Why: why}, true
}

// matchPattern returns why pid matches a pattern inside the project, or "".
func matchPattern(opt StopOptions, pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	cmd := command(strings.Split(string(b), "\x00"))
	if cmd == "" {
		return ""
	}
	for _, re := range opt.Patterns {
		if matchesCommand(re, cmd) && proc.Within(proc.Cwd(pid), opt.Dir) {
			return fmt.Sprintf("matches %q, working directory in the project", re)
		}
	}
	return ""
}

// matchesCommand reports whether re matches cmd from its first character:
// "vitest" matches the command "vitest run" but not "vim vitest.config.ts".
func matchesCommand(re *regexp.Regexp, cmd string) bool {
	loc := re.FindStringIndex(cmd)
	return loc != nil && loc[0] == 0
}

// interpreters run the program named by their first argument that is not an
// option: for them the command is that program's.
var interpreters = map[string]bool{
	"node": true, "nodejs": true, "bun": true, "deno": true,
	"python": true, "python3": true, "sh": true, "bash": true, "dash": true,
}

// scriptExts are the extensions an interpreted program's name loses.
var scriptExts = map[string]bool{".js": true, ".cjs": true, ".mjs": true, ".ts": true, ".mts": true, ".cts": true, ".py": true, ".sh": true}

// command returns what the orphan patterns are matched against, given a
// process's argv: the base name of the program and its arguments, joined by
// spaces. The program is argv[0], or for an interpreter (node, python, sh,
// ...) its first argument that does not start with '-', and so on when
// that is an interpreter too: `node /x/node_modules/.bin/vitest run` gives
// "vitest run", `sh -c "node x/vitest"` gives "vitest"; a script's extension
// is dropped (`node pnpm.cjs` is pnpm). An argument holding
// spaces is split into words first: a process title (npm rewrites its argv
// to "npm run dev") or an `sh -c` script.
func command(argv []string) string {
	var words []string
	for _, a := range argv {
		words = append(words, strings.Fields(a)...)
	}
	if len(words) == 0 {
		return ""
	}
	prog := 0
	for interpreters[path.Base(words[prog])] {
		next := prog + 1
		for next < len(words) && strings.HasPrefix(words[next], "-") {
			next++
		}
		if next == len(words) {
			break // the interpreter alone, or with options only
		}
		prog = next
	}
	name := path.Base(words[prog])
	if ext := path.Ext(name); prog > 0 && scriptExts[ext] {
		name = strings.TrimSuffix(name, ext) // pnpm.cjs is pnpm
	}
	return strings.Join(append([]string{name}, words[prog+1:]...), " ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
