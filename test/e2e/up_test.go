package e2e_test

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
)

// TestUpStopsOnlyWhatItStarted (issue 9): `up` with no names, on Ctrl-C,
// stops the services it started and leaves running those that ran before
// it (it once stopped every service of the project).
func TestUpStopsOnlyWhatItStarted(t *testing.T) {
	p := newSvcProject(t, `services:
  db:
    command: 'echo $$ >> p/db; exec sleep 1000'
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
`)
	p.mustCgdev("start", "db")
	db := p.waitPids("db", 1)[0]
	cmd := exec.Command(testenv.Binary(t), "up")
	cmd.Dir = p.dir
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	if !testenv.Eventually(30*time.Second, func() bool { return strings.Contains(out.String(), "following the logs") }) {
		t.Fatalf("up did not start following:\n%s", out.String())
	}
	web := p.waitPids("web", 1)[0]
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("up: %v\n%s", err, out.String())
	}
	if p.ours(web) {
		t.Errorf("web (PID %d), started by up, survived its Ctrl-C:\n%s", web, out.String())
	}
	if !p.ours(db) {
		t.Errorf("db (PID %d), running before up, was stopped by its Ctrl-C:\n%s", db, out.String())
	}
	if st := p.statusJSON()["db"]; st.State != "running" {
		t.Errorf("db after up: %+v", st)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("db", "web")
}
