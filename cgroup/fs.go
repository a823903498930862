package cgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Dir is a cgroup2 directory. Each method is one read or write of its
// interface files; Dir holds no state beyond the path.
type Dir string

// Procs lists the PIDs in d and every sub-cgroup of d.
func (d Dir) Procs() ([]int, error) {
	var pids []int
	err := filepath.WalkDir(string(d), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			if removed(err) {
				return nil
			}
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing processes of %s: %w", d, err)
	}
	return pids, nil
}

// Signal sends sig to each process in d and returns how many it reached.
func (d Dir) Signal(sig syscall.Signal) (int, error) {
	pids, err := d.Procs()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, pid := range pids {
		if unix.Kill(pid, sig) == nil {
			n++
		}
	}
	return n, nil
}

// Kill writes "1" to cgroup.kill, which SIGKILLs every process in d and its
// sub-cgroups, forks in flight included. Kernels before 5.14 lack the file; then
// d is frozen, each process killed, and thawed.
func (d Dir) Kill() error {
	err := os.WriteFile(filepath.Join(string(d), "cgroup.kill"), []byte("1"), 0)
	if err == nil || errors.Is(err, unix.ENODEV) || errors.Is(err, fs.ErrNotExist) && !d.exists() {
		return nil // killed, or removed (a cgroup is removed only once empty)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("killing %s: %w", d, err)
	}
	return d.freezeAndKill()
}

func (d Dir) freezeAndKill() error {
	freeze := filepath.Join(string(d), "cgroup.freeze")
	if err := os.WriteFile(freeze, []byte("1"), 0); err != nil {
		return fmt.Errorf("freezing %s: %w", d, err)
	}
	defer os.WriteFile(freeze, []byte("0"), 0)
	_, err := d.Signal(unix.SIGKILL)
	return err
}

func (d Dir) exists() bool {
	_, err := os.Stat(string(d))
	return err == nil
}

// Populated reads "populated" from cgroup.events: whether d or a descendant
// holds a live process. A removed directory is not populated.
func (d Dir) Populated() (bool, error) {
	v, err := d.readKey("cgroup.events", "populated")
	if removed(err) {
		return false, nil
	}
	return v == 1, err
}

// removed reports whether err, from a file of a cgroup, says the cgroup is
// gone (ENOENT) or being destroyed: then its files, still reachable by an
// open or a descriptor from before, answer ENODEV. A cgroup is removed only
// once empty, and a systemd scope is collected by the manager the moment it
// empties, often while cgdev is still looking at it.
func removed(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENODEV)
}

// WaitEmpty returns as soon as cgroup.events says "populated 0". It sleeps in
// poll(2) on that file, which the kernel wakes (POLLPRI) on every change: no
// polling interval, no fixed sleep. (poll rather than inotify: closing an
// inotify instance waits for an RCU grace period, ~15 ms on a busy machine.)
func (d Dir) WaitEmpty(ctx context.Context) error {
	events := filepath.Join(string(d), "cgroup.events")
	fd, err := unix.Open(events, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if removed(err) {
		return nil // removed, hence empty
	}
	if err != nil {
		return fmt.Errorf("watching %s: %w", events, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 256)
	for {
		n, err := unix.Pread(fd, buf, 0)
		if removed(err) {
			return nil // the cgroup was removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", events, err)
		}
		if !populatedIn(buf[:n]) {
			return nil
		}
		if err := pollPri(ctx, fd); err != nil {
			return err
		}
	}
}

// pollPri waits until fd signals POLLPRI or POLLERR, or ctx ends (checked at
// least every 100 ms when ctx has no deadline).
func pollPri(ctx context.Context, fd int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	timeout := 100
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, int(time.Until(dl)/time.Millisecond)+1)
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI | unix.POLLERR}}
	if _, err := unix.Poll(fds, max(timeout, 0)); err != nil && !errors.Is(err, unix.EINTR) {
		return fmt.Errorf("poll: %w", err)
	}
	return nil
}

func populatedIn(events []byte) bool {
	for _, line := range strings.Split(string(events), "\n") {
		if v, ok := strings.CutPrefix(line, "populated "); ok {
			return v == "1"
		}
	}
	return false
}

// Remove deletes d and its sub-cgroups, deepest first. A cgroup whose last
// process has exited may stay busy for a moment while the kernel releases it;
// Remove retries EBUSY for up to a second.
func (d Dir) Remove() error {
	var dirs []string
	err := filepath.WalkDir(string(d), func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := rmdirRetry(dirs[i]); err != nil {
			return fmt.Errorf("removing cgroup %s: %w", dirs[i], err)
		}
	}
	return nil
}

func rmdirRetry(p string) error {
	deadline := time.Now().Add(time.Second)
	for delay := 100 * time.Microsecond; ; delay *= 2 {
		err := unix.Rmdir(p)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(min(delay, 20*time.Millisecond))
	}
}

// Stats reads d's counters. Files a controller would provide are skipped when
// the controller is not enabled.
func (d Dir) Stats() (Stats, error) {
	var s Stats
	pids, err := d.Procs()
	if err != nil {
		return s, err
	}
	s.Procs = len(pids)
	if usec, err := d.readKey("cpu.stat", "usage_usec"); err == nil {
		s.CPUUsage = time.Duration(usec) * time.Microsecond
	}
	if v, err := d.readUint("memory.current"); err == nil {
		s.HasMemory, s.MemoryCurrent = true, v
	}
	if v, err := d.readUint("memory.peak"); err == nil {
		s.MemoryPeak = v
	}
	if b, err := os.ReadFile(filepath.Join(string(d), "memory.max")); err == nil {
		s.MemoryMax = parseMax(strings.TrimSpace(string(b)))
	}
	if v, err := d.readKey("memory.events", "oom_kill"); err == nil {
		s.OOMKills = v
	}
	if v, err := d.readUint("pids.current"); err == nil {
		s.TasksCurrent = v
	}
	return s, nil
}

// ReadFile returns the trimmed content of one interface file of d.
func (d Dir) ReadFile(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(string(d), name))
	return strings.TrimSpace(string(b)), err
}

// WriteFile writes value to one interface file of d.
func (d Dir) WriteFile(name, value string) error {
	if err := os.WriteFile(filepath.Join(string(d), name), []byte(value), 0); err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, filepath.Join(string(d), name), err)
	}
	return nil
}

func parseMax(s string) int64 {
	if s == "max" {
		return Infinity
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func (d Dir) readUint(name string) (uint64, error) {
	s, err := d.ReadFile(name)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

// readKey reads the value of key from a flat-keyed file such as cgroup.events.
func (d Dir) readKey(name, key string) (uint64, error) {
	f, err := os.Open(filepath.Join(string(d), name))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if k == key {
			return strconv.ParseUint(v, 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading %s: %w", filepath.Join(string(d), name), err)
	}
	return 0, fmt.Errorf("%s: no key %q", filepath.Join(string(d), name), key)
}
