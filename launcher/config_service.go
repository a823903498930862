package launcher

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"
)

func (c *loader) parseServices(_, v *yaml.Node, field string) error {
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

// serviceName is what a service may be called: it names a cgroup
// directory and a systemd unit, and is typed on command lines (so no
// leading '-'). A leading '_' is allowed: process-compose files use it.
// SupervisorGroup, the supervisor's group, is the one name reserved.
var serviceName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$`)

func checkServiceName(name string) error {
	if name == SupervisorGroup {
		return fmt.Errorf("the name %s is reserved for the group of cgdev's supervisor: choose another", name)
	}
	if !serviceName.MatchString(name) {
		return fmt.Errorf("invalid service name %q: use letters, digits, '-' and '_' (not starting with '-', at most 63)", name)
	}
	return nil
}

func (c *loader) parseService(k, v *yaml.Node, prefix string) (*Service, error) {
	s := &Service{Name: k.Value, Line: k.Line, Dir: c.Dir, StopSignal: unix.SIGTERM, Grace: unsetGrace, Restart: defaultRestart,
		Type: TypeSimple, StopTimeout: defaultStopTimeout}
	var envFiles []string
	var envFileNode *yaml.Node
	handlers := map[string]func(k, v *yaml.Node, field string) error{
		"logs": c.parseLogs(&s.Logs),
		"command": func(_, v *yaml.Node, f string) (err error) {
			s.Command, err = c.command(v, f)
			return err
		},
		"dir": func(_, v *yaml.Node, f string) (err error) {
			s.Dir, err = c.dir(v, f)
			return err
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
			s.DependsOn, s.DependsOnCondition, err = c.dependsOn(v, f)
			return err
		},
		"type": func(_, v *yaml.Node, f string) (err error) {
			if s.Type, err = c.scalar(v, f); err == nil && s.Type != TypeSimple && s.Type != TypeOneshot {
				err = c.errAt(v, f, "%q is not a service type (choose simple or oneshot)", s.Type)
			}
			return err
		},
		"stop_command": func(_, v *yaml.Node, f string) (err error) {
			s.StopCommand, err = c.command(v, f)
			return err
		},
		"stop_timeout": func(_, v *yaml.Node, f string) error {
			return c.positiveDuration(&s.StopTimeout)(nil, v, f)
		},
		"timeout": c.positiveDuration(&s.Timeout),
		"ready": func(_, v *yaml.Node, f string) (err error) {
			s.Ready, err = c.ready(v, f)
			return err
		},
		"stop_signal": func(_, v *yaml.Node, f string) error {
			name, err := c.scalar(v, f)
			if err != nil {
				return err
			}
			if s.StopSignal, err = parseSignal(name); err != nil {
				return c.errAt(v, f, "%v", err)
			}
			return nil
		},
		"grace": func(_, v *yaml.Node, f string) (err error) {
			s.Grace, err = c.duration(v, f)
			return err
		},
		"ports": func(_, v *yaml.Node, f string) (err error) {
			s.Ports, err = c.ports(v, f)
			s.portsSet = true
			return err
		},
	}
	for key, prop := range cgroup.ConfigKeys() {
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
	maps.Copy(handlers, c.supervisionKeys(s))
	if err := c.eachKey(v, prefix+".", handlers); err != nil {
		return nil, err
	}
	if s.Command == "" {
		return nil, c.errAt(k, prefix, "no command")
	}
	if err := c.checkSupervision(s, v, prefix); err != nil {
		return nil, err
	}
	if err := c.checkOneshot(s, v, prefix); err != nil {
		return nil, err
	}
	fileEnv, err := c.envFiles(envFiles, envFileNode, prefix+".env_file")
	if err != nil {
		return nil, err
	}
	s.Env = append(fileEnv, s.Env...) // env: wins over env_file
	return s, nil
}

// conditionNames are the depends_on conditions of cgdev.yaml, with
// compose's names for them.
var conditionNames = map[string]string{
	CondStarted: CondStarted, CondReady: CondReady, CondCompleted: CondCompleted,
	"service_started": CondStarted, "service_healthy": CondReady, "service_completed_successfully": CondCompleted,
}

// dependsOn reads depends_on: a list of names (each: ready), or, as in
// compose, a mapping of names to {condition: started|ready|completed}.
func (c *loader) dependsOn(v *yaml.Node, field string) ([]string, map[string]string, error) {
	if v.Kind != yaml.MappingNode {
		names, err := c.strings(v, field)
		return names, nil, err
	}
	pairs, err := c.pairs(v, field+".")
	if err != nil {
		return nil, nil, err
	}
	var names []string
	conds := map[string]string{}
	for _, kv := range pairs {
		name, f := kv[0].Value, field+"."+kv[0].Value
		cond := CondReady
		err := c.eachKey(kv[1], f+".", map[string]func(k, v *yaml.Node, field string) error{
			"condition": func(_, v *yaml.Node, f string) error {
				s, err := c.scalar(v, f)
				if err != nil {
					return err
				}
				if cond = conditionNames[s]; cond == "" {
					return c.errAt(v, f, "%q is not a condition (choose started, ready or completed)", s)
				}
				return nil
			},
		})
		if err != nil {
			return nil, nil, err
		}
		names = append(names, name)
		conds[name] = cond
	}
	return names, conds, nil
}

// checkOneshot refuses what a oneshot cannot have: a readiness check (it is
// done when it exits 0), a liveness check or a watch (nothing runs to
// check), and restart: always (a oneshot that succeeded is never run
// again: on-failure runs a failed one again); and timeout on a service that
// is not a oneshot.
func (c *loader) checkOneshot(s *Service, v *yaml.Node, prefix string) error {
	if !s.Oneshot() {
		for i := 0; i+1 < len(v.Content); i += 2 {
			if k := v.Content[i]; k.Value == "timeout" {
				return c.errAt(k, prefix+".timeout", "only for type: oneshot (a service's start is bounded by its ready: timeout)")
			}
		}
		return nil
	}
	why := map[string]string{
		"ready":       "a oneshot is ready when it exits 0",
		"healthcheck": "a oneshot runs to completion: nothing is left to check",
		"watch":       "a oneshot runs to completion: nothing is left to restart",
		"restart":     "a oneshot that exited 0 is done; on-failure runs a failed one again",
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k := v.Content[i]
		if msg, ok := why[k.Value]; ok && (k.Value != "restart" || s.Restart.Policy == RestartAlways) {
			return c.errAt(k, prefix+"."+k.Value, "not for type: oneshot: %s", msg)
		}
	}
	return nil
}

// command reads a command: not empty, and one exec can pass.
func (c *loader) command(v *yaml.Node, f string) (string, error) {
	cmd, err := c.scalar(v, f)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(cmd) == "" {
		return "", c.errAt(v, f, "empty command")
	}
	if err := checkArg(cmd); err != nil {
		return "", c.errAt(v, f, "%v", err)
	}
	return cmd, nil
}

// dir reads a working directory, relative to the project: it must exist,
// and one outside the project is warned about.
func (c *loader) dir(v *yaml.Node, f string) (string, error) {
	d, err := c.scalar(v, f)
	if err != nil {
		return "", err
	}
	abs := c.abs(d)
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return "", c.errAt(v, f, "%s is not a directory", abs)
	}
	c.warnOutside(v, f, d, abs)
	return abs, nil
}

// warnOutside warns when a service's directory dir (as written: given)
// lies outside the project: allowed, for a sibling checkout, but stop's
// orphan sweep matches its patterns only inside the project, and "/etc" or
// "../../.." is more often a slip than a wish.
func (c *loader) warnOutside(n *yaml.Node, field, given, dir string) {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if rel, err := filepath.Rel(c.Dir, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return
	}
	c.Warnings = append(c.Warnings, c.errAt(n, field, "%s is outside the project directory %s: stop's orphan sweep does not look there for processes matching orphans.patterns", given, c.Dir).Error())
}

// env accepts a mapping (KEY: value) or a list of KEY=VALUE strings.
func (c *loader) env(v *yaml.Node, field string) ([]string, error) {
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
			if err := checkArg(k.Value + "=" + val.Value); err != nil {
				return nil, c.errAt(val, field+"."+k.Value, "%v", err)
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
		if err := checkArg(kv); err != nil {
			return nil, c.errAt(v, fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
		out = append(out, kv)
	}
	return out, nil
}

func (c *loader) ready(v *yaml.Node, prefix string) (*Ready, error) {
	r := &Ready{Timeout: defaultReadyTimeout}
	handlers := c.probeKinds(r)
	handlers["timeout"] = c.positiveDuration(&r.Timeout)
	if err := c.eachKey(v, prefix+".", handlers); err != nil {
		return nil, err
	}
	if r.Kind == "" {
		return nil, c.errAt(v, prefix, "give one check: tcp, http, exec or log")
	}
	return r, nil
}

// probeKinds are the keys naming a check's kind (tcp, http, exec, log), of
// which a readiness or liveness check takes exactly one.
func (c *loader) probeKinds(r *Ready) map[string]func(k, v *yaml.Node, field string) error {
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
	return map[string]func(k, v *yaml.Node, field string) error{
		"tcp": kind("tcp"), "http": kind("http"), "exec": kind("exec"), "log": kind("log"),
	}
}

// positiveDuration is the handler of a duration key that must be more than 0.
func (c *loader) positiveDuration(d *time.Duration) func(k, v *yaml.Node, field string) error {
	return func(_, v *yaml.Node, f string) (err error) {
		*d, err = c.duration(v, f)
		if err == nil && *d == 0 {
			err = c.errAt(v, f, "must be more than 0")
		}
		return err
	}
}

// parseSignal accepts SIGTERM, TERM, term or a number.
func parseSignal(s string) (syscall.Signal, error) {
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
