package sdvmtests_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/vmkit"
)

// PassEnv names the pass the test bed runs (see the package comment).
const PassEnv = "CGDEV_SDVM_PASS"

const (
	cgroupRoot = "/sys/fs/cgroup" // where systemd mounts cgroup2 in the VM
	mib        = vmkit.MiB
)

func TestMain(m *testing.M) {
	vmkit.MaybeRunHelper()
	os.Exit(m.Run())
}

// inPass skips the test unless it runs in the systemd VM, in one of passes
// (any pass when none are given), and returns the pass.
func inPass(t *testing.T, passes ...string) string {
	t.Helper()
	p := os.Getenv(PassEnv)
	if p == "" {
		t.Skip("runs only inside the systemd VM test bed (make vmtest-systemd)")
	}
	if len(passes) > 0 && !contains(passes, p) {
		t.Skipf("not in the %s pass (only %s)", p, strings.Join(passes, ", "))
	}
	if only := os.Getenv(OnlyEnv); only != "" && !regexp.MustCompile(only).MatchString(t.Name()) {
		t.Skipf("this pass runs only %s", only)
	}
	return p
}

// OnlyEnv, set by a pass, limits it to the tests matching a regexp: a pass
// that repeats another with the same driver (root with CGDEV_DRIVER=systemd
// repeats root, where auto picks systemd) runs a few of them.
const OnlyEnv = "CGDEV_SDVM_ONLY"

// hostPasses are the passes that run cgdev on the VM itself (not in a container).
var hostPasses = []string{"dev", "dev-delegate", "root", "root-delegate"}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// wantDriver is the driver cgdev must use in this pass: CGDEV_DRIVER when the
// pass sets it, else what auto must pick there (docs/environments.md).
func wantDriver(pass string) string {
	if d := os.Getenv(launcher.DriverEnv); d != "" {
		return d
	}
	switch pass {
	case "dev-delegate", "root-delegate":
		return "direct" // a delegated subtree: cgdev's own to write
	}
	return "systemd" // systemd owns the tree: ask it for scopes
}

// cgdevBin is the static cgdev binary the harness put in the VM.
func cgdevBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CGDEV_BIN"); p != "" {
		return p
	}
	t.Fatal("CGDEV_BIN is not set")
	return ""
}

// self is this test binary, which runs helpers when vmkit.HelperEnv is set.
func self(t *testing.T) string { return vmkit.Self(t) }

// cgdev is cgdev with args, run in dir with extra environment.
func cgdev(t *testing.T, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(cgdevBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// asUser turns cmd into the same command run by user the way that user's
// terminal runs it: with its session environment (home, runtime directory,
// bus), in a scope of its user manager (systemd-run --user --scope). Only
// root can do this.
func asUser(t *testing.T, cmd *exec.Cmd, name string) *exec.Cmd {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + u.HomeDir, "USER=" + name, "LOGNAME=" + name, "PATH=/usr/local/bin:/usr/bin:/bin",
		"XDG_RUNTIME_DIR=/run/user/" + u.Uid, "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/" + u.Uid + "/bus"}
	for _, kv := range cmd.Env { // keep what the test set, not root's session
		if strings.HasPrefix(kv, "CGDEV_") && !strings.HasPrefix(kv, "CGDEV_DRIVER=") {
			env = append(env, kv)
		}
	}
	args := append([]string{"-u", name, "--", "env", "-i"}, env...)
	args = append(args, "systemd-run", "--user", "--scope", "--quiet", "--collect", cmd.Path)
	c := exec.Command("runuser", append(args, cmd.Args[1:]...)...)
	c.Dir = cmd.Dir
	return c
}

// tag returns a fresh name made of letters, digits and underscores only, so
// that it appears verbatim in cgroup and unit names (systemd escapes '-').
func tag(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// project is a project directory with a cgdev.yaml whose services write the
// PIDs they spawn to p/<file>.
type project struct {
	t    *testing.T
	tag  string // the directory's base name, unique, part of every group name
	dir  string
	id   string
	user string // who runs cgdev for it ("" for the test's own user)
	env  []string
}

// newProject writes config as cgdev.yaml into /tmp/<tag>. At cleanup it
// force-stops the project and SIGKILLs every process still carrying its
// marker (all started by this test), so a failing test leaks nothing.
func newProject(t *testing.T, name, config string) *project {
	t.Helper()
	p := &project{t: t, tag: tag(name)}
	p.dir = filepath.Join(os.TempDir(), p.tag)
	p.id = launcher.ProjectID(p.dir)
	for _, d := range []string{p.dir, filepath.Join(p.dir, "p")} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, 0o777) // other users' projects in the same test write here too
	}
	if err := os.WriteFile(filepath.Join(p.dir, "cgdev.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if len(p.marked()) > 0 || len(p.groups()) > 0 {
			p.cgdev("stop", "--force")
		}
		for _, pid := range p.marked() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		os.RemoveAll(p.dir)
	})
	return p
}

