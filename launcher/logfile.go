package launcher

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/cgdev/cgdev/internal/safefile"
	"golang.org/x/sys/unix"
)

// A service's log is a stream of bytes kept in up to MaxFiles files:
// <svc>.log (live: the service holds it open with O_APPEND and writes to it
// directly, with no cgdev process in between), <svc>.log.1 (the bytes just
// before the live file's first), <svc>.log.2, …, and <svc>.log.idx (the
// logical offset of the live file's first byte, and checkpoints of when
// cgdev saw the stream how long). There is no daemon: every cgdev command
// that looks at a log (start, stop, status, logs, up) rotates it when it is
// over MaxSize, under an exclusive flock of the live file that readers
// share, so a reader never sees the stream move under it.

// Default log limits: 20 MiB a file, 3 files (the live one included).
const (
	DefaultLogMaxSize  = 20 << 20
	DefaultLogMaxFiles = 3
)

// maxLogPiece is the longest piece of a line cgdev holds in memory: a longer
// line is handed on (printed, matched) in pieces of maxLogPiece bytes.
const maxLogPiece = 64 << 10

// logChunk is how much is read at a time.
const logChunk = 256 << 10

// LogLimits bound one service's log files (logs: in cgdev.yaml).
type LogLimits struct {
	MaxSize  int64 // rotate the live file past this size; 0: never
	MaxFiles int   // files kept, the live one included; at least 1
}

// serviceLog is the log of one service (or the project's events,
// events.go): a stream of lines kept as described above.
type serviceLog struct {
	p      *Project
	name   string // the live file's name: <svc>.log
	limits LogLimits
	// inStateDir keeps the files in .cgdev/ rather than .cgdev/logs/.
	inStateDir bool
}

// dir opens the directory holding the log's files.
func (l *serviceLog) dir(create bool) (*safefile.Dir, error) {
	if l.inStateDir {
		return l.p.stateDir(create)
	}
	return l.p.logDir(create)
}

// serviceLog returns service name's log, with its configured limits.
func (p *Project) serviceLog(name string) *serviceLog {
	l := LogLimits{MaxSize: DefaultLogMaxSize, MaxFiles: DefaultLogMaxFiles}
	if p.Config != nil {
		l = p.Config.logLimits(name)
	}
	return &serviceLog{p: p, name: name + ".log", limits: l}
}

func (l *serviceLog) rotated(k int) string { return l.name + "." + strconv.Itoa(k) }
func (l *serviceLog) indexName() string    { return l.name + ".idx" }

// logView is the log seen under a shared flock: the live file's logical
// base and size, and where each rotated file's bytes start. Rotation cannot
// happen while a view is open, so offsets stay put; close it promptly.
type logView struct {
	dir   *safefile.Dir
	live  *os.File
	idx   logIndex
	size  int64
	mtime time.Time
	older []segment // .1, .2, …: each just before the previous
}

type segment struct {
	name  string
	start int64 // logical offset of its first byte
	size  int64
	mtime time.Time
}

// view opens the log for reading. A log not written yet gives an error
// satisfying errors.Is(err, os.ErrNotExist).
func (l *serviceLog) view() (*logView, error) {
	d, err := l.dir(false)
	if err != nil {
		return nil, err
	}
	live, err := d.Open(l.name, os.O_RDONLY, 0)
	if err != nil {
		d.Close()
		return nil, err
	}
	flock(live, unix.LOCK_SH)
	v := &logView{dir: d, live: live}
	if b, err := d.ReadFile(l.indexName(), maxIndexSize); err == nil {
		v.idx = parseLogIndex(b)
	}
	if fi, err := live.Stat(); err == nil {
		v.size, v.mtime = fi.Size(), fi.ModTime()
	}
	start := v.idx.base
	for k := 1; k <= 100 && start > 0; k++ { // also files kept under a larger max_files than now
		st, err := d.Lstat(l.rotated(k))
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			break
		}
		start -= st.Size
		v.older = append(v.older, segment{name: l.rotated(k), start: max(start, 0), size: st.Size,
			mtime: time.Unix(st.Mtim.Unix())})
	}
	return v, nil
}

func (v *logView) close() {
	v.live.Close() // releases the flock
	v.dir.Close()
}

// end is the logical offset just after the last byte written.
func (v *logView) end() int64 { return v.idx.base + v.size }

// oldest is the logical offset of the first byte still kept.
func (v *logView) oldest() int64 {
	if n := len(v.older); n > 0 {
		return v.older[n-1].start
	}
	return v.idx.base
}

