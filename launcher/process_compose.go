package launcher

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"
)

// A process-compose.yaml (github.com/F1bonacc1/process-compose, the format
// devbox, flox and devenv generate) is read as a project file of its own:
// each process becomes a service. Every key is either honoured, or named
// in a warning (cgdev does something close, or nothing, and says which),
// or refused (cgdev would run something else than the file means). The
// table in docs/process-compose.md lists them all.

// processComposeNames are the file names FindProject looks for, in
// process-compose's order of preference. (compose.yaml is docker
// compose's as much as process-compose's: name it with -f.)
var processComposeNames = []string{"process-compose.yml", "process-compose.yaml"}

// Probe is a process-compose readiness or liveness probe: the check and
// its timing. A readiness probe becomes the service's Ready, a liveness
// probe its Health (health).
type Probe struct {
	Check            *Ready // exec or http
	InitialDelay     time.Duration
	Period           time.Duration // default 10s
	Timeout          time.Duration // per attempt, default 1s
	SuccessThreshold int           // default 1
	FailureThreshold int           // default 3
}

// isProcessCompose reports whether the project file at path is a
// process-compose.yaml: by its name, else by its content (a top-level
// processes: key and no services:).
func isProcessCompose(path string, b []byte) bool {
	if strings.HasPrefix(filepath.Base(path), "process-compose") {
		return true
	}
	var doc struct {
		Processes yaml.Node `yaml:"processes"`
		Services  yaml.Node `yaml:"services"`
	}
	if yaml.Unmarshal(b, &doc) != nil {
		return false
	}
	return doc.Processes.Kind != 0 && doc.Services.Kind == 0
}

// pcLoader reads a process-compose.yaml into the loader's Config.
type pcLoader struct {
	*loader
	dotenv    map[string]string // the .env (or -e) files: for expansion, and for every process
	globalEnv []string          // top-level environment:
	shell     []string          // shell: shell_command shell_argument
	daemon    bool              // the is_daemon note was given
	procs     map[string]*pcProc
}

// pcProc is what a process's keys say beyond its Service, until all are read.
type pcProc struct {
	svc          *Service
	envFile      string
	envFileNode  *yaml.Node
	noDotenv     bool
	dependsNodes map[string]*yaml.Node
	conditions   map[string]string // depends_on's conditions as process-compose names them
}

// parseProcessCompose reads a process-compose.yaml: the .env files, the
// variables expanded in the text (unless disable_env_expansion), then the
// YAML.
func (c *loader) parseProcessCompose(b []byte) error {
	c.processCompose = true
	p := &pcLoader{loader: c, procs: map[string]*pcProc{}}
	if err := p.readDotenv(); err != nil {
		return err
	}
	raw, err := c.decodeYAML(b)
	if err != nil {
		return err
	}
	root := raw
	if !disablesExpansion(raw) {
		text, err := expandVars(c.File, string(b), p.lookup)
		if err != nil {
			return err
		}
		if root, err = c.decodeYAML([]byte(text)); err != nil {
			return err
		}
	}
	// Every service shares this slice: a shell: key later in the file
	// than the processes still applies to them all.
	p.shell = slices.Clone(defaultPCShell())
	if err := c.eachKey(compatible(root), "", p.topLevel()); err != nil {
		return err
	}
	return p.finish()
}

// readDotenv reads the -e files, else the project's .env if there is one.
func (p *pcLoader) readDotenv() error {
	env, err := p.readDefaultEnv()
	if err != nil {
		return err
	}
	p.dotenv = map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		p.dotenv[k] = v
	}
	return nil
}

// lookup is process-compose's expansion source: the .env files, then
// cgdev's environment.
func (p *pcLoader) lookup(name string) (string, bool) {
	if v, ok := p.dotenv[name]; ok {
		return v, true
	}
	return os.LookupEnv(name)
}

