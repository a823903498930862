package launcher

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"
)

// ConfigFile is the project file cgdev looks for in the current directory.
const ConfigFile = "cgdev.yaml"

// DefaultGrace is how long a service gets between its stop signal and SIGKILL.
const DefaultGrace = 3 * time.Second

// DefaultReadyTimeout bounds a readiness check that sets no timeout.
const DefaultReadyTimeout = 30 * time.Second

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
	Logs     logSettings      // logs: (logconfig.go)
	Services []*Service       // in file order
}

// Service is one entry of services:.
type Service struct {
	Name       string
	Line       int    // where the service is defined
	Command    string // run by sh -c
	Dir        string // absolute working directory
	Env        []string
	DependsOn  []string
	Ready      *Ready // nil: no readiness check
	StopSignal syscall.Signal
	Grace      time.Duration
	Limits     cgroup.Limits
	Logs       logSettings // logs: (logconfig.go)
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

// ConfigError is a refused configuration, located by file, line and field.
type ConfigError struct {
	File  string
	Line  int
	Field string // dotted path such as services.api.grace; "" for the file itself
	Msg   string
}

func (e *ConfigError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return loc + ": " + e.Msg
}

// FindConfig returns the project file to read: file when given, else
// cgdev.yaml in dir, else a Procfile in dir.
func FindConfig(dir, file string) (string, error) {
	if file != "" {
		return file, nil
	}
	for _, name := range []string{ConfigFile, "Procfile"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name), nil
		}
	}
	return "", fmt.Errorf("no %s or Procfile in %s (use -f FILE to name one)", ConfigFile, dir)
}

// LoadConfig reads and checks a cgdev.yaml, or a Procfile when the file's base
// name is Procfile. Everything is checked before anything can start: unknown
// keys, durations, sizes, signals, readiness checks, env files and cycles in
// depends_on are refused with the file, line and field.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading project file: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(abs)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // what /proc/PID/cwd shows, and one id per directory however it is reached
	}
	c := &Config{File: displayPath(abs), Dir: dir, Grace: DefaultGrace}
	if strings.HasPrefix(filepath.Base(path), "Procfile") {
		err = c.parseProcfile(b)
	} else {
		err = c.parseYAML(b)
	}
	if err != nil {
		return nil, err
	}
	if c.Patterns == nil {
		c.Patterns = mustCompileAll(DefaultOrphanPatterns)
	}
	if len(c.Services) == 0 {
		return nil, &ConfigError{File: c.File, Msg: "no services defined"}
	}
	return c, c.checkDependencies()
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

// errAt builds a ConfigError at node n.
func (c *Config) errAt(n *yaml.Node, field, format string, a ...any) *ConfigError {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &ConfigError{File: c.File, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)}
}

