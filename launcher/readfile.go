package launcher

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Bounds on what loading a project reads. Each file is a regular file of at
// most its bound, each line of a Procfile or env file at most maxLine, and
// each command or environment string at most what the kernel passes to a
// program (MAX_ARG_STRLEN, 32 pages of 4 KiB, with its terminating NUL).
const (
	maxProjectFile = 1 << 20  // cgdev.yaml, Procfile
	maxEnvFile     = 16 << 20 // each env_file
	maxLine        = 1 << 20
	maxArgString   = 32 * 4096
)

// readBounded reads the regular file path, of at most limit bytes. A FIFO,
// a device, a socket or a directory is refused without being opened (opening
// a device can act: a watchdog starts counting); the open is non-blocking
// (a FIFO swapped in after the check cannot hang it), and fstat on the
// opened file decides again.
func readBounded(path string, limit int64) ([]byte, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if err := checkRegular(path, fi, limit); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkRegular(path, fi, limit); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1)) // a file still growing stops here
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s has grown past the %s cgdev reads from it", path, sizeText(limit))
	}
	return b, nil
}

func checkRegular(path string, fi fs.FileInfo, limit int64) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is %s, not a regular file", path, describeMode(fi.Mode()))
	}
	if fi.Size() > limit {
		return fmt.Errorf("%s is %d bytes, more than the %s cgdev reads from it", path, fi.Size(), sizeText(limit))
	}
	return nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a plain file (" + m.Type().String() + ")"
}

func sizeText(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }

// eachLine calls f with each line of b, numbered from 1, without its line
// ending. A line longer than maxLine is refused, naming file and line.
func eachLine(file string, b []byte, f func(line int, text string) error) error {
	for n, text := 1, string(b); text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		if len(line) > maxLine {
			return &configError{File: file, Line: n, Msg: fmt.Sprintf("a line of %d bytes, longer than the %s cgdev reads", len(line), sizeText(maxLine))}
		}
		if err := f(n, strings.TrimSuffix(line, "\r")); err != nil {
			return err
		}
		text = rest
	}
	return nil
}

// checkArg refuses a string that exec cannot pass to a program: one with a
// NUL byte, or one longer than the kernel's bound on a single argument or
// environment string.
func checkArg(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("contains a NUL byte, which no command line or environment can carry")
	}
	if len(s) >= maxArgString {
		return fmt.Errorf("is %d bytes; the kernel passes at most %d bytes per argument or environment string (MAX_ARG_STRLEN, with its terminating NUL)", len(s), maxArgString)
	}
	return nil
}
