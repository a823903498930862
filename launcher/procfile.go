package launcher

import (
	"strings"

	"golang.org/x/sys/unix"
)

// parseProcfile reads "name: command" lines, as foreman, overmind and goreman
// do. Blank lines and lines starting with # are skipped; every service gets
// the defaults (SIGTERM, the default grace, no readiness check).
func (c *loader) parseProcfile(b []byte) error {
	return eachLine(c.File, b, func(line int, t string) error {
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
			StopSignal: unix.SIGTERM, Grace: unsetGrace})
		return nil
	})
}
