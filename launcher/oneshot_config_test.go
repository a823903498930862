package launcher

import (
	"strings"
	"testing"
	"time"
)

// TestDependsOnConditions: depends_on as a list (each ready) or, as in
// compose, a mapping of conditions, compose's names included; type,
// stop_command and stop_timeout read with their defaults.
func TestDependsOnConditions(t *testing.T) {
	c, err := loadConfig(writeConfig(t, "cgdev.yaml", `services:
  db:
    command: postgres
    stop_command: pg_ctl stop -m fast
  migrate:
    type: oneshot
    command: ./migrate
    depends_on: [db]
  api:
    command: ./api
    stop_command: docker stop api
    stop_timeout: 5s
    depends_on:
      db: {condition: started}
      migrate: {condition: service_completed_successfully}
`))
	if err != nil {
		t.Fatal(err)
	}
	db, migrate, api := c.Service("db"), c.Service("migrate"), c.Service("api")
	if migrate.Condition("db") != CondReady || api.Condition("db") != CondStarted || api.Condition("migrate") != CondCompleted {
		t.Errorf("conditions: migrate %v, api %v", migrate.DependsOnCondition, api.DependsOnCondition)
	}
	if !migrate.Oneshot() || db.Oneshot() || migrate.Supervised() {
		t.Errorf("types: migrate %q, db %q", migrate.Type, db.Type)
	}
	if db.StopCommand != "pg_ctl stop -m fast" || db.StopTimeout != defaultStopTimeout || api.StopTimeout != 5*time.Second {
		t.Errorf("stop commands: db %q %s, api %q %s", db.StopCommand, db.StopTimeout, api.StopCommand, api.StopTimeout)
	}
}

// TestOneshotRefusals: what a oneshot or a condition cannot mean is
// refused at its line and field.
func TestOneshotRefusals(t *testing.T) {
	for _, c := range []struct{ config, want string }{
		{"  a: {command: x}\n  b: {command: y, depends_on: {a: {condition: completed}}}",
			"cgdev.yaml:3: services.b.depends_on.a: condition completed needs a to be type: oneshot"},
		{"  a: {command: x}\n  b: {command: y, depends_on: {a: {condition: healthy}}}",
			`cgdev.yaml:3: services.b.depends_on.a.condition: "healthy" is not a condition`},
		{"  a: {command: x, type: once}", `services.a.type: "once" is not a service type`},
		{"  a: {command: x, type: oneshot, ready: {tcp: '127.0.0.1:1'}}", "services.a.ready: not for type: oneshot"},
		{"  a: {command: x, type: oneshot, restart: always}", "services.a.restart: not for type: oneshot"},
		{"  a: {command: x, type: oneshot, healthcheck: {exec: 'true'}}", "services.a.healthcheck: not for type: oneshot"},
		{"  a: {command: x, stop_timeout: 0s}", "services.a.stop_timeout: must be more than 0"},
		{"  a: {command: x, timeout: 1m}", "cgdev.yaml:2: services.a.timeout: only for type: oneshot"},
		{"  a: {command: x, type: oneshot, timeout: 0s}", "services.a.timeout: must be more than 0"},
	} {
		_, err := loadConfig(writeConfig(t, "cgdev.yaml", "services:\n"+c.config+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.config, err, c.want)
		}
	}
	if _, err := loadConfig(writeConfig(t, "cgdev.yaml", "services:\n  a: {command: x, type: oneshot, restart: on-failure}\n")); err != nil {
		t.Errorf("a oneshot with restart: on-failure: %v", err)
	}
	if c, err := loadConfig(writeConfig(t, "cgdev.yaml", "services:\n  a: {command: x, type: oneshot, timeout: 90s}\n")); err != nil || c.Service("a").Timeout != 90*time.Second {
		t.Errorf("a oneshot with timeout: 90s: %v", err)
	}
}

// TestProcessComposeConditions: process-compose's conditions map to
// cgdev's; a process waited for to complete becomes a oneshot;
// process_completed is warned about (exit 0 is required);
// shutdown.command is the stop_command.
func TestProcessComposeConditions(t *testing.T) {
	c, err := loadConfig(writeConfig(t, "process-compose.yaml", `processes:
  db:
    command: postgres
    shutdown: {command: pg_ctl stop}
  migrate:
    command: ./migrate
    depends_on: {db: {condition: process_started}}
  seed:
    command: ./seed
  api:
    command: ./api
    depends_on:
      migrate: {condition: process_completed_successfully}
      seed: {condition: process_completed}
      db: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	api := c.Service("api")
	for dep, want := range map[string]string{"migrate": CondCompleted, "seed": CondCompleted, "db": CondStarted} {
		if got := api.Condition(dep); got != want {
			t.Errorf("api on %s: %s, want %s", dep, got, want)
		}
	}
	if !c.Service("migrate").Oneshot() || !c.Service("seed").Oneshot() || c.Service("db").Oneshot() {
		t.Errorf("oneshots: migrate %q seed %q db %q", c.Service("migrate").Type, c.Service("seed").Type, c.Service("db").Type)
	}
	if c.Service("db").StopCommand != "pg_ctl stop" {
		t.Errorf("db stop_command %q", c.Service("db").StopCommand)
	}
	if w := strings.Join(c.Warnings, "\n"); !strings.Contains(w, "processes.api.depends_on.seed.condition: process_completed: cgdev starts this process only when seed exits 0") {
		t.Errorf("warnings: %s", w)
	}
}
