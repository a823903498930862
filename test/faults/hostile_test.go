package faults

import (
	"cmp"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
	"golang.org/x/sys/unix"
)

// Hostile project files (issue 9): what a user, a tool or an attacker can
// leave where cgdev keeps its files. cgdev must leave each alone (no write
// through a symlink, no removal of a user's file), never hang on it, read
// nothing unbounded, and still stop everything.

const twoServices = `services:
  web:
    command: exec sleep 1000
  db:
    command: exec sleep 1000
`

// supervised is twoServices with a restart policy on web: start runs the
// supervisor, which writes events.
const supervised = twoServices + "    restart: on-failure\n"

// hostile is one case: setup makes the hostile object in the project (and
// anything it points to in outside, which is checked too).
type hostile struct {
	name    string
	setup   func(t *testing.T, dir, outside string)
	startOK bool   // whether start succeeds for every service
	config  string // twoServices when empty
}

var hostiles = []hostile{
	{"pids is a regular file", func(t *testing.T, dir, _ string) {
		write(t, filepath.Join(dir, ".pids"), "user notes\n")
	}, true, ""},
	{"pids is a symlink to a directory", func(t *testing.T, dir, outside string) {
		write(t, filepath.Join(outside, "services.pids"), "1\n")
		symlink(t, outside, filepath.Join(dir, ".pids"))
	}, true, ""},
	{"pids file is a symlink", func(t *testing.T, dir, outside string) {
		write(t, filepath.Join(outside, "victim"), "victim\n")
		mkdir(t, filepath.Join(dir, ".pids"))
		symlink(t, filepath.Join(outside, "victim"), filepath.Join(dir, ".pids", "services.pids"))
	}, true, ""},
	{"cgdev is a symlink to a directory", func(t *testing.T, dir, outside string) {
		write(t, filepath.Join(outside, "state.json"), "{}\n")
		symlink(t, outside, filepath.Join(dir, ".cgdev"))
	}, false, ""},
	{"cgdev is a regular file", func(t *testing.T, dir, _ string) {
		write(t, filepath.Join(dir, ".cgdev"), "not a directory\n")
	}, false, ""},
	{"state.json is a symlink", func(t *testing.T, dir, outside string) {
		write(t, filepath.Join(outside, "victim"), "victim\n")
		mkdir(t, filepath.Join(dir, ".cgdev"))
		symlink(t, filepath.Join(outside, "victim"), filepath.Join(dir, ".cgdev", "state.json"))
	}, true, ""},
	{"logs is a symlink", func(t *testing.T, dir, outside string) {
		mkdir(t, filepath.Join(dir, ".cgdev"))
		symlink(t, outside, filepath.Join(dir, ".cgdev", "logs"))
	}, false, ""},
	{"a log is a symlink", func(t *testing.T, dir, outside string) {
		write(t, filepath.Join(outside, "victim"), "victim\n")
		mkdir(t, filepath.Join(dir, ".cgdev", "logs"))
		symlink(t, filepath.Join(outside, "victim"), filepath.Join(dir, ".cgdev", "logs", "web.log"))
	}, false, ""},
	{"a log is a hard link", func(t *testing.T, dir, outside string) {
		write(t, filepath.Join(outside, "victim"), "victim\n")
		mkdir(t, filepath.Join(dir, ".cgdev", "logs"))
		if err := os.Link(filepath.Join(outside, "victim"), filepath.Join(dir, ".cgdev", "logs", "web.log")); err != nil {
			t.Fatal(err)
		}
	}, false, ""},
	{"state.json is a FIFO", func(t *testing.T, dir, _ string) {
		mkdir(t, filepath.Join(dir, ".cgdev"))
		mkfifo(t, filepath.Join(dir, ".cgdev", "state.json"))
	}, true, ""},
	{"a log is a FIFO", func(t *testing.T, dir, _ string) {
		mkdir(t, filepath.Join(dir, ".cgdev", "logs"))
		mkfifo(t, filepath.Join(dir, ".cgdev", "logs", "db.log"))
	}, false, ""},
	{"the lock is a FIFO", func(t *testing.T, dir, _ string) {
		mkdir(t, filepath.Join(dir, ".cgdev"))
		mkfifo(t, filepath.Join(dir, ".cgdev", "lock"))
	}, false, ""},
	{"state.json is 4 GiB", func(t *testing.T, dir, _ string) {
		mkdir(t, filepath.Join(dir, ".cgdev"))
		sparse(t, filepath.Join(dir, ".cgdev", "state.json"), 4<<30)
	}, true, ""},
	{"a log is 1 GiB", func(t *testing.T, dir, _ string) {
		mkdir(t, filepath.Join(dir, ".cgdev", "logs"))
		sparse(t, filepath.Join(dir, ".cgdev", "logs", "web.log"), 1<<30)
	}, true, ""},
	{"the log index is 1 GiB", func(t *testing.T, dir, _ string) {
		mkdir(t, filepath.Join(dir, ".cgdev", "logs"))
		sparse(t, filepath.Join(dir, ".cgdev", "logs", "web.log.idx"), 1<<30)
	}, true, ""},
	// The supervision files (issue 12): exit records, events, state.lock.
	{"the records directory is a symlink", func(t *testing.T, dir, outside string) {
		write(t, filepath.Join(outside, "web.json"), "victim\n")
		mkdir(t, filepath.Join(dir, ".cgdev"))
		symlink(t, outside, filepath.Join(dir, ".cgdev", "services"))
	}, true, ""},
	{"a record is a symlink", func(t *testing.T, dir, outside string) {
		write(t, filepath.Join(outside, "victim"), "victim\n")
		mkdir(t, filepath.Join(dir, ".cgdev", "services"))
		symlink(t, filepath.Join(outside, "victim"), filepath.Join(dir, ".cgdev", "services", "web.json"))
	}, true, ""},
	{"a record is a FIFO", func(t *testing.T, dir, _ string) {
		mkdir(t, filepath.Join(dir, ".cgdev", "services"))
		mkfifo(t, filepath.Join(dir, ".cgdev", "services", "db.json"))
	}, true, ""},
	{"a record is 1 GiB", func(t *testing.T, dir, _ string) {
		mkdir(t, filepath.Join(dir, ".cgdev", "services"))
		sparse(t, filepath.Join(dir, ".cgdev", "services", "web.json"), 1<<30)
	}, true, ""},
	{"the events are a symlink", func(t *testing.T, dir, outside string) {
		write(t, filepath.Join(outside, "victim"), "victim\n")
		mkdir(t, filepath.Join(dir, ".cgdev"))
		symlink(t, filepath.Join(outside, "victim"), filepath.Join(dir, ".cgdev", "events.log"))
	}, true, supervised},
	{"the events are a FIFO", func(t *testing.T, dir, _ string) {
		mkdir(t, filepath.Join(dir, ".cgdev"))
		mkfifo(t, filepath.Join(dir, ".cgdev", "events.log"))
	}, true, supervised},
	{"the events are 1 GiB", func(t *testing.T, dir, _ string) {
		mkdir(t, filepath.Join(dir, ".cgdev"))
		sparse(t, filepath.Join(dir, ".cgdev", "events.log"), 1<<30)
	}, true, supervised},
	{"state.lock is a FIFO", func(t *testing.T, dir, _ string) {
		mkdir(t, filepath.Join(dir, ".cgdev"))
		mkfifo(t, filepath.Join(dir, ".cgdev", "state.lock"))
	}, true, supervised},
}

