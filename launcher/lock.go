package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cgdev/cgdev/internal/proc"
	"golang.org/x/sys/unix"
)

// LockHolder is who holds a project's lock, as the holder wrote itself
// into .cgdev/lock once it had it.
type LockHolder struct {
	PID     int       `json:"pid"`
	Start   uint64    `json:"start"` // its start time (/proc/PID/stat): a recycled PID does not match
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

// String is "PID 1234 (cgdev stop) since 08:10:02".
func (h *LockHolder) String() string {
	return fmt.Sprintf("PID %d (%s) since %s", h.PID, h.Command, h.Since.Format("15:04:05"))
}

// openLock opens .cgdev/<name> for flock, creating it, and read-only on a
// read-only file system (flock needs no write access).
func (p *Project) openLock(name string) (*os.File, error) {
	d, err := p.stateDir(true)
	if err != nil {
		return nil, fmt.Errorf("opening the lock: %w", err)
	}
	defer d.Close()
	f, err := d.Open(name, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, unix.EROFS) {
		f, err = d.Open(name, os.O_RDONLY, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the lock: %w", err)
	}
	return f, nil
}

// holderLimit bounds what is read of the lock file: a holder writes about 150 bytes.
const holderLimit = 4096

// LockWait is Lock for a command a user waits on. When the lock is not
// free within patience, waiting is called once with who holds it: nil when
// that is unknown (the holder wrote nothing, or what the file says names a
// process that is gone: the kernel drops a dead holder's flock, so that is
// someone else). When ctx ends first, LockWait returns an error wrapping
// context.Cause(ctx), the lock not taken.
func (p *Project) LockWait(ctx context.Context, patience time.Duration, waiting func(*LockHolder)) (unlock func(), err error) {
	f, err := p.openLock("lock")
	if err != nil {
		return nil, err
	}
	if err := flockWait(ctx, f, patience, waiting); err != nil {
		return nil, err
	}
	writeHolder(f)
	return func() {
		f.Truncate(0) // no holder: a reader finds nothing to name
		f.Close()
	}, nil
}

// flockWait takes an exclusive flock on f, or closes f. The blocking flock
// runs in a goroutine, so that the kernel hands the lock over the moment
// it is free and the wait can still end with ctx; a goroutine left behind
// closes f when its flock returns (releasing the lock it may have got).
func flockWait(ctx context.Context, f *os.File, patience time.Duration, waiting func(*LockHolder)) error {
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		return nil
	}
	got := make(chan error) // unbuffered: a result nobody takes is the goroutine's to clean up
	abandoned := make(chan struct{})
	go func() {
		err := lockExclusive(f)
		select {
		case got <- err:
		case <-abandoned:
			f.Close()
		}
	}()
	tell := time.NewTimer(patience)
	defer tell.Stop()
	for {
		select {
		case err := <-got:
			if err != nil {
				f.Close()
			}
			return err
		case <-tell.C:
			if waiting != nil {
				waiting(readHolder(f))
			}
		case <-ctx.Done():
			close(abandoned)
			return fmt.Errorf("waiting for %s: %w", f.Name(), context.Cause(ctx))
		}
	}
}

// lockExclusive takes an exclusive flock on f, waiting for it.
func lockExclusive(f *os.File) error {
	if err := flock(f, unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return nil
}

// writeHolder writes this process into the lock file f, which it holds.
// A lock opened read-only (a read-only project) says nothing.
func writeHolder(f *os.File) {
	self, err := proc.ReadProc(os.Getpid())
	if err != nil {
		return
	}
	command := strings.Join(append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...), " ")
	if len(command) > 200 {
		command = command[:200] + "…"
	}
	b, err := json.Marshal(LockHolder{PID: self.PID, Start: self.StartTicks, Command: command, Since: time.Now()})
	if err != nil || f.Truncate(0) != nil {
		return
	}
	f.WriteAt(append(b, '\n'), 0)
}

// readHolder returns who the lock file f says holds it, or nil when it says
// nothing readable or names a process that is gone.
func readHolder(f *os.File) *LockHolder {
	b := make([]byte, holderLimit)
	n, _ := f.ReadAt(b, 0)
	var h LockHolder
	if json.Unmarshal(b[:n], &h) != nil || h.PID <= 0 {
		return nil
	}
	if !(proc.Identity{PID: h.PID, StartTicks: h.Start}).Alive() {
		return nil
	}
	return &h
}
