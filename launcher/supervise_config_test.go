package launcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSupervisionKeys(t *testing.T) {
	path := writeConfig(t, "cgdev.yaml", `
services:
  api:
    command: node server.js
    watch: {paths: [src], ignore: ["*.tmp"], debounce: 100ms}
    dir: app
    restart: on-failure
    restart_delay: {initial: 200ms, max: 5s}
    max_restarts: 3
    restart_window: 30s
    healthcheck: {http: "http://127.0.0.1:3000/health", interval: 2s, timeout: 1s, retries: 2}
  worker:
    command: ./worker
    restart: always
    restart_delay: 45s
  plain:
    command: ./plain
`)
	os.MkdirAll(filepath.Join(filepath.Dir(path), "app", "src"), 0o755)
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	api, worker, plain := c.Service("api"), c.Service("worker"), c.Service("plain")
	want := Restart{Policy: RestartOnFailure, Initial: 200 * time.Millisecond, Max: 5 * time.Second, MaxRestarts: 3, Window: 30 * time.Second}
	if api.Restart != want {
		t.Errorf("api restart %+v, want %+v", api.Restart, want)
	}
	if h := api.Health; h == nil || h.Check.Kind != "http" || h.Interval != 2*time.Second || h.Check.Timeout != time.Second || h.Retries != 2 {
		t.Errorf("api healthcheck %+v", api.Health)
	}
	if w := api.Watch; w == nil || len(w.Paths) != 1 || w.Paths[0] != filepath.Join(c.Dir, "app", "src") || w.Ignore[0] != "*.tmp" || w.Debounce != 100*time.Millisecond {
		t.Errorf("api watch %+v (the path is relative to dir:, given after watch:)", api.Watch)
	}
	if worker.Restart.Initial != 45*time.Second || worker.Restart.Max != 45*time.Second || worker.Restart.Policy != RestartAlways {
		t.Errorf("worker: a scalar restart_delay is the initial delay, and raises the max to it: %+v", worker.Restart)
	}
	if plain.Restart != defaultRestart || plain.Supervised() || !api.Supervised() || !worker.Supervised() {
		t.Errorf("plain %+v supervised=%v", plain.Restart, plain.Supervised())
	}
}

func TestSupervisionKeyErrors(t *testing.T) {
	for conf, want := range map[string]string{
		"restart: sometimes":                        `cgdev.yaml:4: services.web.restart: "sometimes" is not a restart policy`,
		"restart: unless-stopped":                   `services.web.restart: "unless-stopped" is compose's`,
		"restart_delay: {initial: 2s, max: 1s}":     "services.web.restart_delay: max 1s is less than initial 2s",
		"restart_delay: {first: 2s}":                "services.web.restart_delay.first: unknown key",
		"max_restarts: -1":                          `services.web.max_restarts: "-1" is not a whole number from 0`,
		"restart_window: 0s":                        "services.web.restart_window: must be more than 0",
		"healthcheck: {interval: 1s}":               "services.web.healthcheck: give one check",
		"healthcheck: {tcp: nowhere}":               "services.web.healthcheck.tcp:",
		"healthcheck: {exec: 'true', retries: 0}":   `services.web.healthcheck.retries: "0" is not a whole number from 1`,
		"watch: {paths: [missing]}":                 "cgdev.yaml:4: services.web.watch.paths[0]: ",
		"watch: {ignore: [x]}":                      "services.web.watch.paths: give the files",
		"watch: {paths: [.], ignore: ['[']}":        `services.web.watch.ignore[0]: "[" is not a file name pattern`,
		"healthcheck: {exec: 'true', every: 1s}":    "services.web.healthcheck.every: unknown key",
		"restart: always\n    restart_delay: later": `services.web.restart_delay: "later" is not a duration`,
	} {
		path := writeConfig(t, "cgdev.yaml", "services:\n  web:\n    command: run\n    "+conf+"\n")
		_, err := loadConfig(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", conf, err, want)
		}
	}
}

func TestRestartKeysWithoutPolicyWarn(t *testing.T) {
	path := writeConfig(t, "cgdev.yaml", "services:\n  web:\n    command: run\n    max_restarts: 3\n")
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "cgdev.yaml:4: services.web.max_restarts: has no effect without restart:") {
		t.Errorf("warnings %q", c.Warnings)
	}
}
