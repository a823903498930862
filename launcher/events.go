package launcher

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxEvents bounds .cgdev/events.log: past it, the file is renamed to
// events.log.1 (replacing the one before) and a new one begun.
const maxEvents = 1 << 20

// EventsFile is .cgdev/events.log: one line per thing that happened to a
// service while something watched it (it exited, was OOM-killed, became
// unhealthy, was restarted, was given up on), for `cgdev up` and for humans.
func (p *Project) EventsFile() string { return filepath.Join(p.StateDir(), "events.log") }

// event appends one line, "<RFC 3339 time> <text>", to the events file.
// Lines are written with one write(2) on an O_APPEND file, so concurrent
// writers never interleave within a line.
func (p *Project) event(format string, a ...any) {
	line := time.Now().Format(time.RFC3339) + " " + strings.ReplaceAll(fmt.Sprintf(format, a...), "\n", "\n    ") + "\n"
	path := p.EventsFile()
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxEvents {
		os.Rename(path, path+".1")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(line)
}