// disablesExpansion reports whether the file sets disable_env_expansion: true.
func disablesExpansion(root *yaml.Node) bool {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "disable_env_expansion" {
			b, err := strconv.ParseBool(root.Content[i+1].Value)
			return err == nil && b
		}
	}
	return false
}

// defaultPCShell is process-compose's: $COMPOSE_SHELL, else bash, with -c;
// /bin/sh where there is no bash.
func defaultPCShell() []string {
	if sh := os.Getenv("COMPOSE_SHELL"); sh != "" {
		return []string{sh, "-c"}
	}
	if _, err := exec.LookPath("bash"); err == nil {
		return []string{"bash", "-c"}
	}
	return defaultShell
}

// handlers are eachKey's: what to do with each key of a mapping.
type handlers = map[string]func(k, v *yaml.Node, field string) error

// topLevel are the handlers of a process-compose.yaml's top-level keys.
func (p *pcLoader) topLevel() handlers {
	accept := p.accept()
	h := handlers{
		"version":               accept,
		"name":                  accept,
		"is_strict":             accept, // cgdev refuses unknown keys always
		"is_tui_disabled":       accept, // cgdev has no TUI
		"disable_env_expansion": func(_, v *yaml.Node, f string) error { _, err := p.boolean(v, f); return err },
		"processes":             p.processes,
		"environment": func(_, v *yaml.Node, f string) (err error) {
			p.globalEnv, err = p.env(v, f)
			return err
		},
		"shell": func(_, v *yaml.Node, f string) error {
			return p.eachKey(v, f+".", handlers{
				"shell_command": func(_, v *yaml.Node, f string) (err error) {
					p.shell[0], err = p.scalar(v, f)
					return err
				},
				"shell_argument": func(_, v *yaml.Node, f string) (err error) {
					p.shell[1], err = p.scalar(v, f)
					return err
				},
				"elevated_shell_command":  p.ignored("cgdev runs nothing elevated"),
				"elevated_shell_argument": p.ignored("cgdev runs nothing elevated"),
			})
		},
		"ordered_shutdown": p.ignored("cgdev's stop signals dependants before their dependencies, then waits for all at once"),
		"vars":             p.ignored("cgdev does not render Go templates ({{.VAR}} stays as written)"),
		"mcp_server":       p.ignored("cgdev has no MCP server"),
		"extends":          p.refused("cgdev reads one file: merge the two, or name the one to run with -f"),
		"env_cmds":         p.refused("cgdev does not run commands to fill variables: put them in .env"),
	}
	for _, k := range []string{"log_location", "log_level", "log_length", "log_configuration", "log_format"} {
		h[k] = p.ignored("cgdev keeps each service's output in .cgdev/logs/SERVICE.log (cgdev logs)")
	}
	return h
}

// ignored is the handler of a key cgdev reads but does not act on: a
// warning at its line says so, and why.
func (p *pcLoader) ignored(why string) func(k, v *yaml.Node, field string) error {
	return func(k, _ *yaml.Node, field string) error {
		p.warn(k, field, "ignored: "+why)
		return nil
	}
}

// notYet is the warning for a key whose behaviour cgdev does not have yet.
func notYet(what string) string {
	return "not supported by cgdev yet: " + what
}

// refused is the handler of a key cgdev cannot honour without running
// something else than the file means.
func (p *pcLoader) refused(why string) func(k, v *yaml.Node, field string) error {
	return func(k, _ *yaml.Node, field string) error {
		return p.errAt(k, field, "not supported by cgdev: %s", why)
	}
}

func (p *pcLoader) warn(n *yaml.Node, field, msg string) {
	p.Warnings = append(p.Warnings, p.errAt(n, field, "%s", msg).Error())
}

