package testenv

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/launcher"
)

// Project is a temporary cgdev project run under a private cgroup base
// (CgroupBase): what the e2e and fault suites share.
type Project struct {
	T    testing.TB
	Host *cgroup.Host
	Dir  string // the project directory, symlinks resolved
	ID   string // launcher.ProjectID(Dir)
}

// NewProject writes config as cgdev.yaml in dir (a fresh temporary
// directory when dir is "") under a private cgroup base. At cleanup it
// force-stops the project and SIGKILLs any process still carrying its
// marker (all of them started by the test), so a failing test leaks nothing.
func NewProject(t testing.TB, dir, config string) *Project {
	t.Helper()
	h := CgroupBase(t)
	if dir == "" {
		dir = t.TempDir()
	}
	WriteFile(t, filepath.Join(dir, "cgdev.yaml"), config)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	p := &Project{T: t, Host: h, Dir: dir, ID: launcher.ProjectID(dir)}
	t.Cleanup(func() {
		if len(p.Marked()) > 0 || p.GroupExists() {
			p.Cgdev(time.Minute, "stop", "--force")
		}
		for _, pid := range p.Marked() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return p
}

// Cgdev runs the binary in the project (RunWithin): a run longer than
// limit is a hang, killed, and fails the test.
func (p *Project) Cgdev(limit time.Duration, args ...string) (code int, stdout, stderr string) {
	p.T.Helper()
	return RunWithin(p.T, p.Dir, limit, args...)
}

// Marked lists the live processes carrying the project's marker.
func (p *Project) Marked() []int { return Marked(p.T, p.ID) }

// GroupDir is the project's cgroup under the private base.
func (p *Project) GroupDir() string { return GroupDir(p.Host, p.ID) }

// GroupExists says whether the project's cgroup is still there.
func (p *Project) GroupExists() bool {
	_, err := os.Stat(p.GroupDir())
	return err == nil
}

// AssertNothingLeft fails the test when a process of the project survives
// (waiting up to 10 s for the last ones to go) or its cgroup is left.
func (p *Project) AssertNothingLeft() {
	p.T.Helper()
	if !Eventually(10*time.Second, func() bool { return len(p.Marked()) == 0 }) {
		p.T.Errorf("processes carrying %s=%s survived: %v", proc.ProjectEnv, p.ID, p.Marked())
	}
	if p.GroupExists() {
		p.T.Errorf("project cgroup %s left behind", p.GroupDir())
	}
}

// Marked lists every live process on the machine carrying project's marker.
func Marked(t testing.TB, project string) []int {
	t.Helper()
	tab, err := proc.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for pid, pr := range tab.Procs {
		if pr.State != 'Z' && proc.MarkerOf(pr).Project == project { // MarkerOf: sees through an exec in progress
			out = append(out, pid)
		}
	}
	return out
}

// GroupDir is project's cgroup under h's base.
func GroupDir(h *cgroup.Host, project string) string {
	return filepath.Join(h.Cgroup2Mount, h.Base, project)
}
