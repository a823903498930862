package vmkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// HelperEnv makes a test binary run a helper program instead of its tests
// (see MaybeRunHelper): "alloc MiB" (then exit), "alloc MiB hold" (then
// sleep), "forkbomb ATTEMPTS" or "busy".
const HelperEnv = "CGDEV_VMTEST_HELPER"

// MaybeRunHelper runs the helper HelperEnv names and exits with its status;
// without HelperEnv it returns. Call it first in TestMain.
func MaybeRunHelper() {
	if h := os.Getenv(HelperEnv); h != "" {
		os.Exit(runHelper(strings.Fields(h)))
	}
}

func runHelper(args []string) int {
	var err error
	switch {
	case args[0] == "alloc" && len(args) == 2:
		err = allocate(args[1])
	case args[0] == "alloc" && len(args) == 3 && args[2] == "hold":
		if err = allocate(args[1]); err == nil {
			for {
				time.Sleep(time.Hour) // keep the memory until stopped
			}
		}
	case args[0] == "forkbomb" && len(args) == 2:
		err = forkBomb(args[1])
	case args[0] == "busy":
		fmt.Printf("busy: spinning cgroup=%s\n", ownCgroup())
		for {
		}
	default:
		err = fmt.Errorf("unknown helper %q", args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// allocate touches MiB mebibytes of anonymous memory, 1 MiB at a time, and
// prints what its own cgroup counted.
func allocate(arg string) error {
	n, err := strconv.Atoi(arg)
	if err != nil {
		return err
	}
	debug.SetGCPercent(-1) // nothing is garbage; keep the collector out of the way
	start := time.Now()
	var held [][]byte
	for i := 1; i <= n; i++ {
		b := make([]byte, MiB)
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(i)
		}
		held = append(held, b)
		if i%32 == 0 {
			fmt.Printf("alloc: %d MiB after %s\n", i, time.Since(start).Round(time.Millisecond))
		}
	}
	fmt.Printf("alloc-done mib=%d ms=%d %s\n", len(held), time.Since(start).Milliseconds(), OwnCgroupReport())
	return nil
}

// forkBomb tries to start attempts processes (/bin/sleep), counts how many
// forks the kernel refused, reports, then waits to be stopped.
func forkBomb(arg string) error {
	attempts, err := strconv.Atoi(arg)
	if err != nil {
		return err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	started, failed := 0, 0
	firstErrno := "none"
	var pids []string
	for i := 0; i < attempts; i++ {
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "1000"}, &os.ProcAttr{Files: []*os.File{null, null, null}})
		if err != nil {
			var errno syscall.Errno
			if failed++; failed == 1 && errors.As(err, &errno) {
				firstErrno = unix.ErrnoName(errno)
			} else if failed == 1 {
				firstErrno = "not-an-errno"
			}
			continue
		}
		started++
		pids = append(pids, strconv.Itoa(p.Pid))
	}
	fmt.Printf("forkbomb-done started=%d failed=%d first_errno=%s pids=%s %s\n",
		started, failed, firstErrno, strings.Join(pids, ","), OwnCgroupReport())
	for {
		time.Sleep(time.Hour)
	}
}

// ownCgroup is the caller's cgroup2 path, relative to the mount.
func ownCgroup() string {
	b, _ := os.ReadFile("/proc/self/cgroup")
	return strings.TrimSpace(strings.TrimPrefix(string(b), "0::"))
}

// OwnCgroupReport renders the counters of the caller's own cgroup as
// key=value words (cgroup2 mounted at /sys/fs/cgroup, as in both VMs).
func OwnCgroupReport() string {
	rel := ownCgroup()
	dir := filepath.Join("/sys/fs/cgroup", rel)
	var w []string
	add := func(k, v string) { w = append(w, k+"="+v) }
	add("cgroup", rel)
	for _, f := range []string{"memory.current", "memory.peak", "memory.swap.current", "pids.current", "pids.max"} {
		if v, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
			add(f, strings.TrimSpace(string(v)))
		}
	}
	for _, f := range []string{"memory.events", "pids.events"} {
		if v, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
			for _, l := range strings.Split(strings.TrimSpace(string(v)), "\n") {
				if k, v, ok := strings.Cut(l, " "); ok {
					add(f+"."+k, v)
				}
			}
		}
	}
	return strings.Join(w, " ")
}
