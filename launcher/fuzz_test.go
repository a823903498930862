package launcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fuzz targets of the project file parsers. `make fuzz` runs each for
// $FUZZTIME; `go test` runs their seeds (f.Add and testdata/fuzz) as tests.
// Each checks that no input panics or hangs the parser and what must hold
// of whatever it accepts.

// checkServices checks what every loaded service must satisfy, whatever
// the file: a valid name, a command, environment strings exec can pass.
func checkServices(t *testing.T, c *Config) {
	t.Helper()
	for _, s := range c.Services {
		if checkServiceName(s.Name) != nil || strings.TrimSpace(s.Command) == "" || checkArg(s.Command) != nil {
			t.Fatalf("accepted service %q with command %q", s.Name, s.Command)
		}
		for _, e := range s.Env {
			name, _, ok := strings.Cut(e, "=")
			if !ok || !envName.MatchString(name) || checkArg(e) != nil {
				t.Fatalf("service %s: accepted environment string %.80q", s.Name, e)
			}
		}
		if s.StopSignal < 1 || s.StopSignal > 64 || s.Grace < 0 {
			t.Fatalf("service %s: signal %d, grace %s", s.Name, s.StopSignal, s.Grace)
		}
		for _, p := range s.Ports {
			if p < 1 || p > 65535 {
				t.Fatalf("service %s: port %d", s.Name, p)
			}
		}
	}
}

func FuzzConfigYAML(f *testing.F) {
	for _, s := range []string{
		"services:\n  web:\n    command: run\n",
		"driver: direct\ngrace: 5s\norphans:\n  patterns: [\"x\"]\ncompose:\n  file: dc.yml\nservices:\n  db:\n    command: postgres\n    env: {A: \"1\"}\n    ready: {tcp: \"127.0.0.1:5433\", timeout: 10s}\n    stop_signal: INT\n    memory_max: 512M\n    cpu_quota: 50%\n  api:\n    command: node\n    depends_on: [db]\n    env: [\"A=1\"]\n    ready: {log: \"^up\"}\n",
		"x-d: &d\n  grace: 1s\nservices:\n  a:\n    <<: *d\n    command: run\n",
		"x-0: &a0 {grace: 1s}\nx-1: &a1 {<<: [*a0, *a0, *a0]}\nx-2: &a2 {<<: [*a1, *a1, *a1]}\nservices:\n  a:\n    <<: *a2\n    command: run\n",
		"x: &a {<<: *a}\nservices:\n  a: {command: run}\n",
		"services:\n  a: {command: run}\n---\nservices:\n  b: {command: run}\n",
		"services:\n  a:\n    command: \"run\\0x\"\n",
		"services:\n  a:\n    command: x\n    depends_on: [b]\n  b:\n    command: y\n    depends_on: [a]\n",
		"services:\n  a:\n    command: x\n    env_file: .env\n",
		"services:\n  a:\n    command: x\n    ports: [3000, 3001]\n    ready: {http: \"http://localhost:3000/\"}\n  b:\n    command: y\n    ports: 8080\n  c:\n    command: z\n    ports: []\n    ready: {tcp: \"[::1]:9\"}\n",
		"services:\n  a:\n    command: x\n    dir: sub\n    memory_swap_max: 0\n    tasks_max: infinity\n    cpu_weight: 100\n    io_weight: 100\n    memory_high: 1G\n",
		"services:\n  a:\n    command: x\n    restart: on-failure\n    restart_delay: {initial: 1s, max: 9s}\n    max_restarts: 3\n    restart_window: 1m\n    healthcheck: {log: \"^ok\", interval: 1s, retries: 2}\n    watch: {paths: [sub], ignore: [\"*.tmp\"]}\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	os.WriteFile(filepath.Join(dir, ".env"), []byte("A=1\nexport B='2'\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	f.Fuzz(func(t *testing.T, s string) {
		c := &loader{Config: &Config{File: "cgdev.yaml", Dir: dir, Grace: defaultGrace}}
		if err := c.parseYAML([]byte(s)); err != nil {
			return
		}
		c.resolveGraces()
		c.resolvePorts()
		if c.checkDependencies() != nil {
			return
		}
		checkServices(t, c.Config)
		if _, err := c.Closure(nil); err != nil {
			t.Fatalf("closure of a checked config: %v", err)
		}
	})
}

func FuzzProcfile(f *testing.F) {
	for _, s := range []string{"web: python3 -m http.server\nworker: sh -c 'x'\n", "# c\n\nweb: a\r\n", "web: ok\nbroken\n", "a: b\x00c\n", "a:\n", ":x\n", "a: x\na: y\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := &loader{Config: &Config{File: "Procfile", Dir: "/nonexistent", Grace: defaultGrace}}
		if err := c.parseProcfile([]byte(s)); err != nil {
			return
		}
		c.resolveGraces()
		checkServices(t, c.Config)
	})
}