// TestHostileProjectFiles runs start, status, logs and stop over each
// hostile case: no command hangs (each is killed, and the test fails,
// after a minute), stop exits 0 without FAILED, nothing is left running,
// no cgroup is left, and no user file (in the project or where its links
// point) changed.
func TestHostileProjectFiles(t *testing.T) {
	for _, h := range hostiles {
		t.Run(strings.ReplaceAll(h.name, " ", "_"), func(t *testing.T) {
			p := testenv.NewProject(t, "", cmp.Or(h.config, twoServices))
			outside := t.TempDir()
			h.setup(t, p.Dir, outside)
			before := userFiles(t, p.Dir, outside)
			code, out, errs := p.Cgdev(time.Minute, "start")
			if (code == 0) != h.startOK {
				t.Errorf("start: exit %d (want success: %v)\nstdout:\n%s\nstderr:\n%s", code, h.startOK, out, errs)
			}
			if code != 0 && !strings.Contains(out+errs, p.Dir) {
				t.Errorf("start failed without naming the file:\n%s%s", out, errs)
			}
			p.Cgdev(time.Minute, "status")
			p.Cgdev(time.Minute, "logs", "-n", "5")
			code, out, errs = p.Cgdev(time.Minute, "stop")
			if code != 0 || strings.Contains(out, "FAILED") {
				t.Errorf("stop: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
			}
			p.AssertNothingLeft()
			assertUnchanged(t, before, userFiles(t, p.Dir, outside))
		})
	}
}

// TestFullDisk: a project on a 2 MiB tmpfs. Filled before start, the
// services do not start (their logs cannot be written) and say why; filled
// by a service while it runs, status, logs (whose rotation needs room) and
// stop still work; either way stop leaves nothing and no user file changes.
func TestFullDisk(t *testing.T) {
	t.Run("before_start", func(t *testing.T) {
		mnt := smallTmpfs(t)
		p := testenv.NewProject(t, mnt, twoServices)
		fill(t, filepath.Join(mnt, "filler"))
		before := userFiles(t, p.Dir)
		code, out, errs := p.Cgdev(time.Minute, "start")
		if code == 0 || !strings.Contains(out+errs, "no space left on device") {
			t.Errorf("start on a full disk: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		code, out, errs = p.Cgdev(time.Minute, "stop")
		if code != 0 || strings.Contains(out, "FAILED") {
			t.Errorf("stop on a full disk: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		p.AssertNothingLeft()
		assertUnchanged(t, before, userFiles(t, p.Dir))
	})
	t.Run("while_running", func(t *testing.T) {
		mnt := smallTmpfs(t)
		p := testenv.NewProject(t, mnt, `services:
  flood:
    command: 'yes flood | head -c 4000000; exec sleep 1000'
    logs: {max_size: 256K}
  web:
    command: exec sleep 1000
`)
		before := userFiles(t, p.Dir)
		if code, out, errs := p.Cgdev(time.Minute, "start"); code != 0 {
			t.Fatalf("start: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		if code, out, errs := p.Cgdev(time.Minute, "status"); code != 0 {
			t.Errorf("status on a full disk: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		if code, out, errs := p.Cgdev(time.Minute, "logs", "-n", "3", "flood"); code != 0 || !strings.Contains(out, "flood | flood") {
			t.Errorf("logs on a full disk: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		code, out, errs := p.Cgdev(time.Minute, "stop")
		if code != 0 || strings.Contains(out, "FAILED") {
			t.Errorf("stop on a full disk: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		p.AssertNothingLeft()
		assertUnchanged(t, before, userFiles(t, p.Dir))
	})
}

// TestReadOnlyProject: the project's file system turns read-only while its
// services run (remounted; the kernel allows that only with no file open
// for writing on it, so these services send their output elsewhere):
// status, logs and stop work, stop exits 0 with a warning that the
// tracking files stay, and nothing is left. A start there fails, naming
// the file system, and starts nothing.
func TestReadOnlyProject(t *testing.T) {
	mnt := smallTmpfs(t)
	p := testenv.NewProject(t, mnt, `services:
  web:
    command: exec sleep 1000 >/dev/null 2>&1
  db:
    command: exec sleep 1000 >/dev/null 2>&1
`)
	if code, out, errs := p.Cgdev(time.Minute, "start"); code != 0 {
		t.Fatalf("start: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	remount(t, mnt, unix.MS_RDONLY)
	t.Cleanup(func() { remount(t, mnt, 0) })
	before := userFiles(t, p.Dir)
	p.Cgdev(time.Minute, "status")
	p.Cgdev(time.Minute, "logs")
	code, out, errs := p.Cgdev(time.Minute, "stop")
	if code != 0 || strings.Contains(out, "FAILED") || !strings.Contains(errs, "read-only file system") {
		t.Errorf("stop on a read-only project: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	p.AssertNothingLeft()
	remount(t, mnt, 0)
	os.RemoveAll(filepath.Join(mnt, ".cgdev"))
	os.RemoveAll(filepath.Join(mnt, ".pids"))
	remount(t, mnt, unix.MS_RDONLY)
	code, out, errs = p.Cgdev(time.Minute, "start")
	if code == 0 || !strings.Contains(errs, "read-only file system") {
		t.Errorf("start on a read-only project: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	p.AssertNothingLeft()
	assertUnchanged(t, before, userFiles(t, p.Dir))
}

// smallTmpfs mounts a 2 MiB tmpfs on a directory of the test's own and
// unmounts it when the test ends: the only mount the suite makes.
func smallTmpfs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	mkdir(t, mnt)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=2m,mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmounting %s: %v (detaching it)", mnt, err)
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	return mnt
}

func remount(t *testing.T, mnt string, flags uintptr) {
	t.Helper()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|flags, "size=2m,mode=0755"); err != nil {
		t.Fatalf("remounting %s: %v", mnt, err)
	}
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatal(err)
			}
			return
		}
	}
}

func write(t *testing.T, path, content string) { testenv.WriteFile(t, path, content) }

func mkdir(t *testing.T, path string) { testenv.Mkdir(t, path) }

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}
