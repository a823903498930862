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
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENODEV) {
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
	if err == nil || errors.Is(err, fs.ErrNotExist) && !d.exists() {
		return nil
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
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return v == 1, err
}

// WaitEmpty returns as soon as cgroup.events says "populated 0". It sleeps in
// poll(2) on an inotify watch of that file, which the kernel touches on every
// change: no polling interval, no fixed sleep.
func (d Dir) WaitEmpty(ctx context.Context) error {
	in, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	defer unix.Close(in)
	events := filepath.Join(string(d), "cgroup.events")
	if _, err := unix.InotifyAddWatch(in, events, unix.IN_MODIFY|unix.IN_DELETE_SELF|unix.IN_IGNORED); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // removed, hence empty
		}
		return fmt.Errorf("watching %s: %w", events, err)
	}
	buf := make([]byte, 4096)
	for {
		populated, err := d.Populated()
		if err != nil || !populated {
			return err
		}
		timeout := -1
		if dl, ok := ctx.Deadline(); ok {
			timeout = int(time.Until(dl)/time.Millisecond) + 1
			if timeout <= 0 {
				return ctx.Err()
			}
		}
		if timeout < 0 || timeout > 100 {
			timeout = 100 // re-check ctx.Done (cancellation without deadline)
		}
		fds := []unix.PollFd{{Fd: int32(in), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, timeout); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("waiting on %s: %w", events, err)
		}
		for {
			if _, err := unix.Read(in, buf); err != nil {
				break // EAGAIN: drained
			}
		}
		if err := ctx.Err(); err != nil {
			if p, _ := d.Populated(); !p {
				return nil
			}
			return err
		}
	}
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
	return 0, fmt.Errorf("%s: no key %q", filepath.Join(string(d), name), key)
}