// processes reads each process as a service, in file order.
func (p *pcLoader) processes(_, v *yaml.Node, field string) error {
	if v.Kind != yaml.MappingNode {
		return p.errAt(v, field, "expected a mapping of process names to processes, found %s", kindName(v))
	}
	pairs, err := p.pairs(v, field+".")
	if err != nil {
		return err
	}
	for _, kv := range pairs {
		k, body := kv[0], kv[1]
		f := field + "." + k.Value
		if err := checkServiceName(k.Value); err != nil {
			return p.errAt(k, f, "%v", err)
		}
		if err := p.process(k, body, f); err != nil {
			return err
		}
	}
	return nil
}

// process reads one process into a Service.
func (p *pcLoader) process(k, v *yaml.Node, prefix string) error {
	s := &Service{Name: k.Value, Line: k.Line, Dir: p.Dir, StopSignal: unix.SIGTERM, Grace: 10 * time.Second, Shell: p.shell, Restart: defaultRestart,
		Type: TypeSimple, StopTimeout: defaultStopTimeout}
	pr := &pcProc{svc: s, dependsNodes: map[string]*yaml.Node{}, conditions: map[string]string{}}
	var entrypoint []string
	var readiness *Probe
	var readyLogLine string
	flag := func(set func(bool)) func(_, v *yaml.Node, f string) error {
		return func(_, v *yaml.Node, f string) error {
			b, err := p.boolean(v, f)
			set(b)
			return err
		}
	}
	h := handlers{
		"command": func(_, v *yaml.Node, f string) (err error) {
			s.Command, err = p.command(v, f)
			return err
		},
		"entrypoint": func(_, v *yaml.Node, f string) (err error) {
			entrypoint, err = p.strings(v, f)
			if err == nil && len(entrypoint) == 0 {
				err = p.errAt(v, f, "an empty entrypoint")
			}
			return err
		},
		"working_dir": func(_, v *yaml.Node, f string) (err error) {
			s.Dir, err = p.dir(v, f)
			return err
		},
		"environment": func(_, v *yaml.Node, f string) (err error) {
			s.Env, err = p.env(v, f)
			return err
		},
		"env_file": func(_, v *yaml.Node, f string) (err error) {
			pr.envFile, err = p.scalar(v, f)
			pr.envFileNode = v
			return err
		},
		"is_dotenv_disabled": flag(func(b bool) { pr.noDotenv = b }),
		"depends_on":         func(_, v *yaml.Node, f string) error { return p.dependsOn(pr, v, f) },
		"readiness_probe": func(_, v *yaml.Node, f string) (err error) {
			readiness, err = p.probe(v, f)
			return err
		},
		"ready_log_line": func(_, v *yaml.Node, f string) (err error) {
			if readyLogLine, err = p.scalar(v, f); err == nil && readyLogLine == "" {
				err = p.errAt(v, f, "an empty line would match at once")
			}
			return err
		},
		"liveness_probe": func(k, v *yaml.Node, f string) error {
			pb, err := p.probe(v, f)
			if err == nil {
				s.Health = p.health(pb, k, f)
			}
			return err
		},
		"availability": func(k, v *yaml.Node, f string) error { return p.availability(s, k, v, f) },
		"shutdown":     func(_, v *yaml.Node, f string) error { return p.shutdown(s, v, f) },
		"disabled":     flag(func(b bool) { s.Disabled = s.Disabled || b }),
		"is_disabled":  flag(func(b bool) { s.Disabled = s.Disabled || b }),
	}
	maps.Copy(h, p.otherProcessKeys(s))
	if err := p.eachKey(compatible(v), prefix+".", h); err != nil {
		return err
	}
	if err := p.settle(s, k, prefix, entrypoint, readiness, readyLogLine); err != nil {
		return err
	}
	p.procs[s.Name] = pr
	p.Services = append(p.Services, s)
	return nil
}

