package e2e_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// drivers are the --driver values every stop test runs with.
var drivers = []string{"direct", "systemd", "fallback"}

// forEachDriver runs test once per driver, each in a subtest named after
// it, with a project whose every cgdev call uses that driver
// ($CGDEV_DRIVER). The systemd subtest skips when no user manager answers,
// and fails if a scope of the project outlives it.
func forEachDriver(t *testing.T, config string, test func(t *testing.T, p *svcProject)) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			if driver == "systemd" {
				needUserManager(t)
			}
			t.Setenv(launcher.DriverEnv, driver)
			p := newSvcProject(t, config)
			if driver == "systemd" {
				// The scopes' unit names carry the project id, escaped.
				part := strings.TrimSuffix(cgroup.UnitName(p.id, "x"), "x.scope")
				t.Cleanup(func() { assertNoScopes(t, part) })
			}
			test(t, p)
		})
	}
}

// TestStopContinuesStoppedProcesses: a stopped process (SIGSTOP, Ctrl-Z)
// keeps the stop signal pending until it is continued. Phase 1 sends SIGCONT
// after the stop signal, so the service exits on it at once instead of
// sitting out its 5 s grace and being killed.
func TestStopContinuesStoppedProcesses(t *testing.T) {
	forEachDriver(t, `grace: 5s
services:
  paused:
    command: 'echo $$ >> p/paused; exec sleep 1000'
`, func(t *testing.T, p *svcProject) {
		p.mustCgdev("start")
		pid := p.waitPids("paused", 1)[0]
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		if !testenv.Eventually(5*time.Second, func() bool { return procState(pid) == 'T' }) {
			t.Fatalf("PID %d did not stop (state %c)", pid, procState(pid))
		}
		out := p.mustCgdev("stop")
		if !strings.Contains(out, "[2/5] wait: exited: paused in ") {
			t.Errorf("the stopped service was not ended by its stop signal:\n%s", out)
		}
		p.assertNothingLeft("paused")
	})
}
