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

// TestStartDropsDeadMainProcess: a service whose group runs on after its
// main process exited (a daemonizing command) is "already running" to the
// next start, which must not write the dead main PID to .pids/ again: by
// then it may name any process, and scripts signal what .pids/ lists.
func TestStartDropsDeadMainProcess(t *testing.T) {
	p := newSvcProject(t, `services:
  daemon:
    command: 'echo $$ >> p/main; (sh -c "echo \$\$ >> p/daemon; exec sleep 1000" &) ; exit 0'
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
`)
	p.mustCgdev("start")
	main := p.waitPids("main", 1)[0]
	p.waitPids("daemon", 1)
	web := p.waitPids("web", 1)[0]
	if !testenv.Eventually(5*time.Second, func() bool { return !testenv.Alive(main) }) {
		t.Fatalf("the daemon's main process %d did not exit", main)
	}
	out := p.mustCgdev("start")
	if !strings.Contains(out, "already running") {
		t.Errorf("second start:\n%s", out)
	}
	pids, err := os.ReadFile(filepath.Join(p.dir, ".pids", "services.pids"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains("\n"+string(pids), "\n"+strconv.Itoa(main)+"\n") {
		t.Errorf(".pids/services.pids lists %d, the daemon's exited main process:\n%s", main, pids)
	}
	if !strings.Contains(string(pids), strconv.Itoa(web)+"\n") {
		t.Errorf(".pids/services.pids lacks web's PID %d:\n%s", web, pids)
	}
	if st := p.statusJSON()["daemon"]; st.State != "running" {
		t.Errorf("status of daemon after the second start: %+v", st)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("daemon", "web")
}
