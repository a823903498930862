package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// interruptSignals are what ends or hurries a command: Ctrl-C, a kill's
// default, a closed terminal.
var interruptSignals = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP}

// caughtSignal is the cause of a context that interruptible ended.
type caughtSignal struct{ sig syscall.Signal }

func (c caughtSignal) Error() string { return unix.SignalName(c.sig) + " received" }

// exitCode is 128+n, the status of a command abandoned on signal n.
func (c caughtSignal) exitCode() int { return 128 + int(c.sig) }

// interruptible returns a context cancelled by SIGINT, SIGTERM or SIGHUP,
// with a caughtSignal as its cause (context.Cause). Until the cancel
// function is called, later signals are caught too, and ignored.
func interruptible() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, interruptSignals...)
	go func() {
		select {
		case s := <-ch:
			cancel(caughtSignal{s.(syscall.Signal)})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(context.Canceled)
	}
}

// stopSignals keeps SIGINT, SIGTERM and SIGHUP from ending cgdev half-way
// through a stop (services signalled, not yet waited for, nothing
// verified): the first is noted on stderr and the stop goes on; the second
// closes Hurry, which ends the graces still running as --force would (what
// is left is killed at once) and leaves the sweep, compose down and verify
// to run; later ones are ignored.
type stopSignals struct {
	ch     chan os.Signal
	hurry  chan struct{}
	done   chan struct{} // closed by release
	ended  chan struct{} // closed when watch returns
	stderr io.Writer
	count  int            // signals so far, the one that asked for the stop included
	first  syscall.Signal // the first received here, 0 for none
}

// holdStopSignals starts holding the signals off a stop. asked says that a
// signal already asked for this stop (up's Ctrl-C): it is noted now, and
// the next one hurries the stop.
func holdStopSignals(stderr io.Writer, asked bool) *stopSignals {
	s := &stopSignals{ch: make(chan os.Signal, 2), hurry: make(chan struct{}), done: make(chan struct{}), ended: make(chan struct{}), stderr: stderr}
	signal.Notify(s.ch, interruptSignals...)
	if asked {
		s.note()
	}
	go s.watch()
	return s
}

// Hurry is closed by the second signal.
func (s *stopSignals) Hurry() <-chan struct{} { return s.hurry }

func (s *stopSignals) watch() {
	defer close(s.ended)
	for {
		select {
		case sig := <-s.ch:
			if s.first == 0 {
				s.first = sig.(syscall.Signal)
			}
			s.note()
		case <-s.done:
			return
		}
	}
}

// note counts a signal and says what it does.
func (s *stopSignals) note() {
	s.count++
	switch s.count {
	case 1:
		fmt.Fprintln(s.stderr, "cgdev: stopping; press Ctrl-C again to force")
	case 2:
		fmt.Fprintln(s.stderr, "cgdev: forcing: what is left is killed now (the stop still verifies)")
		close(s.hurry)
	}
}

// release stops holding the signals off (their default, ending cgdev,
// returns unless something else catches them) and returns the first one
// received since holdStopSignals, 0 for none.
func (s *stopSignals) release() syscall.Signal {
	signal.Stop(s.ch)
	close(s.done)
	<-s.ended
	return s.first
}
