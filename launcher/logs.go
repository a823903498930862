package launcher

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"
)

// LogOptions configure Logs.
type LogOptions struct {
	Follow bool // keep printing what the services write, until ctx ends
	// Lines is how many of the last lines of each log to print first; a
	// negative number prints every line kept (since Since, when set).
	Lines int
	// Since leaves out lines known to be written before it (zero: none).
	Since time.Time
	// Timestamps prefixes each line with when it was written: exact for
	// lines read as they come (follow), the first time cgdev saw it for
	// stored ones, marked "~" when that may be more than a second late.
	Timestamps bool
	Color      bool // colour the service prefixes (for a terminal)
	Out        io.Writer
	// From gives, for a service, the logical offset in its log from which
	// to print (this start's output, for up) instead of its last Lines lines.
	From map[string]int64
	// Events also follows the project's events (exits, OOM kills, liveness
	// failures, restarts: events.go) from the logical offset EventsFrom, as
	// "cgdev | " lines (with Follow only).
	Events     bool
	EventsFrom int64
}

var prefixColors = []string{"\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[31m"}

// followPoll is how often a followed log is read; touchEvery how often a
// follower rotates it and records a checkpoint.
const (
	followPoll = 100 * time.Millisecond
	touchEvery = time.Second
)

// TimestampLayout is how --timestamps prints a time: RFC 3339, local, ms.
const TimestampLayout = "2006-01-02T15:04:05.000Z07:00"

// Logs prints the last lines of each service's log (all services when names
// is empty), each line prefixed with the service name, then with Follow the
// lines appended from then on, from every log at once, until ctx ends.
// Memory stays bounded whatever the logs hold: lines longer than 64 KiB are
// printed in pieces of 64 KiB, each on a line of its own.
func Logs(ctx context.Context, p *Project, names []string, opt LogOptions) error {
	if len(names) == 0 {
		names = p.Config.Names()
	}
	width := 0
	for _, n := range names {
		if p.Config.Service(n) == nil {
			return fmt.Errorf("no service %q in %s", n, p.Config.File)
		}
		width = max(width, len(n))
	}
	if opt.Events {
		width = max(width, len("cgdev"))
	}
	out := bufio.NewWriterSize(opt.Out, 64<<10)
	defer out.Flush()
	tails := make([]*follower, len(names))
	for i, n := range names {
		prefix := fmt.Sprintf("%-*s | ", width, n)
		if opt.Color {
			prefix = prefixColors[i%len(prefixColors)] + fmt.Sprintf("%-*s", width, n) + "\x1b[0m | "
		}
		tails[i] = &follower{log: p.serviceLog(n), prefix: prefix, out: out, opt: &opt}
		if from, ok := opt.From[n]; ok {
			tails[i].printFrom(from)
		} else {
			tails[i].printTail()
		}
	}
	if opt.Events && opt.Follow {
		ev := &follower{log: p.eventsLog(), prefix: fmt.Sprintf("%-*s | ", width, "cgdev"), out: out, opt: &opt, events: true}
		ev.printFrom(opt.EventsFrom)
		tails = append(tails, ev)
	}
	if err := out.Flush(); err != nil || !opt.Follow {
		return err
	}
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			for _, f := range tails {
				f.poll()
			}
			if err := out.Flush(); err != nil {
				return err // the reader went away (a closed pipe)
			}
		}
	}
}

// follower prints one log's lines with a prefix.
type follower struct {
	log     *serviceLog
	prefix  string
	out     io.Writer
	opt     *LogOptions
	offset  int64 // logical offset of the first byte not printed yet
	touched time.Time
	events  bool // lines of the events stream: each carries its own time
}

// printTail prints the last lines asked for and remembers where it stopped.
func (f *follower) printTail() {
	f.touch()
	from := int64(0)
	if !f.opt.Since.IsZero() {
		if v, err := f.log.view(); err == nil {
			from = v.idx.since(f.opt.Since)
			v.close()
		}
	}
	start := from
	if f.opt.Lines >= 0 {
		var err error
		if start, err = f.log.tailStart(f.opt.Lines, from); err != nil {
			f.warn(err)
			return
		}
	}
	var err error
	f.offset, err = f.log.scanLines(start, !f.opt.Follow, f.printStored)
	f.warn(err)
}

// printFrom prints the stream's lines from logical offset from on (what
// was written before the follower began included) and remembers where it
// stopped.
func (f *follower) printFrom(from int64) {
	f.touch()
	f.offset = from
	f.noteSkipped()
	var err error
	f.offset, err = f.log.scanLines(f.offset, false, f.printStored)
	f.warn(err)
}

// poll prints what was appended since the last call, then (at most once
// a second) rotates the log and records a checkpoint: after the scan, so
// that a follower never rotates away lines it has not printed. (Another
// cgdev command can: the follower then says how much it missed.)
func (f *follower) poll() {
	f.noteSkipped()
	now := time.Now()
	var err error
	f.offset, err = f.log.scanLines(f.offset, false, func(line []byte, _ int64, _ *logView) bool {
		if f.events {
			f.printEvent(line)
		} else {
			f.print(line, now, false)
		}
		return true
	})
	f.warn(err)
	if time.Since(f.touched) >= touchEvery {
		f.touch()
	}
}

// noteSkipped prints a line saying how many bytes were rotated away before
// the follower could print them, and moves on to the oldest kept.
func (f *follower) noteSkipped() {
	v, err := f.log.view()
	if err != nil {
		return
	}
	oldest := v.oldest()
	v.close()
	if f.offset < oldest {
		f.print([]byte(fmt.Sprintf("--- cgdev: %d bytes rotated away before they could be printed ---\n", oldest-f.offset)), time.Now(), false)
		f.offset = oldest
	}
}

func (f *follower) touch() {
	f.touched = time.Now()
	f.warn(f.log.touch())
}

// warn prints a problem with the log once (a log not written yet is none).
func (f *follower) warn(err error) {
	if err != nil && !missing(err) {
		f.log.p.warnOnce(fmt.Errorf("log of %s: %w", f.prefixName(), err))
	}
}

func (f *follower) prefixName() string { return f.log.name }

// printStored prints a line read from the file, stamped with the first
// time cgdev saw it, and leaves out lines known to predate --since.
func (f *follower) printStored(line []byte, start int64, v *logView) bool {
	if f.events {
		f.printEvent(line)
		return true
	}
	if !f.opt.Timestamps && f.opt.Since.IsZero() {
		f.print(line, time.Time{}, false)
		return true
	}
	end := start + int64(len(line))
	lower, upper, ok := v.idx.stamp(start, end)
	if !ok {
		upper = v.mtimeAt(start)
	}
	if !f.opt.Since.IsZero() && upper.Before(f.opt.Since) {
		return true
	}
	f.print(line, upper, lower.IsZero() || upper.Sub(lower) > time.Second)
	return true
}

// printEvent prints a line of the events stream without the time it
// starts with, which is what --timestamps shows (exact: the writer's).
func (f *follower) printEvent(line []byte) {
	at, text := splitEvent(line)
	if at.IsZero() {
		at = time.Now()
	}
	f.print(text, at, false)
}

// print writes one line (or piece of a line) with the prefix.
func (f *follower) print(line []byte, at time.Time, approx bool) {
	io.WriteString(f.out, f.prefix)
	if f.opt.Timestamps {
		if approx {
			io.WriteString(f.out, "~")
		}
		io.WriteString(f.out, at.Format(TimestampLayout)+" ")
	}
	f.out.Write(line)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		io.WriteString(f.out, "\n")
	}
}
