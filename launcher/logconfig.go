package launcher

import (
	"strconv"

	"github.com/cgdev/cgdev/cgroup"
	"go.yaml.in/yaml/v3"
)

// logSettings is a logs: mapping, at the top level (every service) or in a
// service (wins key by key): max_size (a size as memory_max takes, or
// infinity: never rotate) and max_files (files kept, the live one
// included, at least 1).
type logSettings struct {
	maxSize  *int64
	maxFiles *int
}

// parseLogs returns the handler of a logs: mapping that fills into.
func (c *loader) parseLogs(into *logSettings) func(k, v *yaml.Node, field string) error {
	return func(_, v *yaml.Node, prefix string) error {
		return c.eachKey(v, prefix+".", map[string]func(k, v *yaml.Node, field string) error{
			"max_size": func(_, v *yaml.Node, f string) error {
				s, err := c.scalar(v, f)
				if err != nil {
					return err
				}
				n, err := cgroup.ParseSize(s)
				if err != nil {
					return c.errAt(v, f, "%q is not a size (examples: 20M, 1G, 512K, infinity)", s)
				}
				if n == cgroup.Infinity {
					n = 0
				} else if n < 4096 {
					return c.errAt(v, f, "%q is below the smallest size a log rotates at, 4K", s)
				}
				into.maxSize = &n
				return nil
			},
			"max_files": func(_, v *yaml.Node, f string) error {
				s, err := c.scalar(v, f)
				if err != nil {
					return err
				}
				n, err := strconv.Atoi(s)
				if err != nil || n < 1 || n > 100 {
					return c.errAt(v, f, "%q is not a number of files from 1 to 100 (the live file included)", s)
				}
				into.maxFiles = &n
				return nil
			},
		})
	}
}

// logLimits returns service name's log limits: the defaults, overridden by
// the top-level logs:, overridden by the service's.
func (c *Config) logLimits(name string) LogLimits {
	l := LogLimits{MaxSize: DefaultLogMaxSize, MaxFiles: DefaultLogMaxFiles}
	apply := func(s logSettings) {
		if s.maxSize != nil {
			l.MaxSize = *s.maxSize
		}
		if s.maxFiles != nil {
			l.MaxFiles = *s.maxFiles
		}
	}
	apply(c.Logs)
	if s := c.Service(name); s != nil {
		apply(s.Logs)
	}
	return l
}