func (c *Config) parseYAML(b []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return c.yamlSyntaxError(err)
	}
	if len(doc.Content) == 0 {
		return &ConfigError{File: c.File, Msg: "the file is empty"}
	}
	root := doc.Content[0]
	return c.eachKey(root, "", map[string]func(k, v *yaml.Node, field string) error{
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
}

func validDriver(s string) bool {
	switch s {
	case "auto", "direct", "systemd", "fallback":
		return true
	}
	return false
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// yamlSyntaxError turns "yaml: line 3: mapping values are not allowed" into
// a ConfigError at that line.
func (c *Config) yamlSyntaxError(err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	return &ConfigError{File: c.File, Line: line, Msg: "invalid YAML: " + msg}
}

// eachKey calls the handler of each key of the mapping n, refusing keys that
// have none, duplicates, and a node that is not a mapping.
func (c *Config) eachKey(n *yaml.Node, prefix string, handlers map[string]func(k, v *yaml.Node, field string) error) error {
	if n.Kind != yaml.MappingNode {
		return c.errAt(n, strings.TrimSuffix(prefix, "."), "expected a mapping of keys to values, found %s", kindName(n))
	}
	pairs, err := c.pairs(n, prefix)
	if err != nil {
		return err
	}
	for _, kv := range pairs {
		k, v := kv[0], kv[1]
		field := prefix + k.Value
		if prefix == "" && strings.HasPrefix(k.Value, "x-") {
			continue // an extension field, as in compose files: a place for anchors
		}
		h, ok := handlers[k.Value]
		if !ok {
			return c.errAt(k, field, "unknown key (known here: %s)", strings.Join(sortedNames(handlers), ", "))
		}
		if err := h(k, resolveAlias(v), field); err != nil {
			return err
		}
	}
	return nil
}

// pairs returns the key/value pairs of the mapping n, refusing a key given
// twice, with YAML merge keys (<<: *anchor, or a list of anchors) expanded:
// a key given in n itself wins over a merged one, as YAML specifies.
func (c *Config) pairs(n *yaml.Node, prefix string) ([][2]*yaml.Node, error) {
	var own, merged [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if k.Tag == "!!merge" {
			sources := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				sources = v.Content
			}
			for _, src := range sources {
				src = resolveAlias(src)
				if src.Kind != yaml.MappingNode {
					return nil, c.errAt(k, prefix+"<<", "a merge key takes a mapping or a list of mappings, found %s", kindName(src))
				}
				more, err := c.pairs(src, prefix)
				if err != nil {
					return nil, err
				}
				merged = append(merged, more...)
			}
			continue
		}
		if seen[k.Value] {
			return nil, c.errAt(k, prefix+k.Value, "given twice")
		}
		seen[k.Value] = true
		own = append(own, [2]*yaml.Node{k, v})
	}
	for _, kv := range merged {
		if !seen[kv[0].Value] {
			seen[kv[0].Value] = true
			own = append(own, kv)
		}
	}
	return own, nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "something else"
}

// scalar returns the text of a scalar node.
func (c *Config) scalar(v *yaml.Node, field string) (string, error) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		return "", c.errAt(v, field, "expected a value, found %s", kindName(v))
	}
	return v.Value, nil
}

