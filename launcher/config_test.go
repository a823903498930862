package launcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func writeConfig(t *testing.T, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfig(t *testing.T) {
	path := writeConfig(t, "cgdev.yaml", `
driver: direct
grace: 5s
orphans:
  patterns: ["my-tool", "other.*x"]
compose:
  file: docker-compose.yml
services:
  db:
    command: postgres -D data
    env: {PGPORT: "5433"}
    ready: {tcp: "127.0.0.1:5433", timeout: 10s}
    stop_signal: INT
    memory_max: 512M
    tasks_max: 100
    cpu_quota: 50%
  api:
    command: node server.js
    depends_on: [db]
    env: ["A=1", "B=x=y"]
    grace: 1s
    ready: {log: "^listening on"}
`)
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Driver != "direct" || c.Grace != 5*time.Second || len(c.Patterns) != 2 || c.Compose != filepath.Join(filepath.Dir(path), "docker-compose.yml") {
		t.Errorf("top level: %+v", c)
	}
	db, api := c.Service("db"), c.Service("api")
	if db.StopSignal != unix.SIGINT || db.Grace != 5*time.Second || db.Limits.String() != "MemoryMax=512M TasksMax=100 CPUQuota=50%" {
		t.Errorf("db: %+v", db)
	}
	if db.Ready.Kind != "tcp" || db.Ready.Timeout != 10*time.Second || strings.Join(db.Env, ",") != "PGPORT=5433" {
		t.Errorf("db ready/env: %+v %v", db.Ready, db.Env)
	}
	if api.Grace != time.Second || api.Ready.Timeout != defaultReadyTimeout || strings.Join(api.Env, ",") != "A=1,B=x=y" {
		t.Errorf("api: %+v", api)
	}
	order, _ := c.Closure([]string{"api"})
	if len(order) != 2 || order[0].Name != "db" || order[1].Name != "api" {
		t.Errorf("closure of api: %v", order)
	}
}

func TestLoadConfigDefaultsAndEnvFile(t *testing.T) {
	path := writeConfig(t, "cgdev.yaml", "services:\n  web:\n    command: run\n    env_file: .env\n    env: {B: from-env}\n")
	os.WriteFile(filepath.Join(filepath.Dir(path), ".env"), []byte("# comment\nexport A=1\nB='from file'\n\nC=\"q\"\n"), 0o644)
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Service("web").Env, ","); got != "A=1,B=from file,C=q,B=from-env" {
		t.Errorf("env = %s", got)
	}
	if len(c.Patterns) != len(DefaultOrphanPatterns) || c.Grace != defaultGrace {
		t.Errorf("defaults: %d patterns, grace %s", len(c.Patterns), c.Grace)
	}
}

func TestMergeKeys(t *testing.T) {
	path := writeConfig(t, "cgdev.yaml", `
x-defaults: &defaults
  grace: 1s
  stop_signal: INT
services:
  a:
    <<: *defaults
    command: run-a
  b:
    <<: *defaults
    command: run-b
    grace: 2s
`)
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := c.Service("a"), c.Service("b"); a.Grace != time.Second || b.Grace != 2*time.Second || b.StopSignal != unix.SIGINT {
		t.Errorf("a: %s, b: %s %v", a.Grace, b.Grace, b.StopSignal)
	}
}

func TestProcfile(t *testing.T) {
	path := writeConfig(t, "Procfile", "# dev\nweb: python3 -m http.server 8000\nworker:  sh -c 'while :; do sleep 1; done'\n")
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Names(), ",") != "web,worker" || c.Service("worker").Command != "sh -c 'while :; do sleep 1; done'" {
		t.Errorf("services: %v", c.Names())
	}
	if _, err := loadConfig(writeConfig(t, "Procfile", "web: ok\nbroken line\n")); err == nil || !strings.Contains(err.Error(), "Procfile:2:") {
		t.Errorf("bad Procfile: %v", err)
	}
}

