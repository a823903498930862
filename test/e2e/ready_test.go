package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
)

// TestExecCheckLeavesNothing: an exec readiness check that passes while a
// process it started runs on leaves no process behind, and runs without the
// service's markers (what it starts is not the service's).
func TestExecCheckLeavesNothing(t *testing.T) {
	p := newSvcProject(t, `services:
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
    ready: {exec: 'sleep 1000 & echo $! >> p/check; echo "${CGDEV_PROJECT:-none}" > p/checkenv; true'}
`)
	p.mustCgdev("start")
	check := p.waitPids("check", 1)[0]
	testenv.KillOnCleanup(t, check)
	if !testenv.Eventually(5*time.Second, func() bool { return !testenv.Alive(check) }) {
		m := proc.ReadMarker(check)
		t.Errorf("the check's background process %d survived it (markers %+v): %s", check, m, proc.Cmdline(check))
	}
	b, _ := os.ReadFile(filepath.Join(p.dir, "p", "checkenv"))
	if env := strings.TrimSpace(string(b)); env != "none" {
		t.Errorf("the check ran with CGDEV_PROJECT=%q", env)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("web")
}
