package launcher

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestProcessComposeMapping: what each honoured key becomes in the Service.
func TestProcessComposeMapping(t *testing.T) {
	t.Setenv("FROM_CALLER", "caller")
	t.Setenv("COMPOSE_SHELL", "")
	path := writeConfig(t, "process-compose.yaml", `version: "0.5"
environment: ["G=global", "SHARED=global"]
shell: {shell_command: /bin/bash, shell_argument: -ec}
processes:
  db:
    entrypoint: [postgres, "-c", "it's"]
    readiness_probe:
      http_get: {port: 5432, path: /health, scheme: HTTP}
      initial_delay_seconds: 2
      period_seconds: 3
      failure_threshold: 4
      timeout_seconds: 1
    liveness_probe:
      exec: {command: pg_isready, working_dir: /tmp}
      period_seconds: 5
      timeout_seconds: 4
      failure_threshold: 6
      initial_delay_seconds: 8
      success_threshold: 2
    availability: {restart: always, backoff_seconds: 7, max_restarts: 2}
    shutdown: {signal: 3, timeout_seconds: 20, command: pg_ctl stop}
    environment:
    x-team: data
  api:
    command: serve --dotenv=$${FROM_DOTENV}
    env_file: api.env
    environment: ["SHARED=process"]
    depends_on:
      db: {condition: process_healthy}
    ready_log_line: "listening on :8080 (ready)"
    disabled: true
`)
	dir := filepath.Dir(path)
	os.WriteFile(filepath.Join(dir, ".env"), []byte("FROM_DOTENV=dotenv\nFROM_CALLER=dotenv\nSHARED=dotenv\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "api.env"), []byte("FILE=env-file\nSHARED=env-file\n"), 0o644)
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	db, api := c.Service("db"), c.Service("api")
	if db.Command != `'postgres' '-c' 'it'\''s'` || !slices.Equal(db.Shell, []string{"/bin/bash", "-ec"}) {
		t.Errorf("db command %q, shell %q", db.Command, db.Shell)
	}
	if db.Ready.String() != "http http://127.0.0.1:5432/health" || db.Ready.Timeout != 2*time.Second+3*4*time.Second+time.Second {
		t.Errorf("db ready %s, timeout %s", db.Ready, db.Ready.Timeout)
	}
	if !slices.Equal(db.Ports, []int{5432}) {
		t.Errorf("db ports %v: the probe's local port", db.Ports)
	}
	if h := db.Health; h == nil || h.Check.Kind != "exec" || h.Check.Target != "cd '/tmp' && pg_isready" || h.Check.Timeout != 4*time.Second ||
		h.Interval != 5*time.Second || h.Retries != 6 || h.Delay != 8*time.Second {
		t.Errorf("db liveness %+v", db.Health)
	}
	if db.Restart != (Restart{Policy: RestartAlways, Initial: 7 * time.Second, Max: 7 * time.Second, MaxRestarts: 2, Window: restartWindowEver}) {
		t.Errorf("db restart %+v", db.Restart)
	}
	if api.Restart != defaultRestart || api.Health != nil || api.Supervised() || !db.Supervised() {
		t.Errorf("api, with neither availability nor liveness_probe: restart %+v, health %+v", api.Restart, api.Health)
	}
	if db.StopSignal != unix.SIGQUIT || db.Grace != 20*time.Second || db.StopCommand != "pg_ctl stop" {
		t.Errorf("db stop: %v %s %q", db.StopSignal, db.Grace, db.StopCommand)
	}
	if api.Command != "serve --dotenv=${FROM_DOTENV}" || api.Ready.Kind != "log" || !api.Disabled {
		t.Errorf("api: %+v", api)
	}
	if api.Condition("db") != CondReady || !slices.Equal(c.DefaultNames(), []string{"db"}) {
		t.Errorf("api depends %v; default names %v", api.DependsOnCondition, c.DefaultNames())
	}
	// process-compose's order: .env < the caller's < global < env_file < the process's own.
	want := []string{"PC_PROC_NAME=api", "PC_REPLICA_NUM=0", "FROM_DOTENV=dotenv", "SHARED=dotenv", "G=global", "SHARED=global", "FILE=env-file", "SHARED=env-file", "SHARED=process"}
	if !slices.Equal(api.Env, want) {
		t.Errorf("api env\n%q\nwant\n%q", api.Env, want)
	}
	warnings := strings.Join(c.Warnings, "\n")
	if strings.Contains(warnings, "shutdown.command") ||
		!strings.Contains(warnings, "processes.db.liveness_probe.success_threshold: 2: cgdev counts one passing check as healthy again") {
		t.Errorf("warnings: %q", c.Warnings)
	}
	if strings.Contains(warnings, "availability") || strings.Contains(warnings, "liveness_probe: not supported") {
		t.Errorf("availability and liveness_probe are supported now, yet warned about: %q", c.Warnings)
	}
}

// TestProcessComposeAvailability: each restart policy of process-compose
// becomes cgdev's; exit_on_failure is warned about and restarts nothing.
func TestProcessComposeAvailability(t *testing.T) {
	for _, c := range []struct {
		availability string
		want         Restart
		warning      string
	}{
		{"{restart: on_failure}", Restart{Policy: RestartOnFailure, Initial: time.Second, Max: time.Second, Window: restartWindowEver}, ""},
		{"{restart: always, backoff_seconds: 0, max_restarts: 3}", Restart{Policy: RestartAlways, MaxRestarts: 3, Window: restartWindowEver}, ""},
		{"{restart: no, backoff_seconds: 5}", defaultRestart, ""},
		{"{restart: exit_on_failure}", defaultRestart, "processes.a.availability.restart: exit_on_failure: cgdev does not stop the whole project"},
	} {
		path := writeConfig(t, "process-compose.yaml", "processes:\n  a:\n    command: x\n    availability: "+c.availability+"\n")
		cfg, err := loadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Service("a").Restart; got != c.want {
			t.Errorf("%s: restart %+v, want %+v", c.availability, got, c.want)
		}
		if w := strings.Join(cfg.Warnings, "\n"); (c.warning == "") != (w == "") || !strings.Contains(w, c.warning) {
			t.Errorf("%s: warnings %q, want %q", c.availability, w, c.warning)
		}
	}
}

// TestProcfileNotSupervised: a Procfile's services have no restart policy,
// so no supervisor is started for them.
func TestProcfileNotSupervised(t *testing.T) {
	cfg, err := loadConfig(writeConfig(t, "Procfile", "web: sleep 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Service("web"); s.Supervised() || s.Restart != defaultRestart {
		t.Errorf("Procfile service: restart %+v, supervised %v", s.Restart, s.Supervised())
	}
}

// TestFindProcessCompose: the walk-up finds process-compose.yml before
// .yaml, after cgdev.yaml and Procfile; -f with another name is
// recognised by its processes: key.
func TestFindProcessCompose(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "a", "b")
	os.MkdirAll(sub, 0o755)
	for _, name := range []string{"process-compose.yaml", "process-compose.yml"} {
		os.WriteFile(filepath.Join(dir, name), []byte("processes:\n  x: {command: run}\n"), 0o644)
	}
	if d, f, err := FindProject(sub, ""); err != nil || d != dir || filepath.Base(f) != "process-compose.yml" {
		t.Errorf("FindProject = %s %s %v", d, f, err)
	}
	os.WriteFile(filepath.Join(dir, "Procfile"), []byte("x: run\n"), 0o644)
	if _, f, _ := FindProject(sub, ""); filepath.Base(f) != "Procfile" {
		t.Errorf("with a Procfile too: %s", f)
	}
	named := filepath.Join(dir, "dev.yaml")
	os.WriteFile(named, []byte("processes:\n  x: {command: run}\n"), 0o644)
	if c, err := loadConfig(named); err != nil || !c.processCompose {
		t.Errorf("dev.yaml with processes: %v", err)
	}
}

// TestUnreadSiblings: a project file beside the one cgdev reads, and
// process-compose's override file, are named in warnings.
func TestUnreadSiblings(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"Procfile", "process-compose.yaml", "process-compose.override.yaml"} {
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644)
	}
	if got := unreadSiblings(filepath.Join(dir, "Procfile")); len(got) != 1 || !strings.HasPrefix(got[0], "process-compose.yaml is not read: cgdev reads Procfile") {
		t.Errorf("beside Procfile: %q", got)
	}
	got := unreadSiblings(filepath.Join(dir, "process-compose.yaml"))
	if len(got) != 2 || !strings.HasPrefix(got[1], "process-compose.override.yaml is not merged") {
		t.Errorf("beside process-compose.yaml: %q", got)
	}
}
