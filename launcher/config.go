package launcher

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"go.yaml.in/yaml/v3"
)

// configFile is the project file cgdev looks for in the current directory.
const configFile = "cgdev.yaml"

// defaultGrace is how long a service gets between its stop signal and SIGKILL.
const defaultGrace = 3 * time.Second

// defaultReadyTimeout bounds a readiness check that sets no timeout.
const defaultReadyTimeout = 30 * time.Second

// DefaultOrphanPatterns match the dev tools that commonly escape a service's
// process tree. The stop sequence's orphan sweep uses them (only for
// processes of this project and user) unless orphans.patterns replaces them.
var DefaultOrphanPatterns = []string{
	`npm run dev`, `npm run start`, `npm start`, `npm run test`, `npm test`,
	`tsx watch`, `tsx.*run-agent`, `vitest`, `turbo run test`, `pnpm run test`, `esbuild`,
}

// Config is a parsed cgdev.yaml (or Procfile).
type Config struct {
	File     string // the file as named to the user (relative to the working directory when inside it)
	Dir      string // the project directory: the file's directory, absolute
	Driver   string // "" (not set), auto, direct, systemd or fallback
	Grace    time.Duration
	Patterns []*regexp.Regexp // orphans.patterns, compiled
	Compose  string           // compose.file, absolute; "" when unset
	// ComposeTimeout is compose.timeout, how long stop's phase 4 may take;
	// 0 when unset (cleanup's default, 2 minutes).
	ComposeTimeout time.Duration
	Logs           logSettings // logs: (logconfig.go)
	Services       []*Service  // in file order
	Warnings       []string    // what is allowed but probably not meant, each "file:line: field: why"

	processCompose bool // read from a process-compose.yaml
}

// Service is one entry of services:.
type Service struct {
	Name       string
	Line       int    // where the service is defined
	Command    string // run by Shell, exec'd when simple (serviceCommand)
	Dir        string // absolute working directory
	Env        []string
	DependsOn  []string
	Ready      *Ready // nil: no readiness check
	StopSignal syscall.Signal
	Grace      time.Duration
	Limits     cgroup.Limits
	Logs       logSettings // logs: (logconfig.go)
	Restart    Restart     // restart policy (supervise_config.go)
	Health     *Health     // liveness check; nil: none
	Watch      *Watch      // restart on file change; nil: none

	// Shell and its option run Command; nil: /bin/sh -c.
	Shell []string
	// Ports are the TCP ports the service listens on: those of ports:, else
	// the port of a tcp or http readiness check on this host (resolvePorts).
	// Each must be free before it starts, and its readiness check passes
	// only on a socket of its own group.
	Ports    []int
	portsSet bool // ports: given (an empty list disowns the check's port)
	// Disabled services (process-compose's disabled, is_foreground) start
	// only when named.
	Disabled bool

	// Type is TypeSimple (a service that runs until stopped) or TypeOneshot
	// (a task that runs to completion: exit 0 is success).
	Type string
	// DependsOnCondition says, for a dependency of DependsOn, what it must
	// have done before this service starts: CondStarted, CondReady (the
	// default, also for a dependency not in the map) or CondCompleted.
	DependsOnCondition map[string]string
	// StopCommand is run (helper.go) before the stop signal, bounded by
	// StopTimeout; "" for none.
	StopCommand string
	StopTimeout time.Duration
	// Timeout bounds a oneshot's run (0: none, as systemd's TimeoutStartSec
	// for Type=oneshot): past it, its group is stopped and the start fails.
	Timeout time.Duration
}

// Service types.
const (
	TypeSimple  = "simple"
	TypeOneshot = "oneshot"
)

// Dependency conditions: what a dependency must have done before its
// dependant starts.
const (
	CondStarted   = "started"   // its process runs (its readiness check may still be waiting)
	CondReady     = "ready"     // ready: its check passed, or it ran the settle period; a oneshot: completed
	CondCompleted = "completed" // a oneshot that exited 0
)

// defaultStopTimeout bounds a stop_command that sets no stop_timeout.
const defaultStopTimeout = 30 * time.Second

// Oneshot says whether the service is a task that runs to completion.
func (s *Service) Oneshot() bool { return s.Type == TypeOneshot }