func FuzzDotenv(f *testing.F) {
	for _, s := range []string{"# comment\nexport A=1\nB='from file'\n\nC=\"q\"\n", "A=1\nthis is wrong\n", "A=\"\n", "A='x\"\n", "A=x\x00y\n", "=x\n", "A==\n", "export  A=1\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		env, err := parseDotenv(".env", []byte(s))
		if err != nil {
			if !strings.HasPrefix(err.Error(), ".env:") {
				t.Fatalf("error without the file: %v", err)
			}
			return
		}
		for _, e := range env {
			name, _, ok := strings.Cut(e, "=")
			if !ok || !envName.MatchString(name) || checkArg(e) != nil {
				t.Fatalf("accepted %.80q", e)
			}
		}
	})
}

func FuzzDuration(f *testing.F) {
	for _, s := range []string{"3s", "500ms", "1m30s", "0", "-1s", "3 seconds", "9999999999h", "1.5h", ".5s", "1e3s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("parseDuration(%q) = %s", s, d)
		}
	})
}

func FuzzSignal(f *testing.F) {
	for _, s := range []string{"SIGTERM", "TERM", "term", "2", "0", "65", "-1", "SIGFOO", "sigrtmin", "+9", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := parseSignal(s)
		if err == nil && (sig < 1 || sig > 64) {
			t.Fatalf("parseSignal(%q) = %d", s, sig)
		}
	})
}

func FuzzProcessCompose(f *testing.F) {
	for _, s := range []string{
		"processes:\n  a:\n    command: run\n",
		"version: \"0.5\"\nenvironment: [\"A=1\"]\nshell: {shell_command: bash, shell_argument: -c}\nprocesses:\n  db:\n    command: \"echo $$A ${B:-x}\"\n    readiness_probe:\n      http_get: {host: 127.0.0.1, port: 80, path: /}\n      period_seconds: 2\n    availability: {restart: always, backoff_seconds: 2, max_restarts: 3}\n    shutdown: {signal: 2, timeout_seconds: 4, command: stop}\n  api:\n    entrypoint: [node, app.js]\n    depends_on:\n      db: {condition: process_healthy}\n    ready_log_line: up\n    liveness_probe: {exec: {command: 'true'}}\n    disabled: false\n    is_daemon: true\n    namespace: [a, b]\n",
		"processes:\n  a:\n    command: ${X^^}\n",
		"processes:\n  a:\n    command: x\n    depends_on:\n      a: {condition: process_started}\n",
		"disable_env_expansion: true\nprocesses:\n  a:\n    command: $$X\n    env_file: .env\n    x-note: hi\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	os.WriteFile(filepath.Join(dir, ".env"), []byte("A=1\n"), 0o644)
	f.Fuzz(func(t *testing.T, s string) {
		c := &loader{Config: &Config{File: "process-compose.yaml", Dir: dir, Grace: defaultGrace}}
		if err := c.parseProcessCompose([]byte(s)); err != nil {
			return
		}
		if c.checkDependencies() != nil {
			return
		}
		checkServices(t, c.Config)
		for _, svc := range c.Services {
			if len(svc.Shell) < 2 {
				t.Fatalf("service %s: shell %q", svc.Name, svc.Shell)
			}
		}
	})
}

func FuzzExpandVars(f *testing.F) {
	for _, s := range []string{"$A ${B} ${C:-d} ${D-e} $$F", "${", "$", "${A^^}", "a\n$$\n${#x}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := expandVars("f", s, func(string) (string, bool) { return "", false })
		if err == nil && !strings.Contains(s, "$") && out != s {
			t.Fatalf("text without $ changed: %q -> %q", s, out)
		}
	})
}
