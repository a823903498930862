// Package cleanup stops groups of processes and reports what it took.
package cleanup

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
)

// GroupResult says how one group was stopped.
type GroupResult struct {
	Name      string
	Signalled int  // processes the stop signal reached
	Forced    bool // cgroup.kill was needed: the grace ran out, or the stop was forced
	// ForcedBy says who forced the kill when it was not the grace running
	// out: ForcedByFlag or ForcedBySignal (set by Stop); "" otherwise.
	ForcedBy string
	Killed   int           // processes still in the group when Drain killed it (when Forced)
	Took     time.Duration // from the stop signal to an empty group
}

// What forced a kill before its grace ran out (GroupResult.ForcedBy).
const (
	ForcedByFlag   = "--force"         // no grace at all: cgroup.kill at once
	ForcedBySignal = "a second signal" // Hurry closed during the grace
)

// StopGroup sends sig to every process in g, waits until g is empty or grace
// has passed (returning the moment it is empty), then kills whatever is left,
// waits for the group to drain and removes it. A grace of 0 kills at once.
func StopGroup(ctx context.Context, g cgroup.Group, sig syscall.Signal, grace time.Duration) (GroupResult, error) {
	start := time.Now()
	signalled := 0
	if grace > 0 {
		n, err := SignalGroup(g, sig)
		if err != nil {
			return GroupResult{Name: g.Name()}, err
		}
		signalled = n
	}
	res, err := Drain(ctx, g, start, grace)
	res.Signalled = signalled
	return res, err
}

// SignalGroup sends sig to every process in g, then SIGCONT, as systemd
// does: a stopped process (Ctrl-Z, SIGTTIN) would otherwise keep the signal
// pending and sit out the whole grace period.
func SignalGroup(g cgroup.Group, sig syscall.Signal) (int, error) {
	n, err := g.Signal(sig)
	if err == nil && sig != syscall.SIGKILL && sig != syscall.SIGCONT {
		g.Signal(syscall.SIGCONT)
	}
	return n, err
}

// Drain is the second half of StopGroup, for callers that signal several
// groups first and then drain them all concurrently: it waits until g is
// empty or grace has passed (returning the moment it is empty, without
// polling), then cgroup.kills whatever is left, waits for the group to drain
// and removes it. Took is measured from signalled, when the stop signal went
// out. A grace of 0 kills at once. ctx ending ends the grace only: what is
// left is then killed, and the kill still waited for (Kill's own bound), so
// that a cancelled stop is a quicker one, never a half-done one.
func Drain(ctx context.Context, g cgroup.Group, signalled time.Time, grace time.Duration) (GroupResult, error) {
	res := GroupResult{Name: g.Name()}
	if grace > 0 {
		if err := waitEmpty(ctx, g, grace); err == nil {
			res.Took = time.Since(signalled)
			return res, removeGroup(g)
		}
	}
	res.Forced = true
	left, _ := g.Procs()
	res.Killed = len(left)
	if err := Kill(context.WithoutCancel(ctx), g); err != nil {
		return res, err
	}
	res.Took = time.Since(signalled)
	return res, removeGroup(g)
}

// killTimeout bounds Kill. SIGKILL cannot be ignored, but a process in
// uninterruptible sleep can take a moment to die, and a group without a
// cgroup can keep producing children for a while.
const killTimeout = 10 * time.Second

// Kill SIGKILLs everything in g and waits until it is empty (at most 10 s).
// Group.Kill reaches what is in the group when it is called: a cgroup's
// kill takes forks in flight too, but without a cgroup a child that a dying
// member forked after Group.Kill saw the group is missed. So Kill repeats:
// SIGKILL, a wait for the group to empty (a round of 100 ms, doubling up to
// 1 s), SIGKILL to what is left, and so on. A cgroup is normally empty
// within the first round.
func Kill(ctx context.Context, g cgroup.Group) error {
	ctx, cancel := context.WithTimeout(ctx, killTimeout)
	defer cancel()
	for round := 100 * time.Millisecond; ; round = min(2*round, time.Second) {
		if err := g.Kill(); err != nil {
			return err
		}
		err := waitEmpty(ctx, g, round)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			pids, _ := g.Procs()
			return fmt.Errorf("%s: %d process(es) survived SIGKILL: %v", g.Name(), len(pids), pids)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
}

func waitEmpty(ctx context.Context, g cgroup.Group, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return g.WaitEmpty(ctx)
}

func removeGroup(g cgroup.Group) error {
	if err := g.Remove(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", g.Name(), err)
	}
	return nil
}
