package launcher

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/cgdev/cgdev/internal/safefile"
	"golang.org/x/sys/unix"
)

// The directories cgdev keeps in a project. Each is opened from the project
// directory without following a symlink (internal/safefile): when one is
// not a real directory (a user's file called .pids, a symlink to elsewhere)
// cgdev warns once and leaves it alone.
const (
	pidsDirName = ".pids"
	logsDirName = "logs"
)

// warnings prints each warning about a project's files once per command.
type warnings struct {
	mu   sync.Mutex
	out  io.Writer
	seen map[string]bool
}

// SetWarnings sends the warnings about the project's files (a .pids that is
// a user's file, an oversized state.json, a FIFO where a log should be) to
// w, each once. Until it is called they go to stderr.
func (p *Project) SetWarnings(w io.Writer) {
	p.warn.mu.Lock()
	defer p.warn.mu.Unlock()
	p.warn.out = w
}

// warnOnce prints err as a warning, unless the same was printed before.
func (p *Project) warnOnce(err error) {
	p.warn.mu.Lock()
	defer p.warn.mu.Unlock()
	msg := err.Error()
	if p.warn.seen[msg] {
		return
	}
	if p.warn.seen == nil {
		p.warn.seen = map[string]bool{}
	}
	p.warn.seen[msg] = true
	out := p.warn.out
	if out == nil {
		out = os.Stderr
	}
	fmt.Fprintf(out, "cgdev: warning: %v\n", err)
}

// tolerate turns a refusal to touch something that is not cgdev's, or a
// project on a read-only file system, into a warning (printed once) and
// nil: the files are left as they are and the command goes on (they are a
// record; nothing depends on them). Other errors are returned as they are.
func (p *Project) tolerate(err error) error {
	if safefile.IsNotOurs(err) || errors.Is(err, unix.EROFS) {
		p.warnOnce(err)
		return nil
	}
	return err
}

// openDir opens the project directory, then each of path's components
// below it, creating them when create is set.
func (p *Project) openDir(create bool, path ...string) (*safefile.Dir, error) {
	d, err := safefile.OpenRoot(p.Dir)
	if err != nil {
		return nil, err
	}
	for _, name := range path {
		sub, err := d.Sub(name, create)
		d.Close()
		if err != nil {
			return nil, err
		}
		d = sub
	}
	return d, nil
}

// stateDir opens .cgdev/.
func (p *Project) stateDir(create bool) (*safefile.Dir, error) {
	return p.openDir(create, stateDirName)
}

// logDir opens .cgdev/logs/.
func (p *Project) logDir(create bool) (*safefile.Dir, error) {
	return p.openDir(create, stateDirName, logsDirName)
}

// pidsDir opens .pids/.
func (p *Project) pidsDir(create bool) (*safefile.Dir, error) {
	return p.openDir(create, pidsDirName)
}

// missing reports whether err says a file or directory is not there.
func missing(err error) bool { return errors.Is(err, os.ErrNotExist) }
