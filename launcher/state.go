package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/internal/safefile"
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
	// Guessed marks a record rebuilt from the group (its leader taken for
	// the main process), not made by the start of the service: by status,
	// by the supervisor, or recorded by a start that found the service
	// running without a record (a start SIGKILLed before it wrote one).
	// Its main process's end is not taken for the service's.
	Guessed bool `json:"guessed,omitempty"`
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
func (s *ServiceState) Identity() proc.Identity {
	return proc.Identity{PID: s.PID, StartTicks: s.StartTicks}
}

// stateFile is state.json's name in .cgdev/; MaxStateSize bounds what is
// read of it: a record of a few services is a few KiB, and a larger file is
// not one cgdev wrote (status must not read 4 GB to print a table).
const (
	stateFile    = "state.json"
	MaxStateSize = 1 << 20
)

// pidFiles are the files cgdev writes in .pids/ for scripts.
var pidFiles = []string{"services.pids", "services.pids.groups", "services.pids.services"}

// LoadState reads state.json. A missing file gives an empty state; one that
// cannot be used (corrupt, another project's, over MaxStateSize, not a
// regular file, in a .cgdev/ that is not a real directory) gives an empty
// state and an error, which is also printed once as a warning.
func (p *Project) LoadState() (*State, error) {
	st := &State{Project: p.ID, Dir: p.Dir, Services: map[string]*ServiceState{}}
	b, err := p.readState()
	if missing(err) {
		return st, nil
	}
	if err == nil {
		var read *State
		if read, err = parseState(b, p.ID); err == nil {
			return read, nil
		}
	}
	var tooBig *safefile.TooBigError
	if !safefile.IsNotOurs(err) && !errors.As(err, &tooBig) { // those name the file and say it is left alone
		err = fmt.Errorf("ignoring %s: %w", displayPath(filepath.Join(p.StateDir(), stateFile)), err)
	}
	p.warnOnce(err)
	return st, err
}

func (p *Project) readState() ([]byte, error) {
	d, err := p.stateDir(false)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadFile(stateFile, MaxStateSize)
}

// parseState decodes state.json, refusing another project's.
func parseState(b []byte, project string) (*State, error) {
	var read State
	if err := json.Unmarshal(b, &read); err != nil {
		return nil, err
	}
	if read.Project != project {
		return nil, fmt.Errorf("it belongs to project %q", read.Project)
	}
	if read.Services == nil {
		read.Services = map[string]*ServiceState{}
	}
	for name, s := range read.Services {
		if s == nil {
			delete(read.Services, name) // "web": null
		}
	}
	return &read, nil
}

// SaveState writes state.json and the .pids files, each atomically; with no
// services left it removes them (and .pids/ when it is left empty). What is
// in their place but is not cgdev's (a user's file called .pids, a symlink)
// is left alone with a warning, and is no error.
func (p *Project) SaveState(st *State) error {
	if len(st.Services) == 0 {
		return p.RemoveState()
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	d, err := p.stateDir(true)
	if err == nil {
		err = d.WriteFile(stateFile, append(b, '\n'))
		d.Close()
	}
	if err := p.tolerate(err); err != nil {
		return err
	}
	return p.writePids(st)
}

// UpdateState applies change to state.json (read, changed, written) under
// .cgdev/state.lock, a lock held only for that: the project lock serialises
// the commands, this one also the supervisor's updates after a restart,
// which it makes while a command may hold the project lock.
//
// A state.lock that cannot be taken (a FIFO or symlink of the user's there,
// a read-only project where it was never made) is a warning, and the update
// goes on without it: the lock only orders cgdev's own writers, and
// SaveState guards the files themselves.
func (p *Project) UpdateState(change func(st *State)) error {
	unlock, err := p.lockFile("state.lock")
	if err != nil {
		p.warnOnce(fmt.Errorf("updating state.json without its lock: %w", err))
		unlock = func() {}
	}
	defer unlock()
	st, _ := p.LoadState() // an unusable state.json is a warning (printed by LoadState), and is replaced
	change(st)
	return p.SaveState(st)
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
	d, err := p.pidsDir(true)
	if err != nil {
		return p.tolerate(err)
	}
	defer d.Close()
	var errs []error
	for i, content := range []string{pids.String(), groups.String(), services.String()} {
		errs = append(errs, p.tolerate(d.WriteFile(pidFiles[i], []byte(content))))
	}
	return errors.Join(errs...)
}

// RemoveState deletes the tracking files, and .pids/ if nothing else is in
// it. Only regular files are removed: anything else found in their place is
// left alone with a warning, and is no error.
func (p *Project) RemoveState() error {
	var errs []error
	if d, err := p.stateDir(false); err == nil {
		errs = append(errs, p.tolerate(d.Remove(stateFile)))
		d.Close()
	} else if !missing(err) {
		errs = append(errs, p.tolerate(err))
	}
	if d, err := p.pidsDir(false); err == nil {
		for _, f := range pidFiles {
			errs = append(errs, p.tolerate(d.Remove(f)))
		}
		d.Close()
		if root, err := safefile.OpenRoot(p.Dir); err == nil {
			root.RemoveDirIfEmpty(pidsDirName) // not when the user keeps other files there
			root.Close()
		}
	} else if !missing(err) {
		errs = append(errs, p.tolerate(err))
	}
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
