// Package safefile reads and writes the files cgdev keeps in a project
// (.cgdev/ and .pids/) only as what cgdev makes them: regular files in real
// directories. Every path is resolved one component at a time from a
// directory file descriptor, never through a symbolic link (openat with
// O_NOFOLLOW), every open is non-blocking (a FIFO never hangs cgdev) and
// checked with fstat, every read is bounded, and every write of a whole file
// is a new file renamed into place (renameat). What is found in cgdev's place
// but is not what cgdev makes (a user's file named .pids, a symlink, a FIFO,
// a device) is reported as a *NotOursError and left alone.
package safefile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// NotOursError is something at one of cgdev's paths that cgdev did not make
// and will not touch: anything but a regular file (or, for a directory, a
// real directory), or a file with more than one name (a hard link).
type NotOursError struct {
	Path string // as given to Open…: absolute, or relative to the working directory
	What string // "a symbolic link to /x", "a named pipe (FIFO)", "a regular file", …
	Want string // "directory" or "regular file"
}

func (e *NotOursError) Error() string {
	return fmt.Sprintf("%s is %s, not a %s cgdev made: left alone", e.Path, e.What, e.Want)
}

// TooBigError is a file larger than its reader's bound.
type TooBigError struct {
	Path  string
	Size  int64
	Limit int64
}

func (e *TooBigError) Error() string {
	return fmt.Sprintf("%s is %d bytes, more than the %d bytes cgdev reads of it: ignored", e.Path, e.Size, e.Limit)
}

// IsNotOurs reports whether err is, or wraps, a *NotOursError.
func IsNotOurs(err error) bool {
	var n *NotOursError
	return errors.As(err, &n)
}

// Dir is an open directory. Names given to its methods are single path
// components (no "/"), resolved relative to it without following symlinks.
type Dir struct {
	fd   int
	path string
}

// OpenRoot opens the directory at path, following symlinks on the way (the
// project directory is where the user chose to work, however reached).
func OpenRoot(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &Dir{fd: fd, path: path}, nil
}

// Path is the directory's path as it was opened.
func (d *Dir) Path() string { return d.path }

// Close releases the directory's descriptor.
func (d *Dir) Close() error { return unix.Close(d.fd) }

func (d *Dir) join(name string) string { return filepath.Join(d.path, name) }

// Sub opens the real directory name inside d, creating it (mode 0755) first
// when create is set. A missing directory without create is an error
// satisfying errors.Is(err, os.ErrNotExist); anything else there (a file,
// a symlink, a FIFO) is a *NotOursError.
func (d *Dir) Sub(name string, create bool) (*Dir, error) {
	if create {
		if err := unix.Mkdirat(d.fd, name, 0o755); err != nil && err != unix.EEXIST {
			return nil, &os.PathError{Op: "mkdir", Path: d.join(name), Err: err}
		}
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOTDIR || err == unix.ELOOP {
		return nil, d.notOurs(name, "directory")
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: d.join(name), Err: err}
	}
	return &Dir{fd: fd, path: d.join(name)}, nil
}

// notOurs describes what is at name, for a *NotOursError.
func (d *Dir) notOurs(name, want string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "stat", Path: d.join(name), Err: err}
	}
	what := Describe(st.Mode)
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		buf := make([]byte, 4096)
		if n, err := unix.Readlinkat(d.fd, name, buf); err == nil {
			what += " to " + string(buf[:n])
		}
	}
	return &NotOursError{Path: d.join(name), What: what, Want: want}
}

// Describe names a file type from a stat mode, with its article.
func Describe(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFIFO:
		return "a named pipe (FIFO)"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	}
	return fmt.Sprintf("a file of unknown type %#o", mode&unix.S_IFMT)
}

// Open opens the regular file name in d with flags (os.O_* values), adding
// O_NOFOLLOW, O_NONBLOCK and O_CLOEXEC: a symlink is refused by the kernel,
// and a FIFO or device opens without blocking and is then refused after
// fstat. A file opened for writing must also have one name only, so that
// cgdev never appends to a user's file through a hard link. O_NONBLOCK is
// cleared again before return (it means nothing for a regular file, and the
// descriptor may be handed to a service).
func (d *Dir) Open(name string, flags int, perm uint32) (*os.File, error) {
	fd, err := unix.Openat(d.fd, name, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, perm)
	if err == unix.ELOOP || err == unix.ENXIO || err == unix.EISDIR || err == unix.ENODEV {
		return nil, d.notOurs(name, "regular file")
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: d.join(name), Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: d.join(name), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &NotOursError{Path: d.join(name), What: Describe(st.Mode), Want: "regular file"}
	}
	if flags&(os.O_WRONLY|os.O_RDWR) != 0 && st.Nlink > 1 {
		unix.Close(fd)
		return nil, &NotOursError{Path: d.join(name), What: fmt.Sprintf("a regular file with %d names (hard links)", st.Nlink), Want: "regular file"}
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	return os.NewFile(uintptr(fd), d.join(name)), nil
}

// ReadFile returns the content of the regular file name, refusing (with a
// *TooBigError) one larger than limit bytes.
func (d *Dir) ReadFile(name string, limit int64) ([]byte, error) {
	f, err := d.Open(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, &TooBigError{Path: f.Name(), Size: fi.Size(), Limit: limit}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit { // it grew while being read
		return nil, &TooBigError{Path: f.Name(), Size: int64(len(b)), Limit: limit}
	}
	return b, nil
}

// Lstat describes name in d without following a symlink.
func (d *Dir) Lstat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return st, &os.PathError{Op: "stat", Path: d.join(name), Err: err}
	}
	return st, nil
}

// WriteFile replaces name with a new regular file holding data (mode 0644),
// atomically: a reader sees the old content or the new, never a part. What
// is at name must be a regular file or nothing; anything else (a symlink, a
// FIFO, a directory) is left alone and reported as a *NotOursError.
func (d *Dir) WriteFile(name string, data []byte) error {
	if err := d.checkReplaceable(name); err != nil {
		return err
	}
	tmp := "." + name + ".tmp" + randomSuffix()
	f, err := d.Open(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer unix.Unlinkat(d.fd, tmp, 0) // after a successful rename there is nothing there: harmless
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644) // whatever the umask
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", d.join(name), err)
	}
	return d.Rename(tmp, name)
}

// Rename renames old to new within d (renameat: the entries, never what a
// symlink points to). What is at new must be a regular file or nothing.
func (d *Dir) Rename(old, new string) error {
	if err := d.checkReplaceable(new); err != nil {
		return err
	}
	if err := unix.Renameat(d.fd, old, d.fd, new); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", d.join(old), new, err)
	}
	return nil
}

// checkReplaceable refuses to replace anything at name but a regular file.
func (d *Dir) checkReplaceable(name string) error {
	st, err := d.Lstat(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return d.notOurs(name, "regular file")
	}
	return nil
}

// Remove removes the regular file name; nothing there is not an error, and
// anything else there is left alone and reported as a *NotOursError.
func (d *Dir) Remove(name string) error {
	if err := d.checkReplaceable(name); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "remove", Path: d.join(name), Err: err}
	}
	return nil
}

// Names lists the entries of d (without "." and ".."), in directory order.
func (d *Dir) Names() ([]string, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	return f.Readdirnames(-1)
}

// RemoveDirIfEmpty removes the directory name when it is a real, empty
// directory; otherwise (not empty, a symlink, missing) it does nothing.
func (d *Dir) RemoveDirIfEmpty(name string) {
	unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR) // ENOTEMPTY, ENOTDIR for a symlink, ENOENT: all fine
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