// strings returns a list of scalars; a single scalar counts as a list of one.
func (c *Config) strings(v *yaml.Node, field string) ([]string, error) {
	if v.Kind == yaml.ScalarNode {
		s, err := c.scalar(v, field)
		return []string{s}, err
	}
	if v.Kind != yaml.SequenceNode {
		return nil, c.errAt(v, field, "expected a list, found %s", kindName(v))
	}
	out := []string{}
	for i, e := range v.Content {
		s, err := c.scalar(resolveAlias(e), fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (c *Config) duration(v *yaml.Node, field string) (time.Duration, error) {
	s, err := c.scalar(v, field)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, c.errAt(v, field, "%q is not a duration (examples: 500ms, 3s, 1m30s)", s)
	}
	return d, nil
}

func (c *Config) parseOrphans(_, v *yaml.Node, prefix string) error {
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

func (c *Config) parseCompose(_, v *yaml.Node, prefix string) error {
	return c.eachKey(v, prefix+".", map[string]func(k, v *yaml.Node, field string) error{
		"file": func(_, v *yaml.Node, f string) error {
			s, err := c.scalar(v, f)
			c.Compose = c.abs(s)
			return err
		},
	})
}

func (c *Config) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

func (c *Config) parseServices(_, v *yaml.Node, field string) error {
	if v.Kind != yaml.MappingNode {
		return c.errAt(v, field, "expected a mapping of service names to services, found %s", kindName(v))
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, body := v.Content[i], resolveAlias(v.Content[i+1])
		f := field + "." + k.Value
		if err := checkServiceName(k.Value); err != nil {
			return c.errAt(k, f, "%v", err)
		}
		if c.Service(k.Value) != nil {
			return c.errAt(k, f, "service defined twice")
		}
		s, err := c.parseService(k, body, f)
		if err != nil {
			return err
		}
		c.Services = append(c.Services, s)
	}
	return nil
}

var serviceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

func checkServiceName(name string) error {
	if !serviceName.MatchString(name) {
		return fmt.Errorf("invalid service name %q: use letters, digits, '-' and '_' (starting with a letter or digit, at most 63)", name)
	}
	return nil
}

// limitKeys map the config's limit keys to cgroup property names.
var limitKeys = map[string]string{
	"memory_max": "MemoryMax", "memory_high": "MemoryHigh", "tasks_max": "TasksMax", "cpu_quota": "CPUQuota",
}

func (c *Config) parseService(k, v *yaml.Node, prefix string) (*Service, error) {
	s := &Service{Name: k.Value, Line: k.Line, Dir: c.Dir, StopSignal: unix.SIGTERM, Grace: -1}
	var envFiles []string
	var envFileNode *yaml.Node
	handlers := map[string]func(k, v *yaml.Node, field string) error{
		"command": func(_, v *yaml.Node, f string) (err error) {
			s.Command, err = c.scalar(v, f)
			if err == nil && strings.TrimSpace(s.Command) == "" {
				err = c.errAt(v, f, "empty command")
			}
			return err
		},
		"dir": func(_, v *yaml.Node, f string) error {
			d, err := c.scalar(v, f)
			if err != nil {
				return err
			}
			s.Dir = c.abs(d)
			if fi, err := os.Stat(s.Dir); err != nil || !fi.IsDir() {
				return c.errAt(v, f, "%s is not a directory", s.Dir)
			}
			return nil
		},
		"env": func(_, v *yaml.Node, f string) (err error) {
			s.Env, err = c.env(v, f)
			return err
		},
		"env_file": func(_, v *yaml.Node, f string) (err error) {
			envFiles, err = c.strings(v, f)
			envFileNode = v
			return err
		},
		"depends_on": func(_, v *yaml.Node, f string) (err error) {
			s.DependsOn, err = c.strings(v, f)
			return err
		},
		"ready": func(_, v *yaml.Node, f string) (err error) {
			s.Ready, err = c.ready(v, f)
			return err
		},
		"stop_signal": func(_, v *yaml.Node, f string) error {
			name, err := c.scalar(v, f)
			if err != nil {
				return err
			}
			if s.StopSignal, err = ParseSignal(name); err != nil {
				return c.errAt(v, f, "%v", err)
			}
			return nil
		},
		"grace": func(_, v *yaml.Node, f string) (err error) {
			s.Grace, err = c.duration(v, f)
			return err
		},
		"logs": c.parseLogs(&s.Logs),
	}
	for key, prop := range limitKeys {
		handlers[key] = func(_, v *yaml.Node, f string) error {
			val, err := c.scalar(v, f)
			if err != nil {
				return err
			}
			if err := s.Limits.SetProperty(prop, val); err != nil {
				return c.errAt(v, f, "%v", err)
			}
			return nil
		}
	}
	if err := c.eachKey(v, prefix+".", handlers); err != nil {
		return nil, err
	}
	if s.Command == "" {
		return nil, c.errAt(k, prefix, "no command")
	}
	fileEnv, err := c.envFiles(envFiles, envFileNode, prefix+".env_file")
	if err != nil {
		return nil, err
	}
	s.Env = append(fileEnv, s.Env...) // env: wins over env_file
	// An unset Grace (-1) is resolved against the top level in checkDependencies.
	return s, nil
}

// env accepts a mapping (KEY: value) or a list of KEY=VALUE strings.
func (c *Config) env(v *yaml.Node, field string) ([]string, error) {
	var out []string
	if v.Kind == yaml.MappingNode {
		kvs, err := c.pairs(v, field+".")
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			k, val := kv[0], kv[1]
			if !envName.MatchString(k.Value) {
				return nil, c.errAt(k, field+"."+k.Value, "not a valid environment variable name")
			}
			if val.Kind != yaml.ScalarNode {
				return nil, c.errAt(val, field+"."+k.Value, "expected a value, found %s", kindName(val))
			}
			out = append(out, k.Value+"="+val.Value)
		}
		return out, nil
	}
	list, err := c.strings(v, field)
	if err != nil {
		return nil, c.errAt(v, field, "expected a mapping (KEY: value) or a list of KEY=VALUE")
	}
	for i, kv := range list {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !envName.MatchString(name) {
			return nil, c.errAt(v, fmt.Sprintf("%s[%d]", field, i), "%q is not KEY=VALUE", kv)
		}
		out = append(out, kv)
	}
	return out, nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// envFiles reads dotenv files (KEY=VALUE lines, # comments, optional
// "export ", optional quotes), relative to the project directory.
func (c *Config) envFiles(files []string, n *yaml.Node, field string) ([]string, error) {
	var out []string
	for _, f := range files {
		path := c.abs(f)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, c.errAt(n, field, "%v", err)
		}
		env, err := parseDotenv(path, b)
		if err != nil {
			return nil, err
		}
		out = append(out, env...)
	}
	return out, nil
}

func parseDotenv(path string, b []byte) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		t = strings.TrimPrefix(t, "export ")
		name, val, ok := strings.Cut(t, "=")
		name = strings.TrimSpace(name)
		if !ok || !envName.MatchString(name) {
			return nil, &ConfigError{File: displayPath(path), Line: line, Msg: fmt.Sprintf("%q is not KEY=VALUE", t)}
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		}
		out = append(out, name+"="+val)
	}
	return out, nil
}

