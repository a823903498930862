// Package faults is cgdev's fault suite: cgdev run against what goes wrong
// on real machines (hostile project files, a full or read-only disk, …).
// Every iteration checks the same three things: no process of the project
// survives, no cgroup of it is left, and no file of the user changed.
package faults

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// project is a temporary project run under a private cgroup base.
type project struct {
	t    *testing.T
	host *cgroup.Host
	dir  string
	id   string
}

// newProject writes config as cgdev.yaml in dir (a fresh temporary
// directory when dir is ""). At cleanup it force-stops the project and
// SIGKILLs any process still carrying its marker (all started by the test).
func newProject(t *testing.T, dir, config string) *project {
	t.Helper()
	h := testenv.CgroupBase(t)
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, "cgdev.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	p := &project{t: t, host: h, dir: dir, id: launcher.ProjectID(dir)}
	t.Cleanup(func() {
		if len(p.marked()) > 0 || p.groupExists() {
			p.cgdev(time.Minute, "stop", "--force")
		}
		for _, pid := range p.marked() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return p
}

// cgdev runs the binary in the project, killing it (and failing the test)
// when it has not finished within limit: a hang is one of the faults.
func (p *project) cgdev(limit time.Duration, args ...string) (code int, stdout, stderr string) {
	p.t.Helper()
	return testenv.RunWithin(p.t, p.dir, limit, args...)
}

// marked lists the live processes carrying the project's marker.
func (p *project) marked() []int {
	tab, err := proc.Snapshot()
	if err != nil {
		p.t.Fatal(err)
	}
	var out []int
	for pid, pr := range tab.Procs {
		if pr.State != 'Z' && proc.ReadMarker(pid).Project == p.id {
			out = append(out, pid)
		}
	}
	return out
}

func (p *project) groupExists() bool {
	_, err := os.Stat(filepath.Join(p.host.Cgroup2Mount, p.host.Base, p.id))
	return err == nil
}

// assertNothingLeft: no process of the project, no cgroup of it.
func (p *project) assertNothingLeft() {
	p.t.Helper()
	if !testenv.Eventually(10*time.Second, func() bool { return len(p.marked()) == 0 }) {
		p.t.Errorf("processes of the project survived: %v", p.marked())
	}
	if p.groupExists() {
		p.t.Errorf("the project's cgroup is left behind")
	}
}

// userFiles describes every file under the roots that cgdev may not
// change: a hash of each regular file's content, the target of each
// symlink, the type of anything else. cgdev's own files (regular files in
// a real .cgdev/ directory, services.pids* in a real .pids/ directory) are
// left out: those it may write and remove.
func userFiles(t *testing.T, roots ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range roots {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(root, path)
			fi, err := os.Lstat(path)
			if err != nil {
				return nil
			}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(path)
				out[path] = "symlink " + target
			case fi.Mode().IsRegular():
				if cgdevsOwn(root, rel) {
					return nil
				}
				out[path] = "file " + hashFile(path)
			case fi.IsDir():
				if rel == ".cgdev" || rel == ".pids" || strings.HasPrefix(rel, ".cgdev/") {
					return nil // cgdev's directories: it may create them
				}
				out[path] = "dir"
			default:
				out[path] = fmt.Sprintf("%v", fi.Mode().Type())
			}
			return nil
		})
	}
	return out
}

// cgdevsOwn says whether rel (a regular file) is one cgdev may change.
func cgdevsOwn(root, rel string) bool {
	realDir := func(name string) bool {
		fi, err := os.Lstat(filepath.Join(root, name))
		return err == nil && fi.IsDir()
	}
	switch {
	case strings.HasPrefix(rel, ".cgdev/"):
		parent := filepath.Dir(rel)
		return realDir(".cgdev") && (parent == ".cgdev" || realDir(parent))
	case strings.HasPrefix(rel, ".pids/services.pids"):
		return realDir(".pids")
	}
	return false
}

func hashFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	var st syscall.Stat_t
	syscall.Fstat(int(f.Fd()), &st)
	if st.Size > 64<<20 { // a huge sparse file: its size and times stand for it
		return fmt.Sprintf("size %d mtime %d", st.Size, st.Mtim.Nano())
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// assertUnchanged compares two userFiles snapshots.
func assertUnchanged(t *testing.T, before, after map[string]string) {
	t.Helper()
	for path, was := range before {
		if now, ok := after[path]; !ok {
			t.Errorf("%s (%s) was removed", path, was)
		} else if now != was {
			t.Errorf("%s changed: %s, was %s", path, now, was)
		}
	}
	for path, now := range after {
		if _, ok := before[path]; !ok {
			t.Errorf("%s (%s) appeared outside cgdev's own files", path, now)
		}
	}
}