// TestConfigErrors checks that each mistake is refused with the file, the
// line and the field.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", "services:\n  web:\n    command: x\n    comand: y\n", "cgdev.yaml:4: services.web.comand: unknown key"},
		{"unknown top key", "servics:\n  web: {command: x}\n", "cgdev.yaml:1: servics: unknown key"},
		{"bad duration", "services:\n  web:\n    command: x\n    grace: 3 seconds\n", `cgdev.yaml:4: services.web.grace: "3 seconds" is not a duration`},
		{"bad size", "services:\n  web:\n    command: x\n    memory_max: 12Q\n", `cgdev.yaml:4: services.web.memory_max: property MemoryMax: "12Q" is not a size`},
		{"bad tasks", "services:\n  web:\n    command: x\n    tasks_max: -3\n", "cgdev.yaml:4: services.web.tasks_max:"},
		{"bad cpu", "services:\n  web:\n    command: x\n    cpu_quota: 50\n", "cgdev.yaml:4: services.web.cpu_quota:"},
		{"cycle", "services:\n  a:\n    command: x\n    depends_on: [b]\n  b:\n    command: y\n    depends_on: [a]\n", "cgdev.yaml:2: services.a.depends_on: dependency cycle: a -> b -> a"},
		{"self cycle", "services:\n  a:\n    command: x\n    depends_on: a\n", "dependency cycle: a -> a"},
		{"unknown dependency", "services:\n  a:\n    command: x\n    depends_on: [nope]\n", `cgdev.yaml:2: services.a.depends_on: unknown service "nope"`},
		{"bad signal", "services:\n  a:\n    command: x\n    stop_signal: SIGFOO\n", "cgdev.yaml:4: services.a.stop_signal:"},
		{"two checks", "services:\n  a:\n    command: x\n    ready:\n      tcp: a:1\n      http: http://a/\n", "cgdev.yaml:6: services.a.ready.http: only one check"},
		{"bad tcp", "services:\n  a:\n    command: x\n    ready: {tcp: nohostport}\n", "cgdev.yaml:4: services.a.ready.tcp:"},
		{"bad regexp", "services:\n  a:\n    command: x\n    ready: {log: \"(\"}\n", "cgdev.yaml:4: services.a.ready.log:"},
		{"no command", "services:\n  a:\n    dir: .\n", "cgdev.yaml:2: services.a: no command"},
		{"bad name", "services:\n  a/b:\n    command: x\n", "cgdev.yaml:2: services.a/b: invalid service name"},
		{"reserved name", "services:\n  _supervisor:\n    command: x\n", "cgdev.yaml:2: services._supervisor: the name _supervisor is reserved"},
		{"bad driver", "driver: docker\nservices:\n  a: {command: x}\n", `cgdev.yaml:1: driver: "docker" is not a driver`},
		{"syntax", "services:\n  a:\n    command: x\n   bad: [\n", "cgdev.yaml:"},
		{"list for mapping", "services:\n  - a\n", "cgdev.yaml:2: services: expected a mapping"},
		{"bad env", "services:\n  a:\n    command: x\n    env: [\"NOEQUALS\"]\n", "cgdev.yaml:4: services.a.env[0]:"},
		{"missing env file", "services:\n  a:\n    command: x\n    env_file: nope.env\n", "cgdev.yaml:4: services.a.env_file:"},
		{"duplicate key", "services:\n  a:\n    command: x\n    command: y\n", "cgdev.yaml:4: services.a.command: given twice"},
		{"duplicate env", "services:\n  a:\n    command: x\n    env:\n      A: 1\n      A: 2\n", "cgdev.yaml:6: services.a.env.A: given twice"},
		{"port out of range", "services:\n  a:\n    command: x\n    ready: {tcp: \"127.0.0.1:70000\"}\n", "cgdev.yaml:4: services.a.ready.tcp:"},
		{"empty log pattern", "services:\n  a:\n    command: x\n    ready: {log: \"\"}\n", "cgdev.yaml:4: services.a.ready.log: an empty pattern"},
		{"bad pattern", "orphans:\n  patterns: [\"(\"]\nservices:\n  a: {command: x}\n", "cgdev.yaml:2: orphans.patterns[0]:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, "cgdev.yaml", tc.yaml)
			t.Chdir(filepath.Dir(path))
			_, err := loadConfig("cgdev.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestEnvFileErrorNamesItsLine(t *testing.T) {
	path := writeConfig(t, "cgdev.yaml", "services:\n  a:\n    command: x\n    env_file: .env\n")
	os.WriteFile(filepath.Join(filepath.Dir(path), ".env"), []byte("A=1\nthis is wrong\n"), 0o644)
	t.Chdir(filepath.Dir(path))
	_, err := loadConfig("cgdev.yaml")
	if err == nil || !strings.Contains(err.Error(), ".env:2:") {
		t.Errorf("error = %v, want .env:2:", err)
	}
}

func TestProjectID(t *testing.T) {
	a, b := ProjectID("/home/me/src/my app!"), ProjectID("/home/other/src/my app!")
	if a == b || !strings.HasPrefix(a, "my_app-") || len(a) != len("my_app-")+8 {
		t.Errorf("ids %q %q", a, b)
	}
	if ProjectID("/home/me/src/my app!") != a {
		t.Error("id not stable")
	}
}

// TestEveryLimitIsAConfigKey: each of the seven properties has its key.
func TestEveryLimitIsAConfigKey(t *testing.T) {
	path := writeConfig(t, "cgdev.yaml", `
services:
  web:
    command: run
    memory_max: 512M
    memory_high: 400M
    memory_swap_max: 0
    tasks_max: 200
    cpu_quota: 150%
    cpu_weight: 50
    io_weight: 300
`)
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "MemoryMax=512M MemoryHigh=400M MemorySwapMax=0 TasksMax=200 CPUQuota=150% CPUWeight=50 IOWeight=300"
	if got := c.Service("web").Limits.String(); got != want {
		t.Errorf("limits = %s; want %s", got, want)
	}
}

// TestComposeTimeout: compose.timeout is read as a duration; 0 is refused
// at its line and field (a phase 4 that gives up at once is a mistake).
func TestComposeTimeout(t *testing.T) {
	c, err := loadConfig(writeConfig(t, "cgdev.yaml", "compose: {file: dc.yml, timeout: 30s}\nservices:\n  a: {command: x}\n"))
	if err != nil || c.ComposeTimeout != 30*time.Second {
		t.Errorf("compose.timeout: 30s: %v, %+v", err, c)
	}
	_, err = loadConfig(writeConfig(t, "cgdev.yaml", "compose:\n  file: dc.yml\n  timeout: 0s\nservices:\n  a: {command: x}\n"))
	if err == nil || !strings.Contains(err.Error(), "cgdev.yaml:3: compose.timeout: must be more than 0") {
		t.Errorf("compose.timeout: 0s: %v", err)
	}
}