// Condition is what dependency dep must have done before s starts.
func (s *Service) Condition(dep string) string {
	if c := s.DependsOnCondition[dep]; c != "" {
		return c
	}
	return CondReady
}

// Ready is a readiness check: exactly one of its kinds, and a timeout.
type Ready struct {
	Kind    string // tcp, http, exec or log
	Target  string // HOST:PORT, URL, command or regular expression
	Timeout time.Duration
	re      *regexp.Regexp
}

// Service returns the service called name, or nil.
func (c *Config) Service(name string) *Service {
	for _, s := range c.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Names returns the service names in file order.
func (c *Config) Names() []string {
	names := make([]string, len(c.Services))
	for i, s := range c.Services {
		names[i] = s.Name
	}
	return names
}

// DefaultNames returns the services that start when none is named: all
// but the disabled ones, in file order.
func (c *Config) DefaultNames() []string {
	var names []string
	for _, s := range c.Services {
		if !s.Disabled {
			names = append(names, s.Name)
		}
	}
	return names
}

// configError is a refused configuration, located by file, line and field.
type configError struct {
	File  string
	Line  int
	Field string // dotted path such as services.api.grace; "" for the file itself
	Msg   string
}

func (e *configError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return loc + ": " + e.Msg
}

// findConfig returns the project file to read: file when given, else
// cgdev.yaml in dir, else a Procfile, else process-compose.yml, else
// process-compose.yaml.
func findConfig(dir, file string) (string, error) {
	if file != "" {
		return file, nil
	}
	for _, name := range projectFileNames() {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name), nil
		}
	}
	return "", fmt.Errorf("no %s, Procfile or process-compose.yaml in %s (use -f FILE to name one)", configFile, dir)
}

// projectFileNames are the names findConfig looks for, in its order.
func projectFileNames() []string {
	return append([]string{configFile, "Procfile"}, processComposeNames...)
}

// unreadSiblings says which project files beside the one findConfig chose
// (path) cgdev does not read: another project file, or the override file
// process-compose would merge into a process-compose.yaml.
func unreadSiblings(path string) []string {
	dir, chosen := filepath.Split(path)
	exists := func(name string) bool { _, err := os.Stat(filepath.Join(dir, name)); return err == nil }
	var out []string
	for _, name := range projectFileNames() {
		if name != chosen && exists(name) {
			out = append(out, fmt.Sprintf("%s is not read: cgdev reads %s, the first of %s here (name the other with -f)",
				name, chosen, strings.Join(projectFileNames(), ", ")))
		}
	}
	if !strings.HasPrefix(chosen, "process-compose") {
		return out
	}
	for _, name := range []string{"process-compose.override.yml", "process-compose.override.yaml"} {
		if exists(name) {
			out = append(out, fmt.Sprintf("%s is not merged: cgdev reads %s alone (process-compose would merge the override into it)", name, chosen))
		}
	}
	return out
}

// loadConfig reads and checks a cgdev.yaml, or a Procfile when the file's base
// name is Procfile. Everything is checked before anything can start: unknown
// keys, durations, sizes, signals, readiness checks, env files and cycles in
// depends_on are refused with the file, line and field.
func loadConfig(path string) (*Config, error) { return loadConfigWith(path, LoadOptions{}) }

// loadConfigWith is loadConfig with what the command line adds (-e, -p).
func loadConfigWith(path string, opt LoadOptions) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	b, err := readBounded(path, maxProjectFile)
	if err != nil {
		return nil, &configError{File: displayPath(abs), Msg: fmt.Sprintf("reading project file: %v", err)}
	}
	dir := filepath.Dir(abs)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // what /proc/PID/cwd shows, and one id per directory however it is reached
	}
	c := &loader{Config: &Config{File: displayPath(abs), Dir: dir, Grace: defaultGrace}, opt: opt}
	switch {
	case strings.HasPrefix(filepath.Base(path), "Procfile"):
		err = c.parseProcfile(b)
	case isProcessCompose(path, b):
		err = c.parseProcessCompose(b)
	default:
		err = c.parseYAML(b)
	}
	if err != nil {
		return nil, err
	}
	if c.Patterns == nil {
		c.Patterns = mustCompileAll(DefaultOrphanPatterns)
	}
	if len(c.Services) == 0 {
		return nil, &configError{File: c.File, Msg: "no services defined"}
	}
	c.resolveGraces()
	c.resolvePorts()
	return c.Config, c.checkDependencies()
}

