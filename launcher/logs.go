package launcher

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// LogOptions configure Logs.
type LogOptions struct {
	Follow bool // keep printing what the services write, until ctx ends
	Lines  int  // how many of the last lines of each log to print first
	Color  bool // colour the service prefixes (for a terminal)
	Out    io.Writer
	// From gives, for a service, the offset in its log from which to print
	// (this start's output, for up) instead of its last Lines lines.
	From map[string]int64
	// Events also follows the project's events (exits, OOM kills,
	// liveness failures, restarts) from EventsFrom, as "cgdev | " lines.
	Events     bool
	EventsFrom int64
}

var prefixColors = []string{"\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[31m"}

// Logs prints the last lines of each service's log (all services when names
// is empty), each line prefixed with the service name, then with Follow the
// lines appended from then on, from every log at once, until ctx ends.
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
	tails := make([]*follower, len(names))
	for i, n := range names {
		prefix := fmt.Sprintf("%-*s | ", width, n)
		if opt.Color {
			prefix = prefixColors[i%len(prefixColors)] + fmt.Sprintf("%-*s", width, n) + "\x1b[0m | "
		}
		tails[i] = &follower{path: p.LogFile(n), prefix: prefix, out: opt.Out}
		if from, ok := opt.From[n]; ok {
			tails[i].offset = from
			tails[i].poll()
		} else {
			tails[i].printTail(opt.Lines)
		}
	}
	if opt.Events && opt.Follow {
		ev := &follower{path: p.EventsFile(), prefix: fmt.Sprintf("%-*s | ", width, "cgdev"), out: opt.Out, offset: opt.EventsFrom, events: true}
		ev.poll()
		tails = append(tails, ev)
	}
	if !opt.Follow {
		return nil
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			for _, f := range tails {
				f.poll()
			}
		}
	}
}

// follower prints one log file's complete lines with a prefix.
type follower struct {
	path    string
	prefix  string
	out     io.Writer
	offset  int64
	partial []byte // the unfinished last line
	events  bool   // lines of the events file: their time stamp is left out
}

// printTail prints the last n lines and remembers where the file ends.
func (f *follower) printTail(n int) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return
	}
	f.offset = fi.Size()
	if n <= 0 {
		return
	}
	tail := logTail(f.path, 0, n)
	if tail == "" {
		return
	}
	f.write([]byte(tail + "\n"))
}

// poll prints what was appended since the last call. A log that shrank
// (truncated by the user) is read again from its start.
func (f *follower) poll() {
	file, err := os.Open(f.path)
	if err != nil {
		return
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return
	}
	if fi.Size() < f.offset {
		f.offset, f.partial = 0, nil
	}
	if fi.Size() == f.offset {
		return
	}
	b := make([]byte, fi.Size()-f.offset)
	n, _ := file.ReadAt(b, f.offset)
	f.offset += int64(n)
	f.write(b[:n])
}

func (f *follower) write(b []byte) {
	b = append(f.partial, b...)
	var buf bytes.Buffer
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		line := b[:i+1]
		if _, rest, ok := bytes.Cut(line, []byte(" ")); ok && f.events {
			line = rest
		}
		buf.WriteString(f.prefix)
		buf.Write(line)
		b = b[i+1:]
	}
	f.partial = append([]byte(nil), b...)
	f.out.Write(buf.Bytes())
}
