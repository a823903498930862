package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/cgroups/v3/cgroup2"
	"golang.org/x/sys/unix"
)

// Direct creates groups as plain directories under Host.Base in the cgroup2
// tree, and starts commands inside them with clone3(CLONE_INTO_CGROUP).
type Direct struct {
	host *Host
	// cloneInto says whether clone3(CLONE_INTO_CGROUP) may be used; decided
	// once, before any start, since an exec.Cmd cannot be started twice.
	cloneInto bool
}

// NewDirect returns the direct driver, or an error saying why this machine or
// user cannot use it.
func NewDirect(h *Host) (*Direct, error) {
	if h.Cgroup2Mount == "" {
		return nil, errors.New("direct driver: no cgroup2 hierarchy is mounted")
	}
	if h.Delegation != nil && h.Delegation.Cgroup == "" {
		return nil, h.Delegation.refusal()
	}
	if !h.BaseWritable {
		return nil, fmt.Errorf("direct driver: %s is not writable by this user (no delegated cgroup subtree)",
			filepath.Join(h.Cgroup2Mount, filepath.Dir(h.Base)))
	}
	return &Direct{host: h, cloneInto: cloneIntoCgroupUsable()}, nil
}

func (d *Direct) Name() string { return "direct" }

func (d *Direct) Check(l *Limits) error {
	return d.host.CheckControllers(d.Name(), l, d.host.Controllers)
}

// relPath maps a spec to its cgroup, relative to the mount:
// Base/<project>/<name> for services, Base/run-<name> for runs.
func (d *Direct) relPath(project, name string) string {
	if project == "" {
		return filepath.Join(d.host.Base, "run-"+name)
	}
	return filepath.Join(d.host.Base, project, name)
}

func (d *Direct) Start(ctx context.Context, spec Spec, cmd *exec.Cmd) (Group, error) {
	if err := spec.Prepare(ctx, cmd); err != nil {
		return nil, err
	}
	if err := d.Check(&spec.Limits); err != nil {
		return nil, err
	}
	rel := d.relPath(spec.Project, spec.Name)
	g := &directGroup{name: spec.Name, Dir: Dir(filepath.Join(d.host.Cgroup2Mount, rel)), base: d.baseDir()}
	err := d.createRetry(rel, &spec.Limits)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		start := startThenMove
		if d.cloneInto {
			start = startInto
		}
		err = start(cmd, g.Dir)
	}
	if err != nil {
		g.Remove() // nothing runs in it; also removes emptied project and base directories
		return nil, err
	}
	return g, nil
}

// Close does nothing: Direct holds no resource.
func (d *Direct) Close() error { return nil }

func (d *Direct) baseDir() string { return filepath.Join(d.host.Cgroup2Mount, d.host.Base) }

// createRetry retries create when a concurrent cgdev removed the emptied base
// directory between creating it and creating the group inside it.
func (d *Direct) createRetry(rel string, l *Limits) error {
	err := d.create(rel, l)
	for i := 0; i < 3 && errors.Is(err, os.ErrNotExist); i++ {
		err = d.create(rel, l)
	}
	return err
}

