package e2e_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
)

// newFilesProject is a project whose files are files (a Procfile, a
// process-compose.yaml, ...; in subdirectories too) instead of a cgdev.yaml.
func newFilesProject(t *testing.T, files map[string]string) *svcProject {
	t.Helper()
	p := newSvcProject(t, "")
	os.Remove(filepath.Join(p.dir, "cgdev.yaml"))
	for name, content := range files {
		path := filepath.Join(p.dir, name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// newProcfileProject is a project with a Procfile and the given other files.
func newProcfileProject(t *testing.T, procfile string, files map[string]string) *svcProject {
	t.Helper()
	files["Procfile"] = procfile
	return newFilesProject(t, files)
}

// logLine waits for a line starting with prefix in service's log and returns it.
func (p *svcProject) logLine(service, prefix string) string {
	p.t.Helper()
	var line string
	p.waitFor(func() bool {
		b, _ := os.ReadFile(filepath.Join(p.dir, ".cgdev", "logs", service+".log"))
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, prefix) {
				line = l
				return true
			}
		}
		return false
	}, "a line starting with %q in %s's log", prefix, service)
	return line
}

// TestProcfileEnvAndPort: a Procfile project gets the project's .env and a
// PORT per process type, foreman's way (5000, 5100, ...), and a simple
// command is exec'd, so the recorded main PID is the program, not a shell.
func TestProcfileEnvAndPort(t *testing.T) {
	p := newProcfileProject(t, `web: sh -c 'echo "web PORT=$PORT GREETING=$GREETING"; exec sleep 1000'
worker: sh -c 'echo "worker PORT=$PORT GREETING=$GREETING"; exec sleep 1000'
clock: sleep $PORT
`, map[string]string{".env": "GREETING='hello from .env'\nPORT=9999\n", "other.env": "GREETING=other\n"})
	p.mustCgdev("start")
	if got := p.logLine("web", "web PORT="); got != "web PORT=9999 GREETING=hello from .env" {
		t.Errorf("web: %q (PORT from .env is the base, GREETING from .env)", got)
	}
	if got := p.logLine("worker", "worker PORT="); got != "worker PORT=10099 GREETING=hello from .env" {
		t.Errorf("worker: %q", got)
	}
	st := p.statusJSON()
	clock := st["clock"].PID
	// The main PID is the program: its command line becomes "sleep 10199"
	// (read empty until the kernel has set up the exec'd program), never
	// a shell's.
	testenv.WaitCmdline(t, clock, "sleep 10199")
	if pids, _ := os.ReadFile(filepath.Join(p.dir, ".pids", "services.pids.services")); !strings.Contains(string(pids), "clock:"+strconv.Itoa(clock)) {
		t.Errorf(".pids/services.pids.services does not record clock's program PID %d:\n%s", clock, pids)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft()

	// -p sets the base port; -e replaces .env, as foreman's do.
	p.mustCgdev("start", "-e", "other.env", "-p", "7000", "web", "worker")
	if got := p.logLine("web", "web PORT=7000"); got != "web PORT=7000 GREETING=other" {
		t.Errorf("web with -e other.env -p 7000: %q", got)
	}
	if got := p.logLine("worker", "worker PORT=7100"); got != "worker PORT=7100 GREETING=other" {
		t.Errorf("worker with -e other.env -p 7000: %q", got)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft()
}

// TestProcfileNamedAndRefusals: -f Procfile.dev is a Procfile; a bad -e
// file or -p is refused naming what is wrong, and nothing starts; a bad
// line of the default .env is skipped with a warning.
func TestProcfileNamedAndRefusals(t *testing.T) {
	p := newProcfileProject(t, "web: sleep 1000\n", map[string]string{
		"Procfile.dev": "dev: sh -c 'echo dev PORT=$PORT; exec sleep 1000'\n",
		".env":         "PORT=5000\nthis is wrong\n",
	})
	// A line of the default .env that is not KEY=VALUE is skipped with a
	// warning (as foreman skips it), so that stop and status still work;
	// named with -e, the file is refused.
	code, _, stderr := p.cgdev("status")
	if code != 3 || !strings.Contains(stderr, "cgdev: warning: .env:2: \"this is wrong\" is not KEY=VALUE: skipped") {
		t.Errorf("a bad line in .env: status exit %d\n%s", code, stderr)
	}
	code, _, stderr = p.cgdev("start", "-e", ".env")
	if code != 1 || !strings.Contains(stderr, ".env:2: \"this is wrong\" is not KEY=VALUE") || strings.Contains(stderr, "skipped") {
		t.Errorf("a bad -e file: exit %d\n%s", code, stderr)
	}
	code, _, stderr = p.cgdev("start", "-e", "missing.env")
	if code != 1 || !strings.Contains(stderr, "missing.env") {
		t.Errorf("a missing -e file: exit %d\n%s", code, stderr)
	}
	os.WriteFile(filepath.Join(p.dir, ".env"), []byte("PORT=65500\n"), 0o644)
	code, _, stderr = p.cgdev("start", "-f", "Procfile.dev", "-p", "70000")
	if code != 2 || !strings.Contains(stderr, "-p/--port 70000") {
		t.Errorf("-p 70000: exit %d\n%s", code, stderr)
	}
	if len(p.marked()) > 0 || p.groupExists() {
		t.Fatal("a refused start left something running")
	}
	p.mustCgdev("-f", "Procfile.dev", "start")
	if got := p.logLine("dev", "dev PORT="); got != "dev PORT=65500" {
		t.Errorf("Procfile.dev's first type: %q", got)
	}
	p.mustCgdev("-f", "Procfile.dev", "stop")
	p.assertNothingLeft()
}

// waitFor waits (10 s at most) until cond holds, or fails the test saying what it waited for.
func (p *svcProject) waitFor(cond func() bool, format string, a ...any) {
	p.t.Helper()
	if !testenv.Eventually(10*time.Second, cond) {
		p.t.Fatalf("waited 10s for "+format, a...)
	}
}
