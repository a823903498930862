package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/human"
	"golang.org/x/sys/unix"
)

// ServiceExit is how a service's main process ended, as far as cgdev knows.
type ServiceExit struct {
	At      time.Time `json:"at"`
	PID     int       `json:"pid,omitempty"`
	Code    *int      `json:"code,omitempty"`    // the exit code; absent when a signal ended it or it is unknown
	Signal  string    `json:"signal,omitempty"`  // e.g. SIGKILL
	OOM     *OOMKill  `json:"oom,omitempty"`     // the kernel's OOM killer ended it
	Reason  string    `json:"reason,omitempty"`  // cgdev ended it: a readiness or liveness failure, a file change
	Unknown bool      `json:"unknown,omitempty"` // nothing that saw it end was its parent: code and signal are unknown
	Left    int       `json:"left,omitempty"`    // processes still in its group when it ended
}

// OOMKill is an OOM kill inside a group, with the group's limit and peak.
type OOMKill struct {
	Limit string `json:"limit"` // e.g. MemoryMax=512M; "" when the group has no memory limit
	Peak  uint64 `json:"peak"`  // memory.peak, bytes (0 when unknown: the kernel does not report it, or the group was gone before it was read)
}

// Record phases: what the last process to watch a service said of it.
const (
	phaseStarting   = "starting"   // a (re)start is under way
	phaseUp         = "up"         // started; how it runs now, the kernel says
	phaseUnhealthy  = "unhealthy"  // its liveness check fails
	phaseRestarting = "restarting" // ended; to be started again at Next
	phaseEnded      = "ended"      // ended (Last says how) and stays down
	phaseFailed     = "failed"     // gave up restarting it (GaveUp says why)
)

// ServiceRecord is .cgdev/services/<name>.json: the exit record of one
// service, written by whoever watches it (its supervisor, `cgdev up`, or
// `cgdev start` for what it saw while starting). It is small and bounded
// (Recent holds at most max_restarts+1 times), written atomically, read by
// status, and never needed by stop, which removes it.
type ServiceRecord struct {
	Phase    string       `json:"phase"`
	Since    time.Time    `json:"since"`
	Restarts int          `json:"restarts"`         // restarts by cgdev since the last start by hand
	Recent   []time.Time  `json:"recent,omitempty"` // restarts within restart_window, oldest first
	Next     time.Time    `json:"next,omitzero"`    // restarting: when
	Last     *ServiceExit `json:"last,omitempty"`   // how the last instance ended
	Health   string       `json:"health,omitempty"` // unhealthy: the liveness check's last error
	GaveUp   string       `json:"gave_up,omitempty"`
}

// maxRecordFile bounds what reading a record accepts.
const maxRecordFile = 64 << 10

// recordsDirName is .cgdev/services/, the exit records' directory.
const recordsDirName = "services"

func recordFile(name string) string { return name + ".json" }

// LoadRecord reads the exit record of service name; nil when there is none
// or it cannot be read (a record is a hint, never a requirement). A record
// that is not what cgdev makes (a symlink, a FIFO, too large) is left alone
// with a warning.
func (p *Project) LoadRecord(name string) *ServiceRecord {
	d, err := p.openDir(false, stateDirName, recordsDirName)
	if err != nil {
		if !missing(err) {
			p.tolerate(err)
		}
		return nil
	}
	defer d.Close()
	b, err := d.ReadFile(recordFile(name), maxRecordFile)
	if err != nil {
		if !missing(err) {
			p.warnOnce(fmt.Errorf("ignoring the exit record of %s: %w", name, err))
		}
		return nil
	}
	var r ServiceRecord
	if json.Unmarshal(b, &r) != nil || r.Phase == "" {
		return nil
	}
	return &r
}

// SaveRecord writes the exit record of service name atomically. What is in
// its place but is not cgdev's is left alone with a warning, and is no error.
func (p *Project) SaveRecord(name string, r *ServiceRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	d, err := p.openDir(true, stateDirName, recordsDirName)
	if err == nil {
		err = d.WriteFile(recordFile(name), append(b, '\n'))
		d.Close()
	}
	return p.tolerate(err)
}

// RemoveRecords deletes the exit records of the named services (all when
// names is empty), each with what a writer that died left of one being
// written, and then the directory when nothing else is in it, as a stop
// does: a stopped service has no story to tell, whether the stop named it
// or not. Only regular files are removed; anything else is left alone with
// a warning.
func (p *Project) RemoveRecords(names []string) error {
	d, err := p.openDir(false, stateDirName, recordsDirName)
	if missing(err) {
		return nil
	} else if err != nil {
		return p.tolerate(err)
	}
	entries, err := d.Names()
	if err != nil {
		d.Close()
		return err
	}
	var errs []error
	for _, e := range entries {
		if recordOf(e, names) {
			errs = append(errs, p.tolerate(d.Remove(e)))
		}
	}
	d.Close()
	if sd, err := p.stateDir(false); err == nil {
		sd.RemoveDirIfEmpty(recordsDirName)
		sd.Close()
	}
	return errors.Join(errs...)
}