// otherProcessKeys are the handlers of a process's keys that are accepted
// as they are, warned about or refused.
func (p *pcLoader) otherProcessKeys(s *Service) handlers {
	return handlers{
		"is_daemon": func(k, v *yaml.Node, f string) error {
			if b, err := p.boolean(v, f); err != nil || !b || p.daemon {
				return err
			}
			p.daemon = true
			p.warn(k, f, "a no-op under cgdev (said once per file): a service's group keeps every process it forks, a daemon's too; its main process may exit 0, and stop stops the whole group")
			return nil
		},
		"namespace": func(_, v *yaml.Node, f string) error { _, err := p.strings(v, f); return err },
		"replicas": func(_, v *yaml.Node, f string) error {
			n, err := p.integer(v, f, 0, 1<<20)
			if err == nil && n > 1 {
				err = p.errAt(v, f, "not supported by cgdev: one group per process (declare each replica as a process of its own)")
			}
			return err
		},
		"description":          p.accept(),
		"is_template_disabled": p.accept(),
		"name": func(k, v *yaml.Node, f string) error {
			n, err := p.scalar(v, f)
			if err == nil && n != s.Name {
				p.warn(k, f, fmt.Sprintf("ignored: cgdev names the service %s, by its key", s.Name))
			}
			return err
		},
		"is_foreground": func(k, v *yaml.Node, f string) error {
			b, err := p.boolean(v, f)
			if err == nil && b {
				s.Disabled = true
				p.warn(k, f, "cgdev has no foreground processes: this one starts only when named (cgdev start "+s.Name+"), in the background")
			}
			return err
		},
		"log_location":              p.ignored("cgdev keeps each service's output in .cgdev/logs/SERVICE.log (cgdev logs)"),
		"log_configuration":         p.ignored("cgdev keeps each service's output in .cgdev/logs/SERVICE.log (cgdev logs)"),
		"truncate_log":              p.ignored("cgdev appends to .cgdev/logs/SERVICE.log"),
		"disable_ansi_colors":       p.ignored("cgdev writes the output as the service prints it"),
		"is_tty":                    p.ignored("cgdev runs services without a terminal (stdin is /dev/null)"),
		"is_interactive":            p.ignored("cgdev runs services without a terminal (stdin is /dev/null)"),
		"launch_timeout_seconds":    p.ignored("a daemon is started like any service; the readiness check's timeout bounds the wait"),
		"vars":                      p.ignored("cgdev does not render Go templates ({{.VAR}} stays as written)"),
		"monitor_for":               p.ignored("cgdev has no TUI to notify"),
		"monitor_silence_threshold": p.ignored("cgdev has no TUI to notify"),
		"mcp":                       p.ignored("cgdev has no MCP server"),
		"watch": func(k, _ *yaml.Node, f string) error {
			p.warn(k, f, notYet("no restart on file changes"))
			return nil
		},
		"success_exit_codes": func(k, v *yaml.Node, f string) error {
			p.warn(k, f, notYet("cgdev tracks no exit status after start"))
			_, err := p.strings(v, f)
			return err
		},
		"is_elevated": p.refused("cgdev runs nothing with sudo"),
		"schedule":    p.refused("cgdev starts services, it does not schedule them: use cron or a systemd timer with cgdev run"),
		"extends":     p.refused("write the process out in full"),
	}
}

// settle checks what a process's keys say together: one command, one
// readiness check.
func (p *pcLoader) settle(s *Service, k *yaml.Node, prefix string, entrypoint []string, readiness *Probe, readyLogLine string) error {
	switch {
	case s.Command != "" && entrypoint != nil:
		p.warn(k, prefix+".entrypoint", "ignored: command is set too, and wins (as in process-compose)")
	case s.Command == "" && entrypoint != nil:
		s.Command = shellQuote(entrypoint)
	case s.Command == "":
		return p.errAt(k, prefix, "no command (give command or entrypoint)")
	}
	if readiness != nil && readyLogLine != "" {
		return p.errAt(k, prefix+".ready_log_line", "ready_log_line and readiness_probe cannot both be set (as in process-compose)")
	}
	if readiness != nil {
		s.Ready = readiness.Check
		// process-compose gives up after failure_threshold failed probes,
		// period_seconds apart, after the initial delay.
		s.Ready.Timeout = readiness.InitialDelay + readiness.Period*time.Duration(readiness.FailureThreshold) + readiness.Timeout
	}
	if readyLogLine != "" {
		s.Ready = &Ready{Kind: "log", Target: regexp.QuoteMeta(readyLogLine), Timeout: defaultReadyTimeout}
		if err := s.Ready.validate(); err != nil {
			return p.errAt(k, prefix+".ready_log_line", "%v", err)
		}
	}
	return nil
}

