package launcher

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"
)

// Project is a directory of services: its configuration, its stable id and
// where cgdev keeps its files.
type Project struct {
	ID     string // <sanitized base name>-<8 hex of sha256(abs dir)>: the cgroups' project name
	Dir    string // absolute
	Config *Config
}

// OpenProject loads the project file (file, or cgdev.yaml, or a Procfile in
// the working directory) and derives the project from its directory.
func OpenProject(file string) (*Project, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	path, err := FindConfig(wd, file)
	if err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		return nil, err
	}
	return &Project{ID: ProjectID(cfg.Dir), Dir: cfg.Dir, Config: cfg}, nil
}

var idUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// ProjectID is the stable id of the project in dir (an absolute path): its
// base name made safe for cgroup and unit names, and a hash of the full path
// so that two checkouts called "app" never share cgroups.
func ProjectID(dir string) string {
	name := strings.Trim(idUnsafe.ReplaceAllString(filepath.Base(dir), "_"), "_-")
	if len(name) > 40 {
		name = name[:40]
	}
	if name == "" {
		name = "project"
	}
	sum := sha256.Sum256([]byte(dir))
	return name + "-" + hex.EncodeToString(sum[:4])
}

// StateDir is .cgdev/ in the project: state.json, logs/ and the lock.
func (p *Project) StateDir() string { return filepath.Join(p.Dir, ".cgdev") }

// LogDir holds one <service>.log per service.
func (p *Project) LogDir() string { return filepath.Join(p.StateDir(), "logs") }

// LogFile is the log of service name.
func (p *Project) LogFile(name string) string { return filepath.Join(p.LogDir(), name+".log") }

// PidsDir is .pids/ in the project, for scripts that read PID files.
func (p *Project) PidsDir() string { return filepath.Join(p.Dir, ".pids") }

// Lock takes an exclusive flock on .cgdev/lock, waiting for any other cgdev
// invocation on this project to finish, and returns its release.
func (p *Project) Lock() (unlock func(), err error) {
	if err := os.MkdirAll(p.StateDir(), 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", p.StateDir(), err)
	}
	path := filepath.Join(p.StateDir(), "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
