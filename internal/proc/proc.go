// Package proc reads processes from /proc and signals them safely: a
// process is named by its Identity (PID and start time, which a recycled PID
// never matches), pinned with a pidfd before it is signalled, and waited for
// through pidfds. It also holds cgdev's environment markers (CGDEV_PROJECT,
// CGDEV_SERVICE, CGDEV_RUN), which tie a process to a service or a run in
// every mode: the no-cgroup driver counts by them, the stop's orphan sweep
// finds by them what left a group. It imports nothing of cgdev's.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Proc is one process as /proc shows it.
type Proc struct {
	PID, PPID  int
	PGID, SID  int
	UID        int
	Comm       string // the kernel's name (may be renamed by the process)
	State      byte   // R, S, D, Z, ...
	StartTicks uint64 // start time in clock ticks since boot: with PID, a unique identity
	UTime      uint64 // user CPU in clock ticks
	STime      uint64 // system CPU in clock ticks
	Threads    int
	RSSPages   int64
	Kernel     bool // a kernel thread (PF_KTHREAD): no environment, no command line, ever
}

// pfKthread is PF_KTHREAD in the flags of /proc/PID/stat.
const pfKthread = 0x00200000

// Identity is a PID plus its start time: a recycled PID never matches it.
type Identity struct {
	PID        int
	StartTicks uint64
}

// ReadProc reads /proc/PID/stat, and the process's owner from that file's
// owner (the same as /proc/PID's): one open, fstat, read and close, as a
// scan of /proc does this for every process.
func ReadProc(pid int) (Proc, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Proc{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Proc{}, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	var buf [4096]byte // a stat line is about 300 bytes, at most about 1100
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return Proc{}, &os.PathError{Op: "read", Path: path, Err: err}
	}
	p, err := parseStat(buf[:n])
	if err != nil {
		return Proc{}, fmt.Errorf("%s: %w", path, err)
	}
	p.UID = int(st.Uid)
	return p, nil
}

// parseStat parses /proc/PID/stat. The command name is in parentheses and may
// itself hold spaces and parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (Proc, error) {
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return Proc{}, errors.New("malformed stat")
	}
	var p Proc
	var err error
	if p.PID, err = strconv.Atoi(strings.TrimSpace(string(b[:open]))); err != nil {
		return Proc{}, err
	}
	p.Comm = string(b[open+1 : close])
	f := strings.Fields(string(b[close+1:]))
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 22 {
		return Proc{}, errors.New("short stat")
	}
	// The kernel writes the state as one letter (R, S, D, T, t, Z, X, I...).
	if len(f[0]) != 1 || !('A' <= f[0][0] && f[0][0] <= 'Z' || 'a' <= f[0][0] && f[0][0] <= 'z') {
		return Proc{}, fmt.Errorf("malformed stat: state %q", f[0])
	}
	p.State = f[0][0]
	p.PPID, _ = strconv.Atoi(f[1])
	p.PGID, _ = strconv.Atoi(f[2])
	p.SID, _ = strconv.Atoi(f[3])
	flags, _ := strconv.ParseUint(f[6], 10, 64)
	p.Kernel = flags&pfKthread != 0
	p.UTime, _ = strconv.ParseUint(f[11], 10, 64)
	p.STime, _ = strconv.ParseUint(f[12], 10, 64)
	p.Threads, _ = strconv.Atoi(f[17])
	p.StartTicks, _ = strconv.ParseUint(f[19], 10, 64)
	p.RSSPages, _ = strconv.ParseInt(f[21], 10, 64)
	return p, nil
}

// Identity returns p's PID and start time.
func (p Proc) Identity() Identity { return Identity{p.PID, p.StartTicks} }

// Alive reports whether id still names the same live (non-zombie) process.
func (id Identity) Alive() bool {
	p, err := ReadProc(id.PID)
	return err == nil && p.StartTicks == id.StartTicks && p.State != 'Z'
}

// Protected returns the PIDs that cgdev must never signal: 0, 1, its own and
// those of its ancestors (the shell that runs it, and that shell's parents).
func Protected() map[int]bool {
	p := map[int]bool{0: true, 1: true}
	for pid := os.Getpid(); pid > 1 && !p[pid]; {
		p[pid] = true
		pr, err := ReadProc(pid)
		if err != nil {
			break
		}
		pid = pr.PPID
	}
	return p
}

// Cmdline returns pid's command line with arguments joined by spaces.
func Cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return joinCmdline(b)
}

// joinCmdline turns a cmdline file (NUL-separated arguments) into one line.
func joinCmdline(b []byte) string {
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// Cwd returns pid's working directory ("" when unreadable).
func Cwd(pid int) string {
	d, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	return d
}

// Within reports whether path is dir or inside it.
func Within(path, dir string) bool {
	if path == "" || dir == "" {
		return false
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// ClockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports.
const ClockTicks = 100

// Uptime returns the time since boot from /proc/uptime: the clock that
// StartTicks counts on. It is 0 when unreadable.
func Uptime() time.Duration {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	s, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// Age returns how long p has run, given the system's uptime (0 if unknown).
func (p Proc) Age(uptime time.Duration) time.Duration {
	return max(uptime-time.Duration(p.StartTicks)*time.Second/ClockTicks, 0)
}

// CPUPercent returns p's CPU use averaged over its lifetime (100 = one CPU),
// and false when its age is unknown.
func (p Proc) CPUPercent(uptime time.Duration) (float64, bool) {
	age := p.Age(uptime)
	if uptime <= 0 || age <= 0 {
		return 0, false
	}
	cpu := time.Duration(p.UTime+p.STime) * time.Second / ClockTicks
	return 100 * cpu.Seconds() / age.Seconds(), true
}

// Command returns p's command line, or its kernel name in brackets when it
// has none (kernel threads, zombies).
func (p Proc) Command() string {
	if c := Cmdline(p.PID); c != "" {
		return c
	}
	return "[" + p.Comm + "]"
}
