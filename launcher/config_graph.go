package launcher

import (
	"fmt"
	"slices"
	"strings"
)

// checkDependencies refuses unknown or cyclic depends_on entries, naming
// the cycle.
func (c *Config) checkDependencies() error {
	for _, s := range c.Services {
		for _, d := range s.DependsOn {
			field := c.servicesField() + "." + s.Name + ".depends_on"
			dep := c.Service(d)
			if dep == nil {
				return &configError{File: c.File, Line: s.Line, Field: field,
					Msg: fmt.Sprintf("unknown service %q (services: %s)", d, strings.Join(c.Names(), ", "))}
			}
			if s.Condition(d) == CondCompleted && !dep.Oneshot() {
				return &configError{File: c.File, Line: s.Line, Field: field + "." + d,
					Msg: fmt.Sprintf("condition completed needs %s to be type: oneshot (a task that runs to completion); %s runs until stopped", d, d)}
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
			i := slices.Index(path, s.Name)
			cycle := append(append([]string(nil), path[i:]...), s.Name)
			return &configError{File: c.File, Line: c.Service(path[i]).Line, Field: c.servicesField() + "." + path[i] + ".depends_on",
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

// servicesField is the key the services are under in the project file,
// for errors: services, or a process-compose.yaml's processes.
func (c *Config) servicesField() string {
	if c.processCompose {
		return "processes"
	}
	return "services"
}

// Closure returns the named services and everything they depend on, each
// after its dependencies (file order among independent ones). No names:
// DefaultNames.
func (c *Config) Closure(names []string) ([]*Service, error) {
	if len(names) == 0 {
		names = c.DefaultNames()
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