// readAt reads from logical offset off, from whichever file holds it; it
// may return fewer bytes than asked at the end of a file.
func (v *logView) readAt(b []byte, off int64) (int, error) {
	if off >= v.idx.base {
		n := min(int64(len(b)), v.end()-off)
		if n <= 0 {
			return 0, io.EOF
		}
		return v.live.ReadAt(b[:n], off-v.idx.base)
	}
	for _, s := range v.older {
		if off < s.start || off >= s.start+s.size {
			continue
		}
		f, err := v.dir.Open(s.name, os.O_RDONLY, 0)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		n := min(int64(len(b)), s.start+s.size-off)
		return f.ReadAt(b[:n], off-s.start)
	}
	return 0, io.EOF
}

// readFull reads len(b) bytes from logical offset off, across files.
func (v *logView) readFull(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		k, err := v.readAt(b[n:], off+int64(n))
		n += k
		if err != nil && err != io.EOF {
			return n, err
		}
		if k == 0 {
			break
		}
	}
	return n, nil
}

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// mtimeAt is the modification time of the file holding logical offset off:
// no byte of it was written later.
func (v *logView) mtimeAt(off int64) time.Time {
	for _, s := range v.older {
		if off >= s.start && off < s.start+s.size {
			return s.mtime
		}
	}
	return v.mtime
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// touch is what every command that looks at the log does: rotate it when
// it is over its size, and record a checkpoint (the stream's length now).
// It never blocks on another cgdev command: when the log is busy being
// rotated or read, it does nothing (the next command will).
func (l *serviceLog) touch() error {
	return l.withExclusive(func(d *safefile.Dir, live *os.File, idx *logIndex) (bool, error) {
		rotatedNow, err := l.rotate(d, live, idx)
		fi, serr := live.Stat()
		if serr != nil {
			return rotatedNow, serr
		}
		return idx.record(idx.base+fi.Size(), time.Now()) || rotatedNow, err
	})
}

// withExclusive runs fn with the live file opened for writing and locked
// exclusively (skipping fn when another cgdev holds the lock), then writes
// the index back when fn says it changed.
func (l *serviceLog) withExclusive(fn func(d *safefile.Dir, live *os.File, idx *logIndex) (bool, error)) error {
	d, err := l.dir(false)
	if err != nil {
		return err
	}
	defer d.Close()
	live, err := d.Open(l.name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer live.Close()
	if err := unix.Flock(int(live.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil // another cgdev command is reading or rotating it
	}
	var idx logIndex
	if b, err := d.ReadFile(l.indexName(), maxIndexSize); err == nil {
		idx = parseLogIndex(b)
	} else if !missing(err) && !errors.As(err, new(*safefile.TooBigError)) {
		return err
	}
	changed, err := fn(d, live, &idx)
	if changed {
		if werr := d.WriteFile(l.indexName(), idx.format()); err == nil {
			err = werr
		}
	}
	return err
}

// rotate moves the head of the live file into <svc>.log.1, .2, … (pieces of
// MaxSize, newest first, after shifting the older files up and dropping
// what no longer fits in MaxFiles) when the live file is over MaxSize.
// Where the file system can (ext4, xfs) the head is copied, then cut out of
// the live file with fallocate(FALLOC_FL_COLLAPSE_RANGE): writers appending
// meanwhile lose nothing. Elsewhere (tmpfs, btrfs, …) the whole file is
// copied and then truncated: what a service writes between the end of the
// copy and the truncation (microseconds) is lost.
func (l *serviceLog) rotate(d *safefile.Dir, live *os.File, idx *logIndex) (bool, error) {
	fi, err := live.Stat()
	if err != nil || l.limits.MaxSize <= 0 || fi.Size() <= l.limits.MaxSize {
		return false, err
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(live.Fd()), &st); err != nil {
		return false, err
	}
	blk := max(st.Bsize, 512)
	head := fi.Size() / blk * blk
	if head == fi.Size() {
		head -= blk // a collapse must end before the end of the file
	}
	if head > 0 && collapsible(st.Type) {
		if err := l.moveHead(d, live, head, fi.ModTime()); err != nil {
			return false, err
		}
		err := unix.Fallocate(int(live.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, head)
		if err == nil {
			idx.base += head
			idx.forget(idx.base - l.keptBefore(d))
			return true, nil
		}
		if err != unix.EOPNOTSUPP && err != unix.EINVAL {
			return true, fmt.Errorf("cutting the head of %s: %w", live.Name(), err)
		}
	}
	// No collapse here: copy what follows the head (into .1 when the head
	// was moved, which makes it larger than MaxSize this once), then
	// truncate. The copy is repeated until what is left to copy is small,
	// so that the window in which a line can be lost (written after the
	// last copy began, before the truncation) is one short copy.
	if !collapsible(st.Type) {
		head = 0
	}
	copied := head
	for i := 0; i < 10; i++ {
		fi, err := live.Stat()
		if err != nil {
			return true, err
		}
		if fi.Size() == copied {
			break
		}
		small := fi.Size()-copied < 64<<10 // the next copy is quick: truncate right after it
		switch {
		case copied == 0:
			err = l.moveHead(d, live, fi.Size(), fi.ModTime())
		case l.limits.MaxFiles > 1:
			err = l.appendTo(d, l.rotated(1), live, copied, fi.Size())
		}
		if err != nil {
			return true, err
		}
		copied = fi.Size()
		if small {
			break
		}
	}
	if err := live.Truncate(0); err != nil {
		return true, fmt.Errorf("truncating %s: %w", live.Name(), err)
	}
	idx.base += copied
	idx.forget(idx.base - l.keptBefore(d))
	return true, nil
}

// collapsible says whether a file system type (statfs f_type) supports
// FALLOC_FL_COLLAPSE_RANGE: ext4 (with extents, as mkfs makes it) and xfs.
func collapsible(fsType int64) bool {
	const ext4, xfs = 0xEF53, 0x58465342
	return fsType == ext4 || fsType == xfs
}

// moveHead copies the bytes [0, head) of the live file into new rotated
// files, MaxSize each, newest first (.1 holds the bytes just before head),
// keeping at most MaxFiles-1 of them, older files shifted up behind them.
// Each new file gets the live file's modification time: no byte in it was
// written later.
func (l *serviceLog) moveHead(d *safefile.Dir, live *os.File, head int64, mtime time.Time) error {
	slots := l.limits.MaxFiles - 1
	if slots == 0 {
		return nil
	}
	keep := min(head, int64(slots)*l.limits.MaxSize)
	var pieces []string
	defer func() {
		for _, tmp := range pieces {
			d.Remove(tmp) // after the renames nothing is left: harmless
		}
	}()
	for end := head; end > head-keep; end -= l.limits.MaxSize {
		start := max(end-l.limits.MaxSize, head-keep)
		tmp := fmt.Sprintf(".%s.rotating.%d", l.name, len(pieces)+1)
		d.Remove(tmp)
		out, err := d.Open(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		pieces = append(pieces, tmp)
		_, err = io.Copy(out, io.NewSectionReader(live, start, end-start))
		ts := []unix.Timespec{unix.NsecToTimespec(time.Now().UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		unix.UtimesNanoAt(int(out.Fd()), "", ts, unix.AT_EMPTY_PATH)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("copying the head of %s: %w", live.Name(), err)
		}
	}
	k := len(pieces)
	for j := slots; j >= 1; j-- {
		var err error
		if j+k <= slots {
			err = d.Rename(l.rotated(j), l.rotated(j+k))
		} else {
			err = d.Remove(l.rotated(j))
		}
		if err != nil && !missing(err) {
			return err
		}
	}
	for i, tmp := range pieces {
		if err := d.Rename(tmp, l.rotated(i+1)); err != nil {
			return err
		}
	}
	return nil
}

// appendTo appends the live file's bytes [from, to) to the rotated file name.
func (l *serviceLog) appendTo(d *safefile.Dir, name string, live *os.File, from, to int64) error {
	out, err := d.Open(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.NewSectionReader(live, from, to-from))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// keptBefore is how many bytes the rotated files hold.
func (l *serviceLog) keptBefore(d *safefile.Dir) int64 {
	var n int64
	for k := 1; k < l.limits.MaxFiles; k++ {
		st, err := d.Lstat(l.rotated(k))
		if err != nil {
			break
		}
		n += st.Size
	}
	return n
}

// scanLines hands fn every line of the stream from logical offset from up
// to its end now, line by line (with its '\n'; complete false for a piece
// of a line longer than maxLogPiece), and returns the offset after the last
// byte handed on: a final unfinished line shorter than maxLogPiece is left for
// the next call, unless flush is set. fn returning false stops the scan.
// Memory stays within logChunk+maxLogPiece whatever the lines' lengths.
func (l *serviceLog) scanLines(from int64, flush bool, fn func(line []byte, start int64, v *logView) bool) (int64, error) {
	buf := make([]byte, logChunk+maxLogPiece)
	carry := 0 // bytes of an unfinished line at buf's start, from offset from
	for {
		v, err := l.view()
		if err != nil {
			return from, err
		}
		if from < v.oldest() { // rotated away before it was read
			from, carry = v.oldest(), 0
		}
		n, rerr := v.readFull(buf[carry:carry+logChunk], from+int64(carry))
		data := buf[:carry+n]
		pos, stop := 0, false
		for !stop {
			i := bytes.IndexByte(data[pos:], '\n')
			switch {
			case i >= 0 && i < maxLogPiece:
				stop = !fn(data[pos:pos+i+1], from+int64(pos), v)
				pos += i + 1
				continue
			case len(data)-pos >= maxLogPiece || (flush && n == 0 && len(data) > pos):
				end := min(len(data), pos+maxLogPiece)
				stop = !fn(data[pos:end], from+int64(pos), v)
				pos = end
				continue
			}
			break
		}
		v.close()
		from += int64(pos)
		carry = copy(buf, data[pos:])
		if stop || n == 0 || (rerr != nil && rerr != io.EOF) {
			if rerr == io.EOF {
				rerr = nil
			}
			return from, rerr
		}
	}
}

// tailStart returns the logical offset of the first of the last n lines
// (not before from), reading backwards in chunks: memory stays within one
// chunk however many lines are asked for.
func (l *serviceLog) tailStart(n int, from int64) (int64, error) {
	v, err := l.view()
	if err != nil {
		return 0, err
	}
	defer v.close()
	from = max(from, v.oldest())
	end := v.end()
	if n <= 0 {
		return end, nil
	}
	pos := end
	buf := make([]byte, logChunk)
	skipLast := true // a final '\n' ends the last line, it does not start one
	for pos > from {
		size := min(int64(len(buf)), pos-from)
		if k, err := v.readFull(buf[:size], pos-size); err != nil || int64(k) < size {
			return 0, fmt.Errorf("reading %s: %v", v.live.Name(), cmpErr(err, io.ErrUnexpectedEOF))
		}
		chunk := buf[:size]
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				skipLast = false
				continue
			}
			if skipLast {
				skipLast = false
				continue
			}
			if n--; n == 0 {
				return pos - size + int64(i) + 1, nil
			}
		}
		pos -= size
	}
	return from, nil
}

// tailText returns the last n lines written at or after logical offset
// from, as text (for the message of a failed start).
func (l *serviceLog) tailText(n int, from int64) string {
	start, err := l.tailStart(n, from)
	if err != nil {
		return ""
	}
	var b bytes.Buffer
	l.scanLines(start, true, func(line []byte, _ int64, _ *logView) bool {
		b.Write(line)
		if line[len(line)-1] != '\n' {
			b.WriteByte('\n')
		}
		return true
	})
	return string(bytes.TrimRight(b.Bytes(), "\n"))
}

// openForService prepares the log for a new start of its service: it
// rotates the log when due, opens it for appending (creating .cgdev/logs/
// and the file; never through a symlink, never a FIFO or a user's file),
// writes the start marker line and records it. It returns the descriptor
// to hand to the service and the logical offset where the service's output
// begins.
func (l *serviceLog) openForService(service string) (*os.File, int64, error) {
	d, err := l.dir(true)
	if err != nil {
		return nil, 0, err
	}
	defer d.Close()
	f, err := d.Open(l.name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, err
	}
	l.touch() // rotate before this run's first line, when due
	if err := l.appendLine(f, fmt.Sprintf("--- cgdev: starting %s at %s ---", service, time.Now().Format(time.RFC3339))); err != nil {
		f.Close()
		return nil, 0, err
	}
	l.touch() // checkpoint: what follows was written after now
	v, err := l.view()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	defer v.close()
	return f, v.end(), nil
}

// mark appends a cgdev line (e.g. "--- cgdev: stopped web … ---") to an
// existing log, on a line of its own, and records a checkpoint.
func (l *serviceLog) mark(line string) error {
	d, err := l.dir(false)
	if err != nil {
		return err
	}
	defer d.Close()
	f, err := d.Open(l.name, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := l.appendLine(f, line); err != nil {
		return err
	}
	return l.touch()
}

// appendLine writes line and a newline to f, after a newline of its own
// when the log does not end with one (a service's unfinished last line).
func (l *serviceLog) appendLine(f *os.File, line string) error {
	var last [1]byte
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		if r, err := l.dir(false); err == nil {
			if rf, err := r.Open(l.name, os.O_RDONLY, 0); err == nil {
				if _, err := rf.ReadAt(last[:], fi.Size()-1); err == nil && last[0] != '\n' {
					line = "\n" + line
				}
				rf.Close()
			}
			r.Close()
		}
	}
	_, err := io.WriteString(f, line+"\n")
	return err
}