// recordOf says whether the directory entry is the exit record of one of
// names (of any service when names is empty), or one being written
// (safefile's temporary ".<svc>.json.tmp…"); anything else is not cgdev's.
func recordOf(entry string, names []string) bool {
	if len(names) == 0 {
		return strings.HasSuffix(entry, ".json") || strings.Contains(entry, ".json.tmp")
	}
	for _, n := range names {
		if entry == recordFile(n) || strings.HasPrefix(entry, "."+recordFile(n)+".tmp") {
			return true
		}
	}
	return false
}

// serviceExitOf describes how a child ended from what Wait returned.
func serviceExitOf(pid int, err error, at time.Time) ServiceExit {
	e := ServiceExit{At: at, PID: pid}
	var ee *exec.ExitError
	switch {
	case err == nil:
		e.Code = new(int)
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = unix.SignalName(ws.Signal())
		} else {
			code := ee.ExitCode()
			e.Code = &code
		}
	default:
		e.Unknown = true
	}
	return e
}

// noteOOM marks e as an OOM kill when the kernel's OOM killer acted in the
// group since before (its oom_kill count grew) and SIGKILL ended the main
// process, with the group's limit and peak.
func noteOOM(e *ServiceExit, before, after cgroup.Stats, limits cgroup.Limits) {
	if after.OOMKills <= before.OOMKills || e.Signal != "SIGKILL" {
		return
	}
	e.OOM = oomKillOf(after, limits)
}

// oomKillOf is an OOM kill in a group whose counters are stats: the limit
// the service was given (limits), else the group's memory.max, and its peak.
func oomKillOf(stats cgroup.Stats, limits cgroup.Limits) *OOMKill {
	k := &OOMKill{Peak: stats.MemoryPeak}
	if v, ok := limits.Get("MemoryMax"); ok {
		k.Limit = "MemoryMax=" + v
	} else if stats.MemoryMax > 0 && stats.MemoryMax != cgroup.Infinity {
		k.Limit = "MemoryMax=" + cgroup.HumanBytes(uint64(stats.MemoryMax))
	}
	return k
}

// oomStats reads the counters noteOOM compares: those of a cgroup (a few
// files); a group without one (fallback) has no memory limit to be
// OOM-killed at, and its counters would cost a scan of /proc.
func oomStats(g cgroup.Group) cgroup.Stats {
	if g.Path() == "" {
		return cgroup.Stats{}
	}
	st, _ := g.Stats()
	return st
}

// Failed says whether the exit counts as a failure for restart: on-failure:
// anything but exit code 0, an unknown end included.
func (e *ServiceExit) Failed() bool { return e.Code == nil || *e.Code != 0 || e.Reason != "" }

// State is the status state this end gives a stopped service, with its
// detail: exited (code 3), killed (SIGKILL), oom-killed (MemoryMax=512M,
// peak 512M), failed (not ready after 30s …), exited (code unknown).
func (e *ServiceExit) State() (state, detail string) {
	switch {
	case e.OOM != nil:
		d := "peak " + cgroup.HumanBytes(e.OOM.Peak)
		if e.OOM.Peak == 0 {
			// Nothing read memory.peak before the group went (a systemd
			// scope collected after the kill), or the kernel has none.
			d = "peak unknown"
		}
		if e.OOM.Limit != "" {
			d = e.OOM.Limit + ", " + d
		}
		return "oom-killed", d
	case e.Reason != "":
		return "failed", e.Reason
	case e.Signal != "":
		return "killed", e.Signal
	case e.Code != nil:
		return "exited", fmt.Sprintf("code %d", *e.Code)
	}
	return "exited", "code unknown"
}

// String is one phrase: "exited (code 3)", "killed (SIGKILL)".
func (e *ServiceExit) String() string {
	s, d := e.State()
	return s + " (" + d + ")"
}

// ago says how long ago t was, e.g. "4s ago".
func ago(t time.Time) string {
	return human.Duration(time.Since(t).Round(100*time.Millisecond)) + " ago"
}

// mainEnded says how the main process ended, for a degraded service:
// "main exited (code 1)", "main killed (SIGKILL)", "main exited".
func mainEnded(e *ServiceExit) string {
	if e == nil || e.Unknown {
		return "main exited"
	}
	return "main " + e.String()
}
