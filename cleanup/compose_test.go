package cleanup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cleanup"
)

// fakeTools puts scripts named after the keys of tools, with those bodies,
// in a directory that becomes the whole $PATH, and returns the directory.
// Each script appends its arguments to calls.log there.
func fakeTools(t *testing.T, tools map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range tools {
		script := "#!/bin/sh\necho \"" + name + " $*\" >> " + filepath.Join(dir, "calls.log") + "\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	return dir
}

// dockerWithoutPlugin answers `docker version` like an engine that runs,
// and `docker compose` like Debian's docker.io, which has no Compose plugin.
const dockerWithoutPlugin = `case "$1" in
version) echo 20.10.24 ;;
compose) echo "docker: 'compose' is not a docker command." >&2; exit 1 ;;
esac`

// dockerWithPlugin has the Compose v2 plugin.
const dockerWithPlugin = `case "$1" in
version) echo 24.0.7 ;;
compose) [ "$2" = version ] && echo "Docker Compose version v2.21.0"; exit 0 ;;
esac`

func stopContainers(t *testing.T, composeFile string) (string, error) {
	t.Helper()
	var out strings.Builder
	_, err := cleanup.Stop(context.Background(), nil, cleanup.StopOptions{
		Project: "compose-test", Dir: t.TempDir(), Containers: true, ComposeFile: composeFile,
		Signal: func(string) syscall.Signal { return syscall.SIGTERM },
		Grace:  func(string) time.Duration { return 0 },
		Out:    &out,
	})
	return out.String(), err
}

func calls(t *testing.T, dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "calls.log"))
	return string(b)
}

// TestComposeDownV1: with Debian's docker.io (no `docker compose`) and the
// docker-compose v1 command, phase 4 runs `docker-compose -f FILE down`.
func TestComposeDownV1(t *testing.T) {
	dir := fakeTools(t, map[string]string{"docker": dockerWithoutPlugin, "docker-compose": "exit 0"})
	out, err := stopContainers(t, "/srv/app/compose.yml")
	if err != nil || !strings.Contains(out, "[4/5] containers: docker-compose -f /srv/app/compose.yml down") {
		t.Errorf("stop --containers: %v\n%s", err, out)
	}
	if log := calls(t, dir); !strings.Contains(log, "docker-compose -f /srv/app/compose.yml down") {
		t.Errorf("docker-compose was not asked to bring the file down; calls:\n%s", log)
	}
}

// TestComposeDownV2Preferred: where the v2 plugin answers, it is used even
// when a docker-compose is installed too.
func TestComposeDownV2Preferred(t *testing.T) {
	dir := fakeTools(t, map[string]string{"docker": dockerWithPlugin, "docker-compose": "exit 0"})
	out, err := stopContainers(t, "/srv/app/compose.yml")
	if err != nil || !strings.Contains(out, "[4/5] containers: docker compose -f /srv/app/compose.yml down") {
		t.Errorf("stop --containers: %v\n%s", err, out)
	}
	log := calls(t, dir)
	if !strings.Contains(log, "docker compose -f /srv/app/compose.yml down") || strings.Contains(log, "docker-compose ") {
		t.Errorf("want only the plugin's down; calls:\n%s", log)
	}
}

// TestComposeDownNeither: without any Compose, phase 4 says so plainly.
func TestComposeDownNeither(t *testing.T) {
	fakeTools(t, map[string]string{"docker": dockerWithoutPlugin})
	out, err := stopContainers(t, "/srv/app/compose.yml")
	if err != nil || !strings.Contains(out, "[4/5] containers: SKIPPED, neither `docker compose` (the Compose v2 plugin) nor `docker-compose` is installed; compose.file /srv/app/compose.yml not brought down") {
		t.Errorf("stop --containers: %v\n%s", err, out)
	}
}

// TestComposeDownGivesUp: a down that hangs (a hung engine) is abandoned
// after the timeout, the line says so, and the hung command is gone.
func TestComposeDownGivesUp(t *testing.T) {
	dir := fakeTools(t, map[string]string{"docker": `[ "$2" = -f ] && { echo $$ > "${0%/*}/hung.pid"; exec /bin/sleep 1000; }
` + dockerWithPlugin})
	var out strings.Builder
	start := time.Now()
	err := cleanup.ComposeDown(context.Background(), "/srv/app/compose.yml", t.TempDir(), time.Second, &out)
	took := time.Since(start)
	if err == nil || !strings.Contains(out.String(), "GAVE UP after 1s: docker compose -f /srv/app/compose.yml down did not finish") {
		t.Errorf("ComposeDown: %v after %s\n%s", err, took, out.String())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "hung.pid"))
	var pid int
	if _, e := fmt.Sscan(strings.TrimSpace(string(b)), &pid); e == nil && syscall.Kill(pid, 0) == nil {
		t.Errorf("the hung down (PID %d) still runs", pid)
	}
}
