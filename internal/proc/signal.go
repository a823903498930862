package proc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Signal sends sig to the process id names, and only to it: the process is
// pinned with a pidfd first, then its start time is read again, so a PID that
// was recycled after id was recorded is never signalled. Kernels without
// pidfds (before 5.3) get kill(2) after the same check, which leaves only the
// microseconds between check and kill open.
//
// It returns false (and no error) when id no longer names a live process.
func (id Identity) Signal(sig syscall.Signal) (bool, error) {
	var w exitWatch
	defer w.close()
	return w.signal(id, sig)
}

// WaitExited returns nil once every process in ids has exited (or was
// already gone), or ctx's error. It sleeps in poll(2) on the processes'
// pidfds, which the kernel makes readable when each exits: no polling
// interval, no fixed sleep.
func WaitExited(ctx context.Context, ids []Identity) error {
	w := watchExits(ids)
	defer w.close()
	return w.wait(ctx)
}

// exitWatch holds pidfds of processes to wait for. poll(2) reports a pidfd
// readable when its process has exited, so waiting costs no polling loop.
type exitWatch struct {
	fds []unix.PollFd
	// unpinned are live processes whose pidfd could not be opened (a kernel
	// before 5.3, or no file descriptor left); they are re-checked by reading /proc.
	unpinned []Identity
}

// watchExits watches each id that is still the same live process.
func watchExits(ids []Identity) *exitWatch {
	w := &exitWatch{}
	for _, id := range ids {
		w.pin(id)
	}
	return w
}

// pin adds id to the watch if it still names a live process, and reports
// whether it does. The pidfd is opened before the start time is compared,
// so the fd refers to id's process and no other, even if the PID is reused
// right after. fd is -1 when the process is live but unpinned.
func (w *exitWatch) pin(id Identity) (fd int, live bool) {
	fd, err := unix.PidfdOpen(id.PID, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return -1, false
	case err != nil:
		if !id.Alive() {
			return -1, false
		}
		w.unpinned = append(w.unpinned, id)
		return -1, true
	case !id.Alive():
		unix.Close(fd)
		return -1, false
	}
	w.fds = append(w.fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	return fd, true
}

// signal pins id, sends it sig and keeps watching it. See Identity.Signal.
func (w *exitWatch) signal(id Identity, sig syscall.Signal) (bool, error) {
	if id.PID <= 1 {
		return false, fmt.Errorf("refusing to signal PID %d", id.PID)
	}
	fd, live := w.pin(id)
	if !live {
		return false, nil
	}
	var err error
	if fd >= 0 {
		err = unix.PidfdSendSignal(fd, sig, nil, 0)
	} else {
		err = unix.Kill(id.PID, sig) // checked by pin microseconds ago
	}
	if errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("signalling PID %d: %w", id.PID, err)
	}
	return true, nil
}

// wait returns nil when every watched process has exited, or ctx's error
// when ctx is done first. It sleeps in poll(2); without a deadline it still
// wakes every 100 ms to notice a cancelled ctx, and every 10 ms while some
// process is unpinned.
func (w *exitWatch) wait(ctx context.Context) error {
	for len(w.fds) > 0 || len(w.unpinned) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		timeout := 100 * time.Millisecond
		if len(w.unpinned) > 0 {
			timeout = 10 * time.Millisecond
		}
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		n, err := unix.Poll(w.fds, max(int(timeout/time.Millisecond), 0)+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll on pidfds: %w", err)
		}
		if n > 0 {
			w.dropExited()
		}
		w.unpinned = slices.DeleteFunc(w.unpinned, func(id Identity) bool { return !id.Alive() })
	}
	return nil
}

func (w *exitWatch) dropExited() {
	live := w.fds[:0]
	for _, p := range w.fds {
		if p.Revents != 0 {
			unix.Close(int(p.Fd))
			continue
		}
		p.Revents = 0
		live = append(live, p)
	}
	w.fds = live
}

func (w *exitWatch) close() {
	for _, p := range w.fds {
		unix.Close(int(p.Fd))
	}
	w.fds = nil
}