// shellQuote writes argv as a command line for sh: each word single-quoted.
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// accept is the handler of a key that needs nothing of cgdev.
func (p *pcLoader) accept() func(k, v *yaml.Node, field string) error {
	return func(*yaml.Node, *yaml.Node, string) error { return nil }
}

// command reads a command as the cgdev.yaml key does, and warns about a
// Go template in it.
func (p *pcLoader) command(v *yaml.Node, f string) (string, error) {
	s, err := p.loader.command(v, f)
	if err == nil && strings.Contains(s, "{{") {
		p.warn(v, f, "contains {{: cgdev does not render process-compose's Go templates; the shell gets it as written")
	}
	return s, err
}

// compatible returns the mapping n as process-compose reads it: without
// its x- keys (the user's own, which process-compose allows) and without
// keys given no value ("environment:" with every entry commented out),
// which process-compose takes as not given.
func compatible(n *yaml.Node) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return n
	}
	out := *n
	out.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if strings.HasPrefix(k.Value, "x-") || v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			continue
		}
		out.Content = append(out.Content, n.Content[i], n.Content[i+1])
	}
	return &out
}

// pcConditions map process-compose's depends_on conditions to cgdev's.
// process_completed (any exit code) becomes completed (exit 0), with a
// warning: cgdev never starts a dependant after a failed task.
var pcConditions = map[string]string{
	"process_started":                CondStarted,
	"process_healthy":                CondReady,
	"process_log_ready":              CondReady,
	"process_completed_successfully": CondCompleted,
	"process_completed":              CondCompleted,
}

// dependsOn reads depends_on: {NAME: {condition: COND}} (default
// process_started), keeping cgdev's condition in DependsOnCondition and
// process-compose's in pcProc.conditions for finish's checks. A process
// some other waits for to complete becomes a oneshot (finish).
func (p *pcLoader) dependsOn(pr *pcProc, v *yaml.Node, field string) error {
	if v.Kind != yaml.MappingNode {
		return p.errAt(v, field, "expected a mapping of process names to {condition: ...}, found %s", kindName(v))
	}
	pairs, err := p.pairs(v, field+".")
	if err != nil {
		return err
	}
	pr.svc.DependsOnCondition = map[string]string{}
	for _, kv := range pairs {
		name, f := kv[0].Value, field+"."+kv[0].Value
		cond := "process_started"
		err := p.eachKey(compatible(kv[1]), f+".", handlers{
			"condition": func(_, v *yaml.Node, f string) (err error) {
				if cond, err = p.scalar(v, f); err != nil {
					return err
				}
				if pcConditions[cond] == "" {
					return p.errAt(v, f, "%q is not a condition (process_started, process_healthy, process_log_ready, process_completed, process_completed_successfully)", cond)
				}
				if cond == "process_completed" {
					p.warn(v, f, "process_completed: cgdev starts this process only when "+name+" exits 0 (as process_completed_successfully); a failed "+name+" blocks it")
				}
				return nil
			},
		})
		if err != nil {
			return err
		}
		pr.svc.DependsOn = append(pr.svc.DependsOn, name)
		pr.svc.DependsOnCondition[name] = pcConditions[cond]
		pr.conditions[name] = cond
		pr.dependsNodes[name] = kv[0]
	}
	return nil
}

