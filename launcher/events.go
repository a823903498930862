package launcher

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The events of a project, .cgdev/events.log: one line per thing that
// happened to a service while something watched it (it exited, was
// OOM-killed, became unhealthy, was restarted, was given up on), for `cgdev
// up` and for humans. It is a log stream like a service's (logfile.go):
// offsets are logical, and past maxEvents the live file's head moves into
// events.log.1 (the one before is dropped), so the two files never hold
// more than about 2 MiB.
const (
	eventsName = "events.log"
	maxEvents  = 1 << 20
)

// EventsFile is .cgdev/events.log.
func (p *Project) EventsFile() string { return filepath.Join(p.StateDir(), eventsName) }

// eventsLog is the events stream.
func (p *Project) eventsLog() *serviceLog {
	return &serviceLog{p: p, name: eventsName, limits: LogLimits{MaxSize: maxEvents, MaxFiles: 2}, inStateDir: true}
}

// EventsEnd is the logical offset just after the last event written (0
// when there is none): where a follower of what comes next starts.
func (p *Project) EventsEnd() int64 {
	v, err := p.eventsLog().view()
	if err != nil {
		return 0
	}
	defer v.close()
	return v.end()
}

// event appends one line, "<RFC 3339 time> <text>", to the events. A line
// is written with one write(2) on an O_APPEND file, under a shared flock of
// the file (rotation takes it exclusively), so concurrent writers never
// interleave within a line and a rotation never loses one. The file is
// opened as every file of cgdev's (never through a symlink, never a FIFO);
// when it cannot be, the event is dropped with a warning (once).
func (p *Project) event(format string, a ...any) {
	line := time.Now().Format(TimestampLayout) + " " + strings.ReplaceAll(fmt.Sprintf(format, a...), "\n", "\n    ") + "\n"
	l := p.eventsLog()
	d, err := l.dir(true)
	if err != nil {
		p.warnOnce(fmt.Errorf("events: %w", err))
		return
	}
	defer d.Close()
	f, err := d.Open(eventsName, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		p.warnOnce(fmt.Errorf("events: %w", err))
		return
	}
	flock(f, unix.LOCK_SH)
	f.WriteString(line)
	fi, err := f.Stat()
	f.Close()
	if err == nil && fi.Size() > maxEvents {
		// Rotate now (no checkpoints are needed: each line has its time).
		if err := l.touch(); err != nil {
			p.warnOnce(fmt.Errorf("events: %w", err))
		}
	}
}

// splitEvent separates an event line's time from its text. A line without
// one (a continuation, a hand-written line) is all text.
func splitEvent(line []byte) (time.Time, []byte) {
	stamp, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return time.Time{}, line
	}
	at, err := time.Parse(time.RFC3339Nano, string(stamp))
	if err != nil {
		return time.Time{}, line
	}
	return at, rest
}
