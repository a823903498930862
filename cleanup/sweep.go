package cleanup

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cgdev/cgdev/fallback"
	"golang.org/x/sys/unix"
)

// Orphan is a process of the project found outside its groups.
type Orphan struct {
	fallback.Identity
	Cmdline string
	Why     string // what tied it to the project
	Killed  bool   // it outlived the grace period and got SIGKILL
}

// sweepRounds bounds how often the sweep looks again for orphans that the
// previous round's orphans forked meanwhile.
const sweepRounds = 3

// sweep is phase 3: it signals the project's orphans, waits up to the grace
// period for them to exit, SIGKILLs the rest, and looks again.
func sweep(ctx context.Context, opt StopOptions, r *reporter) []Orphan {
	var all []Orphan
	for round := 0; round < sweepRounds; round++ {
		found := findOrphans(opt, true)
		if len(found) == 0 {
			break
		}
		sig, grace := unix.SIGTERM, opt.OrphanGrace
		if opt.Force {
			sig, grace = unix.SIGKILL, 0
		}
		for i := range found {
			found[i].Identity.Signal(sig)
		}
		if !waitGone(ctx, found, grace) {
			for i := range found {
				if found[i].Alive() {
					found[i].Killed = true
					found[i].Identity.Signal(unix.SIGKILL)
				}
			}
			waitGone(ctx, found, 5*time.Second)
		}
		all = append(all, found...)
	}
	if len(all) == 0 {
		r.phase(3, "orphan sweep: no process of this project outside its groups")
		return nil
	}
	var parts []string
	killed := 0
	for _, o := range all {
		parts = append(parts, fmt.Sprintf("%d %q (%s)", o.PID, truncate(o.Cmdline, 60), o.Why))
		if o.Killed {
			killed++
		}
	}
	r.phase(3, "orphan sweep: stopped %d process(es) (%d needed SIGKILL): %s", len(all), killed, strings.Join(parts, ", "))
	return all
}

// waitGone waits until none of procs is alive, at most d. Orphans are rare
// (a cgroup holds everything its services fork), so a short poll suffices.
func waitGone(ctx context.Context, procs []Orphan, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		alive := false
		for _, p := range procs {
			if p.Alive() {
				alive = true
				break
			}
		}
		if !alive {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// findOrphans lists the processes of this user that belong to the project:
// those carrying its CGDEV_PROJECT marker (and, for a partial stop, the
// CGDEV_SERVICE of a stopped service), and with patterns (full stop only)
// those whose command line matches one of opt.Patterns and whose working
// directory is inside the project. cgdev and its ancestors are never listed.
//
// It reads one file per process (environ; zombies and kernel threads have an
// empty one), and more only for candidates: on a host with a thousand
// processes the scan costs a few milliseconds.
func findOrphans(opt StopOptions, withPatterns bool) []Orphan {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	skip := protected()
	uid := os.Getuid()
	stopping := map[string]bool{}
	for _, s := range opt.Services {
		stopping[s] = true
	}
	patterns := withPatterns && len(opt.Services) == 0 && len(opt.Patterns) > 0
	var out []Orphan
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || skip[pid] {
			continue
		}
		why := ""
		if m := fallback.ReadMarker(pid); m.Project != "" && m.Project == opt.Project {
			if len(stopping) > 0 && !stopping[m.Service] {
				continue
			}
			why = fallback.ProjectEnv + " marker, service " + m.Service
		} else if patterns {
			why = matchPattern(opt, pid)
		}
		if why == "" {
			continue
		}
		p, err := fallback.ReadProc(pid)
		if err != nil || p.UID != uid || p.State == 'Z' {
			continue
		}
		out = append(out, Orphan{Identity: p.Identity(), Cmdline: fallback.Cmdline(pid), Why: why})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// protected returns cgdev's PID and those of its ancestors: never swept.
func protected() map[int]bool {
	p := map[int]bool{0: true, 1: true}
	for pid := os.Getpid(); pid > 1 && !p[pid]; {
		p[pid] = true
		pr, err := fallback.ReadProc(pid)
		if err != nil {
			break
		}
		pid = pr.PPID
	}
	return p
}

// matchPattern returns why pid matches a pattern inside the project, or "".
func matchPattern(opt StopOptions, pid int) string {
	cmdline := fallback.Cmdline(pid)
	if cmdline == "" {
		return ""
	}
	for _, re := range opt.Patterns {
		if re.MatchString(cmdline) && fallback.Within(fallback.Cwd(pid), opt.Dir) {
			return fmt.Sprintf("matches %q, working directory in the project", re)
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