// probe reads a readiness_probe or liveness_probe: exec or http_get, and
// its timing (process-compose's defaults: period 10s, timeout 1s,
// failure threshold 3).
func (p *pcLoader) probe(v *yaml.Node, field string) (*Probe, error) {
	pb := &Probe{Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3}
	seconds := func(d *time.Duration, min int) func(_, v *yaml.Node, f string) error {
		return func(_, v *yaml.Node, f string) error {
			n, err := p.integer(v, f, min, 1<<30)
			*d = time.Duration(n) * time.Second
			return err
		}
	}
	count := func(n *int) func(_, v *yaml.Node, f string) error {
		return func(_, v *yaml.Node, f string) (err error) {
			*n, err = p.integer(v, f, 1, 1<<30)
			return err
		}
	}
	kind := func(read func(*yaml.Node, string) (*Ready, error)) func(_, v *yaml.Node, f string) error {
		return func(_, v *yaml.Node, f string) (err error) {
			if pb.Check != nil {
				return p.errAt(v, f, "a probe has exec or http_get, not both")
			}
			pb.Check, err = read(v, f)
			return err
		}
	}
	err := p.eachKey(v, field+".", handlers{
		"exec":                  kind(p.execProbe),
		"http_get":              kind(p.httpProbe),
		"initial_delay_seconds": seconds(&pb.InitialDelay, 0),
		"period_seconds":        seconds(&pb.Period, 1),
		"timeout_seconds":       seconds(&pb.Timeout, 1),
		"success_threshold":     count(&pb.SuccessThreshold),
		"failure_threshold":     count(&pb.FailureThreshold),
	})
	if err != nil {
		return nil, err
	}
	if pb.Check == nil {
		return nil, p.errAt(v, field, "give exec or http_get")
	}
	return pb, nil
}

