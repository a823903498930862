package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
)

// Issue 9, items 1 and 9: cgdev writes and removes its tracking files only
// as what it makes them (regular files in real directories, never through a
// symlink), leaves a user's file in their place alone with a warning, and
// never hangs on a FIFO or reads an unbounded file.

// cgdevWithin runs the binary in the project, failing the test when it
// hangs (testenv.RunWithin).
func (p *svcProject) cgdevWithin(limit time.Duration, args ...string) (code int, stdout, stderr string) {
	p.t.Helper()
	return testenv.RunWithin(p.t, p.dir, limit, args...)
}

const sleeper = `services:
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
`

// TestPidsRegularFileLeftAlone: a user's regular file called .pids is
// neither deleted by stop nor makes stop report FAILED.
func TestPidsRegularFileLeftAlone(t *testing.T) {
	p := newSvcProject(t, sleeper)
	pids := filepath.Join(p.dir, ".pids")
	writeFile(t, pids, "my notes, not cgdev's\n")
	code, _, errs := p.cgdev("start")
	if code != 0 || !strings.Contains(errs, ".pids is a regular file") {
		t.Errorf("start with a regular file .pids: exit %d, stderr %q; want 0 and a warning naming it", code, errs)
	}
	p.waitPids("web", 1)
	code, out, errs := p.cgdev("stop")
	if code != 0 || strings.Contains(out, "FAILED") {
		t.Errorf("stop with a regular file .pids: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if !strings.Contains(errs, ".pids is a regular file") {
		t.Errorf("stop did not say why it left .pids alone: stderr %q", errs)
	}
	assertContent(t, pids, "my notes, not cgdev's\n")
	p.assertNoProcessLeft("web")
}

// TestPidsSymlinkLeftAlone: a .pids symlink to a directory is not written
// through: the target's services.pids is neither overwritten nor deleted.
func TestPidsSymlinkLeftAlone(t *testing.T) {
	p := newSvcProject(t, sleeper)
	target := t.TempDir()
	writeFile(t, filepath.Join(target, "services.pids"), "4242\n")
	if err := os.Symlink(target, filepath.Join(p.dir, ".pids")); err != nil {
		t.Fatal(err)
	}
	code, _, errs := p.cgdev("start")
	if code != 0 || !strings.Contains(errs, ".pids is a symbolic link to "+target) {
		t.Errorf("start with .pids a symlink: exit %d, stderr %q; want 0 and a warning naming it", code, errs)
	}
	assertContent(t, filepath.Join(target, "services.pids"), "4242\n")
	code, out, errs := p.cgdev("stop")
	if code != 0 || strings.Contains(out, "FAILED") {
		t.Errorf("stop with .pids a symlink: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	assertContent(t, filepath.Join(target, "services.pids"), "4242\n")
	if fi, err := os.Lstat(filepath.Join(p.dir, ".pids")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf(".pids symlink removed or replaced: %v %v", fi, err)
	}
	p.assertNoProcessLeft("web")
}

// TestCgdevSymlinkRefused: with .cgdev a symlink, start refuses (it would
// write state, logs and lock elsewhere) and writes nothing through it;
// stop and status still work, from the kernel.
func TestCgdevSymlinkRefused(t *testing.T) {
	p := newSvcProject(t, sleeper)
	target := t.TempDir()
	if err := os.Symlink(target, filepath.Join(p.dir, ".cgdev")); err != nil {
		t.Fatal(err)
	}
	code, out, errs := p.cgdev("start")
	if code != 1 || !strings.Contains(errs, ".cgdev is a symbolic link to "+target) {
		t.Errorf("start with .cgdev a symlink: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if entries, _ := os.ReadDir(target); len(entries) > 0 {
		t.Errorf("start wrote through the .cgdev symlink: %v", entries)
	}
	code, out, errs = p.cgdev("stop")
	if code != 0 || strings.Contains(out, "FAILED") {
		t.Errorf("stop with .cgdev a symlink: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if entries, _ := os.ReadDir(target); len(entries) > 0 {
		t.Errorf("stop wrote through the .cgdev symlink: %v", entries)
	}
	p.assertNoProcessLeft("web")
}

// TestLogSymlinkRefused: a service's log that is a symlink (to a user's
// file) is not appended to: that service does not start, the file is
// unchanged, the other service starts.
func TestLogSymlinkRefused(t *testing.T) {
	p := newSvcProject(t, `services:
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
  db:
    command: 'echo $$ >> p/db; exec sleep 1000'
`)
	victim := filepath.Join(t.TempDir(), "precious")
	writeFile(t, victim, "precious\n")
	mkdir(t, filepath.Join(p.dir, ".cgdev", "logs"))
	if err := os.Symlink(victim, filepath.Join(p.dir, ".cgdev", "logs", "web.log")); err != nil {
		t.Fatal(err)
	}
	code, out, errs := p.cgdev("start")
	if code != 1 || !strings.Contains(out+errs, "web.log is a symbolic link to "+victim) {
		t.Errorf("start with web.log a symlink: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	assertContent(t, victim, "precious\n")
	p.waitPids("db", 1)
	p.mustCgdev("stop")
	assertContent(t, victim, "precious\n")
	p.assertNothingLeft("web", "db")
}

// TestFifosDoNotHang: a FIFO at state.json or at a log path makes no
// command wait for a writer or reader: status, stop and start finish, say
// which file they left alone, and the FIFOs stay.
func TestFifosDoNotHang(t *testing.T) {
	p := newSvcProject(t, `services:
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
  db:
    command: 'echo $$ >> p/db; exec sleep 1000'
`)
	mkdir(t, filepath.Join(p.dir, ".cgdev", "logs"))
	state := filepath.Join(p.dir, ".cgdev", "state.json")
	dbLog := filepath.Join(p.dir, ".cgdev", "logs", "db.log")
	for _, f := range []string{state, dbLog} {
		if err := syscall.Mkfifo(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := p.cgdevWithin(30*time.Second, "start")
	if code != 1 || !strings.Contains(out+errs, "db.log is a named pipe (FIFO)") || !strings.Contains(errs, "state.json is a named pipe (FIFO)") {
		t.Errorf("start with FIFOs: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	p.waitPids("web", 1)
	code, _, errs = p.cgdevWithin(30*time.Second, "status")
	if code != 3 || !strings.Contains(errs, "state.json is a named pipe (FIFO)") {
		t.Errorf("status with FIFOs: exit %d, stderr %q", code, errs)
	}
	p.cgdevWithin(30*time.Second, "logs")
	code, out, errs = p.cgdevWithin(30*time.Second, "stop")
	if code != 0 || strings.Contains(out, "FAILED") {
		t.Errorf("stop with FIFOs: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, f := range []string{state, dbLog} {
		if fi, err := os.Lstat(f); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("%s: FIFO removed or replaced (%v, %v)", f, fi, err)
		}
	}
	p.assertNoProcessLeft("web", "db")
}

// TestHugeStateIgnored: a state.json far larger than any cgdev writes is
// not read: status says so and reports from the kernel.
func TestHugeStateIgnored(t *testing.T) {
	p := newSvcProject(t, sleeper)
	p.mustCgdev("start")
	p.waitPids("web", 1)
	state := filepath.Join(p.dir, ".cgdev", "state.json")
	if err := os.Truncate(state, 256<<20); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	code, out, errs := p.cgdevWithin(30*time.Second, "status")
	if code != 0 || !strings.Contains(errs, "state.json is 268435456 bytes, more than the 1048576") || !strings.Contains(out, "running") {
		t.Errorf("status with a 256 MiB state.json: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	p.mustCgdev("stop")
	p.assertNoProcessLeft("web")
}

func writeFile(t *testing.T, path, content string) { testenv.WriteFile(t, path, content) }

func mkdir(t *testing.T, path string) { testenv.Mkdir(t, path) }

func assertContent(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != want {
		t.Errorf("%s: %q (%v), want %q unchanged", path, b, err, want)
	}
}
