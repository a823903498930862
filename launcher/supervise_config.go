package launcher

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Restart policies, as compose and process-compose name them.
const (
	RestartNo        = "no"
	RestartOnFailure = "on-failure"
	RestartAlways    = "always"
)

// Restart is a service's restart policy: whether an ended instance is started
// again (restart:), after what delay (restart_delay: doubling from Initial
// up to Max with each restart in the last Window), and how many restarts in
// Window make a crash loop, after which the service is failed and stays down
// (max_restarts:, restart_window:).
type Restart struct {
	Policy      string        // RestartNo, RestartOnFailure or RestartAlways
	Initial     time.Duration // delay before the first restart
	Max         time.Duration // the delay never exceeds this
	MaxRestarts int           // restarts within Window before giving up; 0: never give up
	Window      time.Duration
}

var defaultRestart = Restart{Policy: RestartNo, Initial: time.Second, Max: 30 * time.Second, MaxRestarts: 5, Window: time.Minute}

// Health is a liveness check: the probe of a readiness check (its Timeout
// bounds one attempt), run every Interval once the service is up (the
// first after Delay, or after one Interval when Delay is 0); Retries
// failures in a row make the service unhealthy.
type Health struct {
	Check    Ready
	Interval time.Duration
	Retries  int
	Delay    time.Duration // process-compose's initial_delay_seconds
}

const (
	defaultHealthInterval = 10 * time.Second
	defaultHealthTimeout  = 5 * time.Second
	defaultHealthRetries  = 3
	defaultDebounce       = 300 * time.Millisecond
)

// Watch restarts a service when a file under Paths changes (not one whose
// path has a component matching an Ignore pattern), once no change has come
// for Debounce.
type Watch struct {
	Paths    []string // absolute
	Ignore   []string // filepath.Match patterns, matched against each path component and the path relative to the watched root
	Debounce time.Duration

	pathsNode *yaml.Node // where paths: is, for errors found once the service is read
}

// alwaysIgnored are never watched: cgdev's own files (a log write must not
// restart the service that wrote it), version control, and dependencies.
var alwaysIgnored = []string{stateDirName, ".pids", ".git", "node_modules"}

// Supervised says whether the service needs cgdev's supervisor: it has a
// restart policy, a liveness check or a watch. A oneshot never does: start
// waits for it to complete, running it again on failure under on-failure.
func (s *Service) Supervised() bool {
	return !s.Oneshot() && (s.Restart.Policy != RestartNo || s.Health != nil || s.Watch != nil)
}

type keyHandler = func(k, v *yaml.Node, field string) error

// supervisionKeys are the handlers of the service keys of supervision:
// restart, restart_delay, max_restarts, restart_window, healthcheck, watch.
func (c *loader) supervisionKeys(s *Service) map[string]keyHandler {
	return map[string]keyHandler{
		"restart": func(_, v *yaml.Node, f string) error {
			p, err := c.scalar(v, f)
			if err != nil {
				return err
			}
			switch p {
			case RestartNo, "false":
				s.Restart.Policy = RestartNo
			case RestartOnFailure, RestartAlways:
				s.Restart.Policy = p
			case "unless-stopped":
				return c.errAt(v, f, "%q is compose's; cgdev never restarts a service you stopped, so write always", p)
			default:
				return c.errAt(v, f, "%q is not a restart policy (choose no, on-failure or always)", p)
			}
			return nil
		},
		"restart_delay": func(_, v *yaml.Node, f string) error {
			if v.Kind == yaml.ScalarNode {
				d, err := c.duration(v, f)
				s.Restart.Initial, s.Restart.Max = d, max(d, s.Restart.Max)
				return err
			}
			return c.eachKey(v, f+".", map[string]keyHandler{
				"initial": func(_, v *yaml.Node, f string) (err error) {
					s.Restart.Initial, err = c.duration(v, f)
					return err
				},
				"max": func(_, v *yaml.Node, f string) (err error) {
					s.Restart.Max, err = c.duration(v, f)
					return err
				},
			})
		},
		"max_restarts": func(_, v *yaml.Node, f string) (err error) {
			s.Restart.MaxRestarts, err = c.count(v, f, 0)
			return err
		},
		"restart_window": func(_, v *yaml.Node, f string) error {
			return c.positiveDuration(&s.Restart.Window)(nil, v, f)
		},
		"healthcheck": func(_, v *yaml.Node, f string) (err error) {
			s.Health, err = c.healthcheck(v, f)
			return err
		},
		"watch": func(_, v *yaml.Node, f string) (err error) {
			s.Watch, err = c.watch(v, f)
			return err
		},
	}
}

