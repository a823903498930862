package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cgdev/cgdev/fallback"
)

// State is .cgdev/state.json: what cgdev started, for status and for humans.
// It is a record, not the truth: the kernel's cgroups are. Stop and status
// work when it is missing or corrupt, and never signal a PID read from it.
type State struct {
	Project  string                   `json:"project"`
	Dir      string                   `json:"dir"`
	Driver   string                   `json:"driver"`
	Services map[string]*ServiceState `json:"services"`
}

// ServiceState is one started service.
type ServiceState struct {
	PID        int       `json:"pid"`
	StartTicks uint64    `json:"start_ticks"` // with PID, identifies the main process (PIDs are recycled)
	PGID       int       `json:"pgid"`
	Cgroup     string    `json:"cgroup,omitempty"`
	Started    time.Time `json:"started"`
	ReadyAfter Duration  `json:"ready_after"` // 0 when the service has no readiness check
	Ready      string    `json:"ready,omitempty"`
	Log        string    `json:"log"`
	// Daemonized marks a main process that exited 0 while starting and left
	// its work to processes in its group: its end is not the service's.
	Daemonized bool `json:"daemonized,omitempty"`
	// Guessed marks a record status rebuilt from the group, not read from the file.
	Guessed bool `json:"-"`
}

// Duration is a time.Duration that reads and writes as "1.4s".
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// Identity is the main process's PID and start time.
func (s *ServiceState) Identity() fallback.Identity {
	return fallback.Identity{PID: s.PID, StartTicks: s.StartTicks}
}

func (p *Project) statePath() string { return filepath.Join(p.StateDir(), "state.json") }

// LoadState reads state.json. A missing file gives an empty state; a corrupt
// one gives an empty state and an error to print as a warning.
func (p *Project) LoadState() (*State, error) {
	st := &State{Project: p.ID, Dir: p.Dir, Services: map[string]*ServiceState{}}
	b, err := os.ReadFile(p.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	var read State
	if err := json.Unmarshal(b, &read); err != nil || read.Project != p.ID {
		if err == nil {
			err = fmt.Errorf("it belongs to project %q", read.Project)
		}
		return st, fmt.Errorf("ignoring %s: %v", p.statePath(), err)
	}
	if read.Services == nil {
		read.Services = map[string]*ServiceState{}
	}
	return &read, nil
}

// SaveState writes state.json and the .pids files, each atomically; with no
// services left it removes them (and .pids/ when it is left empty).
func (p *Project) SaveState(st *State) error {
	if len(st.Services) == 0 {
		return p.RemoveState()
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(p.statePath(), append(b, '\n')); err != nil {
		return err
	}
	return p.writePids(st)
}

// UpdateState applies change to state.json (read, changed, written) under
// .cgdev/state.lock, a lock held only for that: the project lock serialises
// the commands, this one also the supervisor's updates after a restart,
// which it makes while a command may hold the project lock.
func (p *Project) UpdateState(change func(st *State)) error {
	unlock, err := p.lockFile("state.lock")
	if err != nil {
		return err
	}
	defer unlock()
	st, lerr := p.LoadState()
	change(st)
	return errors.Join(lerr, p.SaveState(st))
}

// writePids writes, for scripts: services.pids (one PID a line),
// services.pids.groups (PGID:name:PID) and services.pids.services (name:PID).
func (p *Project) writePids(st *State) error {
	var pids, groups, services strings.Builder
	for _, name := range st.Names() {
		s := st.Services[name]
		fmt.Fprintf(&pids, "%d\n", s.PID)
		fmt.Fprintf(&groups, "%d:%s:%d\n", s.PGID, name, s.PID)
		fmt.Fprintf(&services, "%s:%d\n", name, s.PID)
	}
	if err := os.MkdirAll(p.PidsDir(), 0o755); err != nil {
		return err
	}
	for file, content := range map[string]string{
		"services.pids": pids.String(), "services.pids.groups": groups.String(), "services.pids.services": services.String(),
	} {
		if err := writeAtomic(filepath.Join(p.PidsDir(), file), []byte(content)); err != nil {
			return err
		}
	}
	return nil
}

// PidFiles lists the tracking files cgdev writes.
func (p *Project) PidFiles() []string {
	return []string{
		p.statePath(),
		filepath.Join(p.PidsDir(), "services.pids"),
		filepath.Join(p.PidsDir(), "services.pids.groups"),
		filepath.Join(p.PidsDir(), "services.pids.services"),
	}
}

// RemoveState deletes the tracking files, and .pids/ if nothing else is in it.
func (p *Project) RemoveState() error {
	var errs []error
	for _, f := range p.PidFiles() {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	os.Remove(p.PidsDir()) // fails, harmlessly, when the user keeps other files there
	return errors.Join(errs...)
}

// Names returns the recorded service names, sorted.
func (st *State) Names() []string {
	names := make([]string, 0, len(st.Services))
	for n := range st.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// writeAtomic writes data to a temporary file beside path and renames it
// over path, so that a reader sees the old content or the new, never a part.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