// create makes the cgroup rel with limits applied, and checks each limit's file
// exists afterwards, so that no limit is dropped unnoticed.
func (d *Direct) create(rel string, l *Limits) error {
	path := Dir(filepath.Join(d.host.Cgroup2Mount, rel))
	if populated, _ := path.Populated(); populated {
		return fmt.Errorf("cgroup %s already exists and holds processes", path)
	}
	path.Remove() // a stale empty group from an earlier crash
	if l.Empty() {
		if err := os.MkdirAll(string(path), 0o755); err != nil {
			return fmt.Errorf("creating cgroup %s: %w", path, err)
		}
		return nil
	}
	if _, err := enableControllers(Dir(filepath.Join(d.host.Cgroup2Mount, filepath.Dir(d.host.Base))), l.Controllers()); err != nil {
		return fmt.Errorf("enabling %v for cgdev's groups: %w", l.Controllers(), err)
	}
	res, unified := l.Cgroup2()
	m, err := cgroup2.NewManager(d.host.Cgroup2Mount, rel, res)
	if err != nil {
		path.Remove()
		return fmt.Errorf("creating cgroup %s with %s: %w", path, l, err)
	}
	// NewManager enables only the controllers of typed fields; memory.high,
	// memory.swap.max and cpu.weight travel in unified and need theirs too.
	if err := m.ToggleControllers(l.Controllers(), cgroup2.Enable); err != nil {
		path.Remove()
		return fmt.Errorf("enabling %v for %s: %w", l.Controllers(), path, err)
	}
	for _, name := range sortedKeys(unified) {
		if err := path.WriteFile(name, unified[name]); err != nil {
			path.Remove()
			return err
		}
	}
	for _, r := range l.Requirements() {
		if _, err := os.Stat(filepath.Join(string(path), r.File)); err != nil {
			path.Remove()
			return fmt.Errorf("%s: %s missing after setting it: %w", r.Property, r.File, err)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// startInto starts cmd as a member of dir from its first instruction, with
// clone3(CLONE_INTO_CGROUP).
func startInto(cmd *exec.Cmd, dir Dir) error {
	fd, err := unix.Open(string(dir), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening cgroup %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	if err := cmd.Start(); err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.E2BIG) {
			return fmt.Errorf("%w (clone3 into a cgroup was refused although the kernel should have it)", err)
		}
		return err
	}
	return nil
}

// cloneIntoCgroupUsable reports whether clone3(CLONE_INTO_CGROUP) can be
// used: a kernel of 5.7 or later, and no seccomp filter, since container
// runtimes' default profiles answer clone3 with ENOSYS. Elsewhere cgdev
// starts the command at a gate and moves it in before it may exec
// (startThenMove): as safe, one /bin/sh exec slower.
func cloneIntoCgroupUsable() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil || !kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 7) {
		return false
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			return strings.TrimSpace(v) == "0"
		}
	}
	return true // a kernel without seccomp
}

// kernelAtLeast compares a release string such as "6.1.0-56-cloud-amd64".
func kernelAtLeast(release string, major, minor int) bool {
	var maj, min int
	if _, err := fmt.Sscanf(release, "%d.%d", &maj, &min); err != nil {
		return false
	}
	return maj > major || maj == major && min >= minor
}

// startThenMove starts cmd held at a gate, moves it into dir, then lets it
// exec: nothing it runs can fork outside dir.
func startThenMove(cmd *exec.Cmd, dir Dir) error {
	return startGated(cmd, func(pid int) error {
		return dir.WriteFile("cgroup.procs", strconv.Itoa(pid))
	})
}

func (d *Direct) Groups(project string) ([]Group, error) {
	parent, prefix := d.baseDir(), "run-"
	if project != "" {
		parent, prefix = filepath.Join(parent, project), ""
	}
	entries, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", parent, err)
	}
	var groups []Group
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), prefix)
		if !e.IsDir() || !ok {
			continue
		}
		groups = append(groups, &directGroup{name: name, Dir: Dir(filepath.Join(parent, e.Name())), base: d.baseDir()})
	}
	return groups, nil
}

// directGroup is a cgroup created by Direct.
type directGroup struct {
	Dir
	name string
	base string // Base directory; emptied parents up to it are removed
}

func (g *directGroup) Name() string { return g.name }
func (g *directGroup) Path() string { return string(g.Dir) }

// Remove deletes the group, then its project directory and the base when
// they are left empty (so an idle machine carries no trace of cgdev).
func (g *directGroup) Remove() error {
	if populated, err := g.Populated(); err != nil {
		return fmt.Errorf("removing cgroup %s: %w", g.Dir, err)
	} else if populated {
		return fmt.Errorf("removing cgroup %s: %w", g.Dir, ErrPopulated)
	}
	if err := g.Dir.Remove(); err != nil {
		return err
	}
	for p := filepath.Dir(string(g.Dir)); strings.HasPrefix(p, g.base); p = filepath.Dir(p) {
		if unix.Rmdir(p) != nil {
			break
		}
	}
	return nil
}
