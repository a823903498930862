package launcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LoadOptions are what the command line adds to the project file.
type LoadOptions struct {
	// EnvFiles (-e/--env, relative to the working directory) are read into
	// every service's environment, below its own env_file and env. For a
	// Procfile or a process-compose.yaml they replace the default .env, as
	// foreman's and process-compose's -e do.
	EnvFiles []string
	// Port (-p/--port) is a Procfile's base port: its first process type
	// gets PORT=Port, the next Port+100, and so on (foreman's rule). 0: the
	// PORT of the env files, else $PORT, else 5000.
	Port int
}

// Procfile port assignment, as foreman and overmind do it.
const (
	defaultBasePort = 5000
	portStep        = 100
)

// parseProcfile reads "name: command" lines, as foreman, overmind and goreman
// do. Blank lines and lines starting with # are skipped; every service gets
// the defaults (SIGTERM, the default grace, no readiness check), the
// project's .env (or the -e files), and a PORT of its own.
func (c *loader) parseProcfile(b []byte) error {
	err := eachLine(c.File, b, func(line int, t string) error {
		t = strings.TrimSpace(t)
		if t == "" || strings.HasPrefix(t, "#") {
			return nil
		}
		name, command, ok := strings.Cut(t, ":")
		name, command = strings.TrimSpace(name), strings.TrimSpace(command)
		if !ok || command == "" {
			return &configError{File: c.File, Line: line, Msg: "expected 'name: command'"}
		}
		if err := checkServiceName(name); err != nil {
			return &configError{File: c.File, Line: line, Field: name, Msg: err.Error()}
		}
		if c.Service(name) != nil {
			return &configError{File: c.File, Line: line, Field: name, Msg: "service defined twice"}
		}
		if err := checkArg(command); err != nil {
			return &configError{File: c.File, Line: line, Field: name, Msg: "the command " + err.Error()}
		}
		c.Services = append(c.Services, &Service{Name: name, Line: line, Command: command, Dir: c.Dir,
			StopSignal: unix.SIGTERM, Grace: unsetGrace, Restart: defaultRestart})
		return nil
	})
	if err != nil {
		return err
	}
	return c.procfileEnv()
}

// procfileEnv gives each Procfile service the env files' variables and
// PORT: the base port plus 100 for each process type before it, in file
// order (web=5000, worker=5100, ...), overriding a PORT from the files.
func (c *loader) procfileEnv() error {
	env, err := c.readDefaultEnv()
	if err != nil {
		return err
	}
	base, err := c.basePort(env)
	if err != nil {
		return err
	}
	for i, s := range c.Services {
		port := base + portStep*i
		if port > 65535 {
			return &configError{File: c.File, Line: s.Line, Field: s.Name,
				Msg: fmt.Sprintf("PORT would be %d (base %d + %d per process type), above 65535: choose a lower base with -p/--port", port, base, portStep)}
		}
		s.Env = append(append(s.Env, env...), "PORT="+strconv.Itoa(port))
	}
	return nil
}

// basePort is -p, else the PORT the env files set, else $PORT, else 5000.
func (c *loader) basePort(env []string) (int, error) {
	if c.opt.Port != 0 {
		if c.opt.Port < 1 || c.opt.Port > 65535 {
			return 0, fmt.Errorf("-p/--port %d: a port is 1 to 65535", c.opt.Port)
		}
		return c.opt.Port, nil
	}
	from, val := "$PORT", os.Getenv("PORT")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PORT="); ok {
			from, val = "PORT in the env file", v
		}
	}
	if val == "" {
		return defaultBasePort, nil
	}
	n, err := strconv.Atoi(val)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s is %q, not a port from 1 to 65535 (the Procfile's base port; -p/--port overrides it)", from, val)
	}
	return n, nil
}

// readDefaultEnv reads the env files a Procfile or process-compose.yaml
// project gets: the -e files, else the project's .env when there is one.
// The -e files must be dotenv files; in a .env found by default, a line
// that is not KEY=VALUE (a format cgdev does not read: a multi-line value)
// is skipped with a warning, as foreman skips it, rather than stop every
// command of the project, stop included.
func (c *loader) readDefaultEnv() ([]string, error) {
	if len(c.opt.EnvFiles) > 0 {
		return c.readEnvFiles(c.opt.EnvFiles, false)
	}
	dotenv := filepath.Join(c.Dir, ".env")
	if _, err := os.Stat(dotenv); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return c.readEnvFiles([]string{dotenv}, true)
}

// readEnvFiles reads the env files named on the command line (or found by
// default), relative to the working directory; lenient skips (and warns
// about) the lines that are not KEY=VALUE.
func (c *loader) readEnvFiles(files []string, lenient bool) ([]string, error) {
	var skip func(*configError)
	if lenient {
		skip = func(e *configError) {
			c.Warnings = append(c.Warnings, e.Error()+": skipped (a .env found by default; with -e it is refused)")
		}
	}
	var out []string
	for _, f := range files {
		b, err := readBounded(f, maxEnvFile)
		if err != nil {
			return nil, fmt.Errorf("env file: %w", err)
		}
		abs, _ := filepath.Abs(f)
		env, err := parseDotenvSkipping(displayPath(abs), b, skip)
		if err != nil {
			return nil, err
		}
		out = append(out, env...)
	}
	return out, nil
}

// addEnvFiles puts the -e files' variables first in every service's
// environment, so that its own env_file and env win.
func (c *loader) addEnvFiles(files []string) error {
	env, err := c.readEnvFiles(files, false)
	if err != nil || len(env) == 0 {
		return err
	}
	for _, s := range c.Services {
		s.Env = append(append([]string(nil), env...), s.Env...)
	}
	return nil
}
