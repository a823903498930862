package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// newPCProject is a project with a process-compose.yaml and the given other files.
func newPCProject(t *testing.T, compose string, files map[string]string) *svcProject {
	t.Helper()
	files["process-compose.yaml"] = compose
	return newFilesProject(t, files)
}

// TestProcessComposeProject: cgdev start in a directory holding a
// process-compose.yaml runs it: dependencies in order of their conditions,
// the readiness probes (exec, http_get, ready_log_line), environment from
// .env, the global and process environment, env_file and working_dir,
// shutdown's signal; a disabled process is not started and does not count
// as down; every key cgdev does not act on is named in a warning.
func TestProcessComposeProject(t *testing.T) {
	needPython(t)
	fixture, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "test/e2e/testdata/process-compose/process-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	p := newPCProject(t, string(fixture), map[string]string{
		".env":        fmt.Sprintf("SECRET=from-dotenv\nWEB_PORT=%d\n", port),
		"api/api.env": "MODE=from-env-file\n",
	})
	code, out, stderr := p.cgdev("start")
	if code != 0 {
		t.Fatalf("start: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"db … ready in", "api … ready in", "web … ready in", "worker … running"} {
		if !strings.Contains(out, want) {
			t.Errorf("start output lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "db …") > strings.Index(out, "api …") || strings.Index(out, "api …") > strings.Index(out, "web …") {
		t.Errorf("not started in dependency order:\n%s", out)
	}
	for _, want := range []string{
		"process-compose.yaml:5: log_location: ignored",
		"process-compose.yaml:60: processes.worker.is_daemon: a no-op under cgdev",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("start's warnings lack %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "availability") || strings.Contains(stderr, "liveness_probe") {
		t.Errorf("availability and liveness_probe are acted on, yet warned about:\n%s", stderr)
	}
	if strings.Count(stderr, "is_daemon") != 1 {
		t.Errorf("the is_daemon note is not said once:\n%s", stderr)
	}
	if got := p.logLine("api", "api up"); got != "api up STAGE=dev SECRET=from-dotenv MODE=from-env-file FLAVOR=plain" {
		t.Errorf("api's environment: %q", got)
	}
	st := p.statusJSON() // exit 0 with docs disabled: checked inside
	for _, name := range []string{"db", "api", "web", "worker"} {
		want := "ready"
		if name == "worker" {
			want = "running" // no readiness check
		}
		if st[name].State != want || !strings.HasPrefix(st[name].Ready, "ready after") && name != "worker" {
			t.Errorf("status of %s: %+v, want %s", name, st[name], want)
		}
	}
	if sv := p.supervisor(); sv.State != "on" {
		t.Errorf("availability and liveness_probe run a supervisor; status says %+v", sv)
	}
	if st["docs"].State != "disabled" {
		t.Errorf("status of the disabled docs: %+v", st["docs"])
	}
	if cwd := proc.Cwd(st["api"].PID); cwd != filepath.Join(p.dir, "api") {
		t.Errorf("api runs in %s, want its working_dir", cwd)
	}
	if !strings.Contains(st["web"].Ready, fmt.Sprintf("http://127.0.0.1:%d/", port)) {
		t.Errorf("web's readiness: %q", st["web"].Ready)
	}
	// availability: {restart: always}: web, killed, is started again (after
	// its backoff, process-compose's default 1 s) and ready again.
	syscall.Kill(st["web"].PID, syscall.SIGKILL)
	web := p.waitState("web", func(s launcher.ServiceStatus) bool { return s.Restarts == 1 && s.State == "ready" })
	if web.PID == st["web"].PID || web.LastExit == nil || web.LastExit.Signal != "SIGKILL" {
		t.Errorf("web after kill -9: %+v", web)
	}
	table := p.mustCgdev("status")
	if !strings.Contains(table, "docs") || !strings.Contains(table, "disabled") {
		t.Errorf("status table:\n%s", table)
	}
	out = p.mustCgdev("stop")
	if !strings.Contains(out, "db SIGINT→1") {
		t.Errorf("stop does not send db its shutdown.signal (2):\n%s", out)
	}
	p.assertNothingLeft()

	p.mustCgdev("start", "docs") // a disabled process starts when named
	if st := p.statusJSON(); st["docs"].State != "running" || st["db"].State == "running" {
		t.Errorf("start docs: %+v", st)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft()
}

// TestProcessComposeRefusals: keys whose meaning cgdev cannot keep are
// refused, naming file, line and key, and nothing starts; keys it does not
// act on yet are warned about.
func TestProcessComposeRefusals(t *testing.T) {
	for _, c := range []struct{ compose, want string }{
		{"processes:\n  a:\n    command: x\n    schedule: {cron: '* * * * *'}\n", "process-compose.yaml:4: processes.a.schedule: not supported by cgdev"},
		{"processes:\n  a:\n    command: x\n    replicas: 2\n", "process-compose.yaml:4: processes.a.replicas: not supported by cgdev"},
		{"extends: base.yaml\nprocesses:\n  a:\n    command: x\n", "process-compose.yaml:1: extends: not supported by cgdev"},
		{"processes:\n  a:\n    command: x\n    comand: y\n", "process-compose.yaml:4: processes.a.comand: unknown key (known here: "},
		{"processes:\n  a:\n    command: x\n  b:\n    command: y\n    depends_on:\n      a: {condition: process_healthy}\n", "processes.b.depends_on.a: process_healthy needs a readiness_probe on a"},
		{"processes:\n  a:\n    command: x\n    depends_on:\n      z: {condition: process_started}\n", `processes.a.depends_on.z: unknown process "z"`},
		{"processes:\n  a:\n    command: echo ${HOME^^}\n", "process-compose.yaml:3: ${HOME^^}: cgdev expands ${NAME}, ${NAME:-default} and ${NAME-default} only"},
		{"processes:\n  a:\n    command: x\n    ready_log_line: up\n    readiness_probe: {exec: {command: 'true'}}\n", "ready_log_line and readiness_probe cannot both be set"},
		{"processes:\n  a:\n    command: x\n    shutdown: {signal: 99}\n", `processes.a.shutdown.signal: "99" is not a whole number from 1 to 31`},
		{"processes:\n  a:\n    command: x\n    availability: {restart: sometimes}\n", `"sometimes" is not a restart policy`},
	} {
		p := newPCProject(t, c.compose, map[string]string{})
		code, _, stderr := p.cgdev("start")
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s\nstart: exit %d, want 1 and %q\n%s", c.compose, code, c.want, stderr)
		}
		if len(p.marked()) > 0 || p.groupExists() {
			t.Errorf("%s: a refused start left something running", c.compose)
		}
	}

	// What was warned about as not supported is now honoured: migrate
	// becomes a oneshot that app waits for, and shutdown.command runs
	// before app's stop signal.
	p := newPCProject(t, `processes:
  migrate:
    command: "true"
  app:
    command: sleep 1000
    depends_on:
      migrate: {condition: process_completed_successfully}
    shutdown: {command: "echo bye", timeout_seconds: 1}
`, map[string]string{})
	code, out, stderr := p.cgdev("start")
	if code != 0 || strings.Contains(stderr, "not supported") || !strings.Contains(out, "migrate … completed (exit 0)") {
		t.Errorf("start: exit %d\n%s%s", code, out, stderr)
	}
	if st := p.statusJSON(); st["migrate"].State != "completed" || !st["app"].Up() {
		t.Errorf("status: %+v", st)
	}
	if out := p.mustCgdev("stop"); !strings.Contains(out, `stop_command of app: "echo bye" exited 0`) {
		t.Errorf("stop did not run shutdown.command:\n%s", out)
	}
	p.assertNothingLeft()
}
