package proc

import (
	"bytes"
	"cmp"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The markers: every process of a service, and every process it forks,
// carries ProjectEnv and ServiceEnv in its environment; every process of a
// `cgdev run` carries RunEnv. Every driver's Start sets them (Marker.Apply).
const (
	ProjectEnv = "CGDEV_PROJECT"
	ServiceEnv = "CGDEV_SERVICE"
	RunEnv     = "CGDEV_RUN"
)

// Marker is what a process's initial environment says it belongs to.
type Marker struct {
	Project, Service, Run string
}

// ReadMarker reads pid's markers with one read of /proc/PID/environ. That file
// shows the environment the process was started with: a process that later
// unsets a variable still shows it, one exec'd with a cleared environment
// (env -i) or that overwrites the area (setproctitle) does not. An unreadable
// environ (another user's, without privilege) yields the zero Marker.
func ReadMarker(pid int) Marker {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	return parseEnviron(b)
}

// settleTimeout bounds how long MarkerOf waits for a process to come out of
// an exec or an exit.
const settleTimeout = 100 * time.Millisecond

// MarkerOf reads p's markers as ReadMarker does, for a scan that must not
// miss a marked process. A process caught in the middle of an execve has an
// environment and a command line that both read empty: the kernel sets the
// new program's up only at the end of the exec, long after the parent's fork
// (and exec.Cmd.Start) returned. An exiting one, between releasing its
// memory and becoming a zombie, looks the same. MarkerOf reads such a
// process again, every millisecond for up to 100 ms, until it shows either.
//
// The kernel writes the command line first and the environment right after
// (microseconds): a command line read after an empty environment proves
// nothing about that environment, so it is read again then, and once more a
// millisecond later if it is still empty (a program exec'd with an empty
// environment, env -i, stays so).
func MarkerOf(p Proc) Marker {
	environ := "/proc/" + strconv.Itoa(p.PID) + "/environ"
	b, err := os.ReadFile(environ)
	if err != nil || len(b) > 0 || p.Kernel || p.State == 'Z' {
		return parseEnviron(b)
	}
	deadline := time.Now().Add(settleTimeout)
	for Cmdline(p.PID) == "" {
		if time.Now().After(deadline) {
			return Marker{}
		}
		time.Sleep(time.Millisecond)
		now, err := ReadProc(p.PID)
		if err != nil || now.StartTicks != p.StartTicks || now.State == 'Z' {
			return Marker{} // exited
		}
		if b, _ := os.ReadFile(environ); len(b) > 0 {
			return parseEnviron(b)
		}
	}
	if b, _ := os.ReadFile(environ); len(b) > 0 {
		return parseEnviron(b)
	}
	time.Sleep(time.Millisecond)
	b, _ = os.ReadFile(environ)
	return parseEnviron(b)
}

// parseEnviron finds the markers in an environ file: NUL-separated
// KEY=VALUE entries, the first occurrence winning, as getenv(3) sees it.
func parseEnviron(b []byte) Marker {
	var m Marker
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := bytes.Cut(kv, []byte{'='})
		if !ok {
			continue
		}
		switch string(k) {
		case ProjectEnv:
			m.Project = cmp.Or(m.Project, string(v))
		case ServiceEnv:
			m.Service = cmp.Or(m.Service, string(v))
		case RunEnv:
			m.Run = cmp.Or(m.Run, string(v))
		}
	}
	return m
}

// Label names what m belongs to for display: the service, "run:NAME", or "".
func (m Marker) Label() string {
	switch {
	case m.Service != "":
		return m.Service
	case m.Run != "":
		return "run:" + m.Run
	}
	return ""
}

// IsMarker reports whether the environment variable name is a marker.
func IsMarker(name string) bool {
	return name == ProjectEnv || name == ServiceEnv || name == RunEnv
}

// Apply returns env with m's markers set, replacing inherited ones: a
// service's (Project set) replace every inherited marker, since a service
// started from inside a run is not part of the run, as its cgroup would not
// be; a run's replace only an inherited RunEnv, so that a run started by a
// service still counts as the service's project's.
func (m Marker) Apply(env []string) []string {
	drop := func(name string) bool { return name == RunEnv }
	add := []string{RunEnv + "=" + m.Run}
	if m.Project != "" {
		drop = IsMarker
		add = []string{ProjectEnv + "=" + m.Project, ServiceEnv + "=" + m.Service}
	}
	return append(without(env, drop), add...)
}

// StripMarkers returns env without any marker: for what a service starts
// that is not the service's (a readiness check).
func StripMarkers(env []string) []string {
	return without(env, IsMarker)
}

// without returns a copy of env without the variables whose name drop accepts.
func without(env []string, drop func(name string) bool) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return drop(name)
	})
}