// checkSupervision refuses a restart_delay whose max is below its initial
// delay, and warns about restart keys that have no effect without restart:.
func (c *loader) checkSupervision(s *Service, v *yaml.Node, prefix string) error {
	r := s.Restart
	if r.Max < r.Initial {
		return c.errAt(v, prefix+".restart_delay", "max %s is less than initial %s", r.Max, r.Initial)
	}
	if s.Watch != nil {
		if err := c.resolveWatch(s, prefix); err != nil {
			return err
		}
	}
	if r.Policy != RestartNo {
		return nil
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		switch k := v.Content[i]; k.Value {
		case "restart_delay", "max_restarts", "restart_window":
			c.Warnings = append(c.Warnings, c.errAt(k, prefix+"."+k.Value, "has no effect without restart: on-failure or always").Error())
		}
	}
	return nil
}

// count parses a whole number of at least least.
func (c *loader) count(v *yaml.Node, field string, least int) (int, error) {
	s, err := c.scalar(v, field)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < least || n > 1_000_000 {
		return 0, c.errAt(v, field, "%q is not a whole number from %d to 1000000", s, least)
	}
	return n, nil
}

// healthcheck reads a liveness check: one probe kind, interval, timeout, retries.
func (c *loader) healthcheck(v *yaml.Node, prefix string) (*Health, error) {
	h := &Health{Check: Ready{Timeout: defaultHealthTimeout}, Interval: defaultHealthInterval, Retries: defaultHealthRetries}
	handlers := c.probeKinds(&h.Check)
	handlers["timeout"] = c.positiveDuration(&h.Check.Timeout)
	handlers["interval"] = c.positiveDuration(&h.Interval)
	handlers["retries"] = func(_, v *yaml.Node, f string) (err error) {
		h.Retries, err = c.count(v, f, 1)
		return err
	}
	if err := c.eachKey(v, prefix+".", handlers); err != nil {
		return nil, err
	}
	if h.Check.Kind == "" {
		return nil, c.errAt(v, prefix, "give one check: tcp, http, exec or log")
	}
	return h, nil
}

// watch reads paths, ignore and debounce.
func (c *loader) watch(v *yaml.Node, prefix string) (*Watch, error) {
	w := &Watch{Debounce: defaultDebounce}
	var pathsNode *yaml.Node
	err := c.eachKey(v, prefix+".", map[string]keyHandler{
		"paths": func(_, v *yaml.Node, f string) (err error) {
			pathsNode = v
			w.Paths, err = c.strings(v, f)
			return err
		},
		"ignore": func(_, v *yaml.Node, f string) (err error) {
			if w.Ignore, err = c.strings(v, f); err != nil {
				return err
			}
			for i, p := range w.Ignore {
				if _, err := filepath.Match(p, ""); err != nil {
					return c.errAt(v, fmt.Sprintf("%s[%d]", f, i), "%q is not a file name pattern: %v", p, err)
				}
			}
			return nil
		},
		"debounce": func(_, v *yaml.Node, f string) (err error) {
			w.Debounce, err = c.duration(v, f)
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	if len(w.Paths) == 0 {
		return nil, c.errAt(v, prefix+".paths", "give the files or directories to watch")
	}
	w.pathsNode = pathsNode
	w.Ignore = append(w.Ignore, alwaysIgnored...)
	return w, nil
}

// resolveWatch makes the watched paths absolute, relative to the service's
// directory (known only once every key is read), and refuses one that does
// not exist.
func (c *loader) resolveWatch(s *Service, prefix string) error {
	for i, p := range s.Watch.Paths {
		if !filepath.IsAbs(p) {
			p = filepath.Join(s.Dir, p)
		}
		if _, err := os.Stat(p); err != nil {
			return c.errAt(s.Watch.pathsNode, fmt.Sprintf("%s.watch.paths[%d]", prefix, i), "%s does not exist", p)
		}
		s.Watch.Paths[i] = p
	}
	return nil
}