// execProbe reads exec: {command, working_dir} into an exec check.
func (p *pcLoader) execProbe(v *yaml.Node, field string) (*Ready, error) {
	r := &Ready{Kind: "exec"}
	var dir string
	err := p.eachKey(v, field+".", handlers{
		"command": func(_, v *yaml.Node, f string) (err error) {
			r.Target, err = p.command(v, f)
			return err
		},
		"working_dir": func(_, v *yaml.Node, f string) (err error) {
			dir, err = p.scalar(v, f)
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	if r.Target == "" {
		return nil, p.errAt(v, field, "no command")
	}
	if dir != "" { // the check runs in the service's directory: go there first
		r.Target = "cd " + shellQuote([]string{p.abs(dir)}) + " && " + r.Target
	}
	return r, nil
}

// httpProbe reads http_get: {host, scheme, path, port, headers,
// status_code} into an http check (process-compose's defaults: host
// 127.0.0.1, scheme http, path /).
func (p *pcLoader) httpProbe(v *yaml.Node, field string) (*Ready, error) {
	host, scheme, path, port := "127.0.0.1", "http", "/", ""
	str := func(dst *string) func(_, v *yaml.Node, f string) error {
		return func(_, v *yaml.Node, f string) (err error) {
			*dst, err = p.scalar(v, f)
			return err
		}
	}
	err := p.eachKey(v, field+".", handlers{
		"host": str(&host), "scheme": str(&scheme), "path": str(&path), "port": str(&port),
		"headers": func(k, v *yaml.Node, f string) error {
			p.warn(k, f, "ignored: cgdev's http check sends no extra headers")
			return nil
		},
		"status_code": func(k, v *yaml.Node, f string) error {
			n, err := p.integer(v, f, 100, 599)
			if err == nil && n != 200 {
				p.warn(k, f, fmt.Sprintf("cgdev's http check passes on any 2xx answer, not on %d only", n))
			}
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	hostport := host
	if port != "" {
		hostport = net.JoinHostPort(host, port)
	}
	u := url.URL{Scheme: strings.ToLower(scheme), Host: hostport, Path: path}
	r := &Ready{Kind: "http", Target: u.String()}
	if err := r.validate(); err != nil {
		return nil, p.errAt(v, field, "%v", err)
	}
	return r, nil
}

// availability reads availability: restart, backoff_seconds, max_restarts,
// exit_on_end, exit_on_skipped, into the service's restart policy:
// process-compose waits backoff_seconds (default 1) before every restart,
// and max_restarts (0: no limit) counts every restart since the start, so
// the delay is fixed (Initial = Max) and the window is restartWindowEver.
// exit_on_failure stops the whole project in process-compose; cgdev does
// not, and does not restart the service either (warned).
func (p *pcLoader) availability(s *Service, k, v *yaml.Node, field string) error {
	policy, backoff, maxRestarts := "no", time.Second, 0
	var policyNode *yaml.Node
	err := p.eachKey(v, field+".", handlers{
		"restart": func(_, v *yaml.Node, f string) (err error) {
			if policy, err = p.scalar(v, f); err != nil {
				return err
			}
			policyNode = v
			switch policy {
			case "no", "always", "on_failure", "exit_on_failure":
				return nil
			}
			return p.errAt(v, f, "%q is not a restart policy (always, on_failure, exit_on_failure, no)", policy)
		},
		"backoff_seconds": func(_, v *yaml.Node, f string) error {
			n, err := p.integer(v, f, 0, 1<<30)
			backoff = time.Duration(n) * time.Second
			return err
		},
		"max_restarts": func(_, v *yaml.Node, f string) (err error) {
			maxRestarts, err = p.integer(v, f, 0, 1<<30)
			return err
		},
		"exit_on_end":     p.ignored("cgdev leaves the other services running when one ends"),
		"exit_on_skipped": p.ignored("cgdev leaves the other services running when one is skipped"),
	})
	if err != nil {
		return err
	}
	r := Restart{Policy: RestartNo, Initial: backoff, Max: backoff, MaxRestarts: maxRestarts, Window: restartWindowEver}
	switch policy {
	case "always":
		r.Policy = RestartAlways
	case "on_failure":
		r.Policy = RestartOnFailure
	case "exit_on_failure":
		p.warn(policyNode, field+".restart", "exit_on_failure: cgdev does not stop the whole project when this service fails; the service is not restarted (it stays down as exited or failed)")
	}
	if r.Policy != RestartNo {
		s.Restart = r
	}
	return nil
}

// health makes a liveness_probe the service's liveness check: its check
// bounded by timeout_seconds, run every period_seconds (the first after
// initial_delay_seconds, or one period when that is 0), failure_threshold
// failures in a row making the service unhealthy. success_threshold above
// 1 cannot be honoured: one passing check makes it healthy again (warned).
func (p *pcLoader) health(pb *Probe, k *yaml.Node, field string) *Health {
	check := *pb.Check
	check.Timeout = pb.Timeout
	if pb.SuccessThreshold > 1 {
		p.warn(k, field+".success_threshold", fmt.Sprintf("%d: cgdev counts one passing check as healthy again", pb.SuccessThreshold))
	}
	return &Health{Check: check, Interval: pb.Period, Retries: pb.FailureThreshold, Delay: pb.InitialDelay}
}

// shutdown reads shutdown: signal, timeout_seconds, command, parent_only.
func (p *pcLoader) shutdown(s *Service, v *yaml.Node, field string) error {
	return p.eachKey(v, field+".", handlers{
		"signal": func(_, v *yaml.Node, f string) error {
			n, err := p.integer(v, f, 1, 31)
			s.StopSignal = syscall.Signal(n)
			return err
		},
		"timeout_seconds": func(_, v *yaml.Node, f string) error {
			n, err := p.integer(v, f, 0, 1<<30)
			s.Grace = time.Duration(n) * time.Second
			return err
		},
		"command": func(k, v *yaml.Node, f string) (err error) {
			s.StopCommand, err = p.command(v, f)
			return err
		},
		"parent_only": func(k, v *yaml.Node, f string) error {
			b, err := p.boolean(v, f)
			if err == nil && b {
				p.warn(k, f, "ignored: cgdev signals every process of the service's group")
			}
			return err
		},
		"send_keys": p.refused("cgdev runs services without a terminal to type into"),
	})
}

// finish adds each process's environment, checks its dependencies and
// applies what -e adds.
func (p *pcLoader) finish() error {
	for _, s := range p.Services {
		pr := p.procs[s.Name]
		env := []string{"PC_PROC_NAME=" + s.Name, "PC_REPLICA_NUM=0"}
		if !pr.noDotenv {
			for _, k := range sortedKeys(p.dotenv) {
				if _, set := os.LookupEnv(k); !set { // process-compose: the caller's environment wins over .env
					env = append(env, k+"="+p.dotenv[k])
				}
			}
		}
		env = append(env, p.globalEnv...)
		if pr.envFile != "" {
			file := pr.envFile
			if !filepath.IsAbs(file) && s.Dir != p.Dir { // relative to working_dir, as process-compose does
				file = filepath.Join(s.Dir, file)
			}
			fileEnv, err := p.envFiles([]string{file}, pr.envFileNode, "processes."+s.Name+".env_file")
			if err != nil {
				return err
			}
			env = append(env, fileEnv...)
		}
		s.Env = append(env, s.Env...)
		for _, d := range s.DependsOn {
			dep := p.procs[d]
			n := pr.dependsNodes[d]
			field := "processes." + s.Name + ".depends_on." + d
			switch cond := pr.conditions[d]; {
			case dep == nil:
				return p.errAt(n, field, "unknown process %q (processes: %s)", d, strings.Join(p.Names(), ", "))
			case dep.svc.Disabled:
				return p.errAt(n, field, "%s is disabled: a process may not depend on it (as in process-compose)", d)
			case cond == "process_healthy" && (dep.svc.Ready == nil || dep.svc.Ready.Kind == "log"):
				return p.errAt(n, field, "process_healthy needs a readiness_probe on %s", d)
			case cond == "process_log_ready" && (dep.svc.Ready == nil || dep.svc.Ready.Kind != "log"):
				return p.errAt(n, field, "process_log_ready needs a ready_log_line on %s", d)
			case s.DependsOnCondition[d] == CondCompleted:
				if err := p.makeOneshot(dep.svc, n, field); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// makeOneshot makes a process that another waits for to complete a
// oneshot: cgdev waits for it to exit 0, and its dependants then start. A
// process that is ready, checked or restarted while it runs cannot be one.
func (p *pcLoader) makeOneshot(s *Service, n *yaml.Node, field string) error {
	var why string
	switch {
	case s.Ready != nil:
		why = "a readiness_probe or ready_log_line"
	case s.Health != nil:
		why = "a liveness_probe"
	case s.Restart.Policy == RestartAlways:
		why = "availability.restart: always"
	}
	if why != "" {
		return p.errAt(n, field, "%s must run to completion for this condition, but has %s", s.Name, why)
	}
	s.Type = TypeOneshot
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// boolean reads a YAML boolean (true/false, yes/no, on/off).
func (c *loader) boolean(v *yaml.Node, field string) (bool, error) {
	s, err := c.scalar(v, field)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	return false, c.errAt(v, field, "%q is not true or false", s)
}

// integer reads a whole number from min to max.
func (c *loader) integer(v *yaml.Node, field string, min, max int) (int, error) {
	s, err := c.scalar(v, field)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, c.errAt(v, field, "%q is not a whole number from %d to %d", s, min, max)
	}
	return n, nil
}