// loader reads one project file into its Config, with the state reading
// needs and the result does not keep.
type loader struct {
	*Config
	opt    LoadOptions
	merges mergeState // YAML merge keys, each mapping expanded once
}

// unsetGrace marks, while the file is read, a service that sets no grace of
// its own: the top-level grace may come later in the file.
const unsetGrace time.Duration = -1

// resolveGraces gives each service without a grace of its own the top-level one.
func (c *Config) resolveGraces() {
	for _, s := range c.Services {
		if s.Grace == unsetGrace {
			s.Grace = c.Grace
		}
	}
}

// displayPath shows abs relative to the working directory when it lies inside it.
func displayPath(abs string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, abs); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return abs
}

func mustCompileAll(patterns []string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(patterns))
	for i, p := range patterns {
		out[i] = regexp.MustCompile(p)
	}
	return out
}

// parseYAML reads the one YAML document of a cgdev.yaml.
func (c *loader) parseYAML(b []byte) error {
	root, err := c.decodeYAML(b)
	if err != nil {
		return err
	}
	err = c.eachKey(root, "", map[string]func(k, v *yaml.Node, field string) error{
		"driver": func(k, v *yaml.Node, f string) error {
			s, err := c.scalar(v, f)
			if err == nil && !validDriver(s) {
				err = c.errAt(v, f, "%q is not a driver (choose one of auto, direct, systemd, fallback)", s)
			}
			c.Driver = s
			return err
		},
		"grace": func(k, v *yaml.Node, f string) (err error) {
			c.Grace, err = c.duration(v, f)
			return err
		},
		"orphans":  c.parseOrphans,
		"compose":  c.parseCompose,
		"services": c.parseServices,
		"logs":     c.parseLogs(&c.Logs),
	})
	if err != nil {
		return err
	}
	return c.addEnvFiles(c.opt.EnvFiles)
}

// decodeYAML decodes the one YAML document of b, refusing a second one, an
// empty file and NUL bytes, and returns its root node.
func (c *loader) decodeYAML(b []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, &configError{File: c.File, Msg: "the file is empty"}
		}
		return nil, c.yamlSyntaxError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil && len(next.Content) > 0:
		return nil, c.errAt(next.Content[0], "", "a second YAML document: cgdev reads one (remove the --- line or the rest)")
	case err != nil && err != io.EOF:
		return nil, c.yamlSyntaxError(err)
	}
	if len(doc.Content) == 0 {
		return nil, &configError{File: c.File, Msg: "the file is empty"}
	}
	root := doc.Content[0]
	if err := c.refuseNUL(root, ""); err != nil {
		return nil, err
	}
	return root, nil
}

func validDriver(s string) bool {
	switch s {
	case "auto", "direct", "systemd", "fallback":
		return true
	}
	return false
}

func (c *loader) parseOrphans(_, v *yaml.Node, prefix string) error {
	return c.eachKey(v, prefix+".", map[string]func(k, v *yaml.Node, field string) error{
		"patterns": func(_, v *yaml.Node, f string) error {
			list, err := c.strings(v, f)
			if err != nil {
				return err
			}
			c.Patterns = []*regexp.Regexp{}
			for i, p := range list {
				re, err := regexp.Compile(p)
				if err != nil {
					return c.errAt(v, fmt.Sprintf("%s[%d]", f, i), "%q is not a regular expression: %v", p, err)
				}
				c.Patterns = append(c.Patterns, re)
			}
			return nil
		},
	})
}

func (c *loader) parseCompose(_, v *yaml.Node, prefix string) error {
	return c.eachKey(v, prefix+".", map[string]func(k, v *yaml.Node, field string) error{
		"file": func(_, v *yaml.Node, f string) error {
			s, err := c.scalar(v, f)
			c.Compose = c.abs(s)
			return err
		},
		"timeout": c.positiveDuration(&c.ComposeTimeout),
	})
}

func (c *loader) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}
