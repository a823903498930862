package cgroup

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// MemoryWatch keeps the latest memory.peak and memory.events oom_kill of a
// cgroup, read each time the kernel changes memory.events (every time the
// group hits its limit, every OOM kill), so that they outlive the cgroup: a
// systemd scope's cgroup is removed as soon as the scope ends, which after
// an OOM kill can be before its caller gets to read it.
type MemoryWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	peak   uint64
	kills  uint64
}

// WatchMemory starts watching the cgroup dir; it returns nil when dir has no
// memory accounting (no memory controller, or no cgroup at all).
func WatchMemory(dir string) *MemoryWatch {
	if dir == "" {
		return nil
	}
	events, err := unix.Open(filepath.Join(dir, "memory.events"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	peak, err := unix.Open(filepath.Join(dir, "memory.peak"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		peak = -1 // kernels before 5.19: OOM kills only
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &MemoryWatch{cancel: cancel, done: make(chan struct{})}
	go w.run(ctx, events, peak)
	return w
}

func (w *MemoryWatch) run(ctx context.Context, events, peak int) {
	defer close(w.done)
	defer unix.Close(events)
	if peak >= 0 {
		defer unix.Close(peak)
	}
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		n, err := unix.Pread(events, buf, 0)
		if err != nil {
			return // ENODEV: the cgroup is gone; what was read stays
		}
		kills := oomKillsIn(buf[:n])
		var p uint64
		if peak >= 0 {
			if n, err := unix.Pread(peak, buf, 0); err == nil {
				p, _ = strconv.ParseUint(strings.TrimSpace(string(buf[:n])), 10, 64)
			}
		}
		w.mu.Lock()
		w.kills, w.peak = max(w.kills, kills), max(w.peak, p)
		w.mu.Unlock()
		if err := pollPri(ctx, events); err != nil && !errors.Is(err, context.Canceled) {
			return
		}
	}
}

func oomKillsIn(events []byte) uint64 {
	for _, line := range strings.Split(string(events), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// Stop ends the watch and returns the highest memory.peak and oom_kill it
// read. A nil watch returns zeros.
func (w *MemoryWatch) Stop() (peak, oomKills uint64) {
	if w == nil {
		return 0, 0
	}
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak, w.kills
}