func (c *Config) ready(v *yaml.Node, prefix string) (*Ready, error) {
	r := &Ready{Timeout: DefaultReadyTimeout}
	kind := func(name string) func(k, v *yaml.Node, f string) error {
		return func(_, v *yaml.Node, f string) error {
			if r.Kind != "" {
				return c.errAt(v, f, "only one check per service: %s is already set", r.Kind)
			}
			target, err := c.scalar(v, f)
			if err != nil {
				return err
			}
			r.Kind, r.Target = name, target
			if err := r.validate(); err != nil {
				return c.errAt(v, f, "%v", err)
			}
			return nil
		}
	}
	err := c.eachKey(v, prefix+".", map[string]func(k, v *yaml.Node, field string) error{
		"tcp": kind("tcp"), "http": kind("http"), "exec": kind("exec"), "log": kind("log"),
		"timeout": func(_, v *yaml.Node, f string) (err error) {
			r.Timeout, err = c.duration(v, f)
			if err == nil && r.Timeout == 0 {
				err = c.errAt(v, f, "must be more than 0")
			}
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	if r.Kind == "" {
		return nil, c.errAt(v, prefix, "give one check: tcp, http, exec or log")
	}
	return r, nil
}

// ParseSignal accepts SIGTERM, TERM, term or a number.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("%q is not a signal (examples: SIGTERM, SIGINT, QUIT)", s)
}

// checkDependencies resolves per-service graces and refuses unknown or
// cyclic depends_on entries, naming the cycle.
func (c *Config) checkDependencies() error {
	for _, s := range c.Services {
		if s.Grace < 0 {
			s.Grace = c.Grace
		}
		for _, d := range s.DependsOn {
			if c.Service(d) == nil {
				return &ConfigError{File: c.File, Line: s.Line, Field: "services." + s.Name + ".depends_on",
					Msg: fmt.Sprintf("unknown service %q (services: %s)", d, strings.Join(c.Names(), ", "))}
			}
		}
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(s *Service) error
	visit = func(s *Service) error {
		switch state[s.Name] {
		case visiting:
			i := indexOf(path, s.Name)
			cycle := append(append([]string(nil), path[i:]...), s.Name)
			return &ConfigError{File: c.File, Line: c.Service(path[i]).Line, Field: "services." + path[i] + ".depends_on",
				Msg: "dependency cycle: " + strings.Join(cycle, " -> ")}
		case done:
			return nil
		}
		state[s.Name] = visiting
		path = append(path, s.Name)
		for _, d := range s.DependsOn {
			if err := visit(c.Service(d)); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[s.Name] = done
		return nil
	}
	for _, s := range c.Services {
		if err := visit(s); err != nil {
			return err
		}
	}
	return nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// Closure returns the named services and everything they depend on, each
// after its dependencies (file order among independent ones). No names: all.
func (c *Config) Closure(names []string) ([]*Service, error) {
	if len(names) == 0 {
		names = c.Names()
	}
	want := map[string]bool{}
	var add func(name string)
	add = func(name string) {
		if want[name] {
			return
		}
		want[name] = true
		for _, d := range c.Service(name).DependsOn {
			add(d)
		}
	}
	for _, n := range names {
		if c.Service(n) == nil {
			return nil, fmt.Errorf("no service %q in %s (services: %s)", n, c.File, strings.Join(c.Names(), ", "))
		}
		add(n)
	}
	return c.topological(want), nil
}

// topological orders the wanted services so that each follows its dependencies.
func (c *Config) topological(want map[string]bool) []*Service {
	var out []*Service
	placed := map[string]bool{}
	var place func(s *Service)
	place = func(s *Service) {
		if placed[s.Name] || !want[s.Name] {
			return
		}
		placed[s.Name] = true
		for _, d := range s.DependsOn {
			place(c.Service(d))
		}
		out = append(out, s)
	}
	for _, s := range c.Services {
		place(s)
	}
	return out
}
