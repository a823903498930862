package launcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Project is a directory of services: its configuration, its stable id and
// where cgdev keeps its files.
type Project struct {
	ID     string // <sanitized base name>-<8 hex of sha256(abs dir)>: the cgroups' project name
	Dir    string // absolute
	Config *Config
	// NoConfig marks a project found by its .cgdev/ directory alone: its
	// config file is gone, and Config is empty (no services, the default
	// grace and orphan patterns). That is enough for stop, status and ps,
	// which find what still runs by the project id.
	NoConfig bool

	warn warnings // about the project's files, each printed once
}

// stateDirName is the directory cgdev keeps in every project it ran.
const stateDirName = ".cgdev"

// FindProject returns where the project of a command run in dir is, the way
// git finds its repository: the file named by -f when given (relative to
// dir), else the nearest of dir and its parents holding a project file
// (cgdev.yaml, else a Procfile, else a process-compose.yml or .yaml:
// findConfig's order) or a .cgdev/ directory.
// A .cgdev/ alone (config deleted or moved) yields config "": the project
// is still found, so that stop can stop what it left running.
func FindProject(dir, file string) (projectDir, config string, err error) {
	if file != "" {
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		return filepath.Dir(file), file, nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		if path, err := findConfig(d, ""); err == nil {
			return d, path, nil
		}
		// Lstat: a symlink called .cgdev is not a project's state (and
		// cgdev would not write through it).
		if fi, err := os.Lstat(filepath.Join(d, stateDirName)); err == nil && fi.IsDir() {
			return d, "", nil
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	return "", "", fmt.Errorf("no %s, Procfile or process-compose.yaml in %s or any parent directory (name one with -f FILE, or the project directory with -C DIR)", configFile, dir)
}

// OpenProject finds the project from the working directory (FindProject),
// loads its file and derives the project from its directory. What the file
// allows but probably does not mean is printed to stderr as a warning.
func OpenProject(file string) (*Project, error) { return OpenProjectWith(file, LoadOptions{}) }

// OpenProjectWith is OpenProject with what the command line adds to the
// project file (start's -e and -p).
func OpenProjectWith(file string, opt LoadOptions) (*Project, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	dir, path, err := FindProject(wd, file)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return withoutConfig(dir), nil
	}
	cfg, err := loadConfigWith(path, opt)
	if err != nil {
		return nil, err
	}
	if file == "" {
		cfg.Warnings = append(cfg.Warnings, unreadSiblings(path)...)
	}
	for _, w := range cfg.Warnings { // on every command, until the file is fixed
		fmt.Fprintf(os.Stderr, "cgdev: warning: %s\n", w)
	}
	return &Project{ID: ProjectID(cfg.Dir), Dir: cfg.Dir, Config: cfg}, nil
}

// OpenProjectDir finds the project as OpenProject does but leaves its
// file unread: the project of its directory, with no services configured
// (NoConfig), the default grace and orphan patterns. Enough for stop,
// status and ps, which find what runs by the project id, where the file
// cannot be loaded (broken since the start, or a variable it expands
// missing from this shell).
func OpenProjectDir(file string) (*Project, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	dir, path, err := FindProject(wd, file)
	if err != nil {
		return nil, err
	}
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return nil, err // -f naming no file: no project at all
		}
	}
	return withoutConfig(dir), nil
}

// withoutConfig is the project of dir with no config file read.
func withoutConfig(dir string) *Project {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // as loadConfig does: one id per directory
	}
	cfg := &Config{File: displayPath(filepath.Join(dir, stateDirName)), Dir: dir, Grace: defaultGrace,
		Patterns: mustCompileAll(DefaultOrphanPatterns)}
	return &Project{ID: ProjectID(dir), Dir: dir, Config: cfg, NoConfig: true}
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
func (p *Project) StateDir() string { return filepath.Join(p.Dir, stateDirName) }

// LogDir holds one <service>.log per service.
func (p *Project) LogDir() string { return filepath.Join(p.StateDir(), "logs") }

// LogFile is the log of service name.
func (p *Project) LogFile(name string) string { return filepath.Join(p.LogDir(), name+".log") }

// PidsDir is .pids/ in the project, for scripts that read PID files.
func (p *Project) PidsDir() string { return filepath.Join(p.Dir, ".pids") }

// Lock takes an exclusive flock on .cgdev/lock, waiting for any other cgdev
// invocation on this project to finish, and returns its release; meanwhile
// the lock file says who holds it (LockWait). A .cgdev or lock that is not
// what cgdev makes (a symlink, a FIFO) is an error satisfying
// safefile.IsNotOurs, and is left alone. On a read-only file system an
// existing lock is taken read-only.
func (p *Project) Lock() (unlock func(), err error) {
	return p.LockWait(context.Background(), 0, nil)
}

// lockFile takes an exclusive flock on .cgdev/<name> as Lock does, waiting
// for it, without saying who holds it.
func (p *Project) lockFile(name string) (unlock func(), err error) {
	f, err := p.openLock(name)
	if err != nil {
		return nil, err
	}
	if err := lockExclusive(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