// owned makes user the owner of the project's files and the one who runs cgdev.
func (p *project) owned(name string) *project {
	u, err := user.Lookup(name)
	if err != nil {
		p.t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	filepath.WalkDir(p.dir, func(path string, _ fs.DirEntry, _ error) error { return os.Lchown(path, uid, gid) })
	p.user = name
	return p
}

// cmd is cgdev with args for this project, as its user.
func (p *project) cmd(args ...string) *exec.Cmd {
	c := cgdev(p.t, p.dir, p.env, args...)
	if p.user != "" {
		c = asUser(p.t, c, p.user)
	}
	return c
}

// cgdev runs cgdev with args for this project (at most 3 minutes).
func (p *project) cgdev(args ...string) vmkit.Result {
	p.t.Helper()
	return vmkit.Run(p.t, 3*time.Minute, p.cmd(args...))
}

// must runs cgdev and fails the test unless it exits 0; it returns stdout.
func (p *project) must(args ...string) string {
	p.t.Helper()
	r := p.cgdev(args...)
	if r.Code != 0 {
		p.t.Fatalf("cgdev %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Took, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// pids returns the PIDs the services wrote to p/<file>.
func (p *project) pids(file string) []int { return vmkit.PIDs(filepath.Join(p.dir, "p", file)) }

// waitPids waits until p/<file> names at least n PIDs.
func (p *project) waitPids(file string, n int) []int {
	p.t.Helper()
	return vmkit.WaitPIDs(p.t, filepath.Join(p.dir, "p", file), n, time.Minute)
}

// ours reports whether pid is a live process of this project: it carries the
// marker or sits in a cgroup named after the project.
func (p *project) ours(pid int) bool { return vmkit.Ours(pid, p.id, p.tag) }

// marked lists every live process carrying the project's marker.
func (p *project) marked() []int { return vmkit.Marked(p.t, p.id) }

// groups lists what is left of the project's groups anywhere: cgroup
// directories named after it (direct groups, scopes) and the units, failed
// ones included, of the manager its user's cgdev talks to.
func (p *project) groups() []string {
	return groupsOf(p.tag, p.user)
}

// groupsTagged lists cgroups and units (of this user's manager) whose names
// contain tag.
func groupsTagged(tag string) []string { return groupsOf(tag, "") }

func groupsOf(tag, user string) []string {
	var left []string
	filepath.WalkDir(cgroupRoot, func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() && strings.Contains(e.Name(), tag) {
			left = append(left, "cgroup "+path)
		}
		return nil
	})
	for _, u := range units("cgdev-*"+tag+"*", user) {
		left = append(left, "unit "+u)
	}
	return left
}

// units lists the units matching pattern (all states) of the manager that
// user's cgdev would use ("" for this process's user): a user manager for a
// normal user, the system manager for root.
func units(pattern, user string) []string {
	args := []string{"list-units", "--all", "--plain", "--no-legend", pattern}
	switch {
	case user != "":
		args = append([]string{"--user", "-M", user + "@"}, args...)
	case os.Geteuid() != 0:
		args = append([]string{"--user"}, args...)
	}
	o, _ := vmkit.Within(30*time.Second, "systemctl", args...)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(o), "\n") {
		if f := strings.Fields(l); len(f) >= 4 {
			out = append(out, strings.Join(f[:4], " "))
		}
	}
	return out
}

// assertNothingLeft fails for each PID in files still running as ours, any
// process carrying the marker, any group or unit of the project, and the
// tracking files.
func (p *project) assertNothingLeft(files ...string) {
	p.t.Helper()
	vmkit.AssertNoSurvivors(p.t, p.dir, p.id, p.tag, files...)
	if g := p.groups(); len(g) > 0 {
		p.t.Errorf("groups left behind:\n  %s", strings.Join(g, "\n  "))
	}
	for _, f := range []string{".cgdev/state.json", ".pids/services.pids"} {
		if _, err := os.Stat(filepath.Join(p.dir, f)); err == nil {
			p.t.Errorf("%s left behind", f)
		}
	}
}

// status runs cgdev status --json.
func (p *project) status() map[string]launcher.ServiceStatus {
	p.t.Helper()
	var st struct {
		Project  string                   `json:"project"`
		Services []launcher.ServiceStatus `json:"services"`
	}
	r := p.cgdev("status", "--json")
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		p.t.Fatalf("status --json: exit %d: %v\n%s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	if st.Project != p.id {
		p.t.Errorf("status project %q, want %q", st.Project, p.id)
	}
	if want := launcher.StatusCode(st.Services); r.Code != want {
		p.t.Errorf("status --json: exit %d, want %d for %+v\n%s", r.Code, want, st.Services, r.Stderr)
	}
	m := map[string]launcher.ServiceStatus{}
	for _, s := range st.Services {
		m[s.Name] = s
	}
	return m
}

// statusText is `cgdev status`'s table, whatever its exit status (3 when
// a service is down: status checks that).
func (p *project) statusText() string {
	p.t.Helper()
	r := p.cgdev("status")
	if r.Code != 0 && r.Code != launcher.StatusDown {
		p.t.Fatalf("cgdev status: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// usedDriver reads the driver cgdev recorded in the project's state.json.
func (p *project) usedDriver() string {
	b, err := os.ReadFile(filepath.Join(p.dir, ".cgdev", "state.json"))
	if err != nil {
		p.t.Fatalf("state.json: %v", err)
	}
	var st struct {
		Driver string `json:"driver"`
	}
	json.Unmarshal(b, &st)
	return st.Driver
}

func cmdOf(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

func inDir(dir string, c *exec.Cmd) *exec.Cmd {
	c.Dir = dir
	return c
}
