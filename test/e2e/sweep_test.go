package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// subProject writes config as cgdev.yaml in p.dir/name: a second project
// nested in p's directory, under the same private cgroup base. At cleanup it
// is force-stopped and its marked processes are SIGKILLed.
func (p *svcProject) subProject(name, config string) *svcProject {
	p.t.Helper()
	dir := filepath.Join(p.dir, name)
	for _, d := range []string{dir, filepath.Join(dir, "p")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			p.t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgdev.yaml"), []byte(config), 0o644); err != nil {
		p.t.Fatal(err)
	}
	sub := &svcProject{t: p.t, host: p.host, dir: dir, id: launcher.ProjectID(dir)}
	p.t.Cleanup(func() {
		if len(sub.marked()) > 0 || sub.groupExists() {
			sub.cgdev("stop", "--force")
		}
		for _, pid := range sub.marked() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return sub
}

// startRun starts `cgdev run -- bash FILE` in dir, in the background, FILE
// holding script (so that cgdev run's own command line does not show it).
// The script's first process writes its PID to pidFile. At cleanup that
// process is SIGKILLed (ending the run) and the run is waited for.
func startRun(t *testing.T, dir, pidFile, script string) int {
	t.Helper()
	file := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(file, []byte("echo $$ > \"$1\"\n"+script+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Binary(t), "run", "--", "bash", file, pidFile)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	var pid int
	if !testenv.Eventually(10*time.Second, func() bool {
		b, _ := os.ReadFile(pidFile)
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		pid = n
		return err == nil
	}) {
		t.Fatalf("cgdev run never wrote %s", pidFile)
	}
	testenv.KillOnCleanup(t, pid)
	return pid
}

// TestStopSparesOtherCgdevProcesses: the pattern sweep takes only processes
// with no cgdev marker. A nested project's service and a `cgdev run`, both
// matching a default pattern with a working directory inside the project,
// are someone else's and survive `cgdev stop`.
func TestStopSparesOtherCgdevProcesses(t *testing.T) {
	p := newSvcProject(t, `services:
  web:
    command: 'echo $$ >> p/web; sleep 1000'
`)
	nested := p.subProject("sub", `services:
  tests:
    command: 'echo $$ >> p/tests; exec bash -c "exec -a vitest sleep 1000"'
`)
	p.mustCgdev("start")
	nested.mustCgdev("start")
	p.waitPids("web", 1)
	vitest := nested.waitPids("tests", 1)[0]
	run := startRun(t, p.dir, filepath.Join(p.dir, "p", "run"), `exec -a "esbuild --service" sleep 1000`)

	out := p.mustCgdev("stop")
	if !testenv.Alive(vitest) {
		t.Errorf("stop swept PID %d, the nested project's service:\n%s", vitest, out)
	}
	if !testenv.Alive(run) {
		t.Errorf("stop swept PID %d, a cgdev run's command:\n%s", run, out)
	}
	if !strings.Contains(out, "orphan sweep: no process") {
		t.Errorf("stop output:\n%s", out)
	}
	p.assertNothingLeft("web")
	nested.mustCgdev("stop")
	nested.assertNothingLeft("tests")
}

// startIn starts argv in dir, not part of any project, waits until it runs
// as argv (see testenv.WaitCmdline), and kills it when the test ends.
func startIn(t *testing.T, dir string, argv ...string) int {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	testenv.WaitCmdline(t, cmd.Process.Pid, strings.Join(argv, " "))
	return cmd.Process.Pid
}

// TestStopMatchesPatternsAgainstTheCommand: a pattern must match the command
// itself, not an argument: `tail -f vitest.config.ts` in the project survives
// the stop, while `node node_modules/.bin/vitest run` there is swept.
func TestStopMatchesPatternsAgainstTheCommand(t *testing.T) {
	p := newSvcProject(t, `services:
  web:
    command: 'echo $$ >> p/web; sleep 1000'
`)
	for file, content := range map[string]string{
		"vitest.config.ts":         "export default {}\n",
		"node_modules/.bin/vitest": "setInterval(() => {}, 1000)\n",
	} {
		path := filepath.Join(p.dir, file)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.mustCgdev("start")
	p.waitPids("web", 1)
	tail := startIn(t, p.dir, "tail", "-f", "vitest.config.ts")
	vitest := 0
	if node, err := exec.LookPath("node"); err == nil {
		vitest = startIn(t, p.dir, node, "node_modules/.bin/vitest", "run")
	} else {
		t.Log("node is not installed: only the bystander half of the test runs")
	}

	out := p.mustCgdev("stop")
	if !testenv.Alive(tail) {
		t.Errorf("stop swept PID %d, `tail -f vitest.config.ts`:\n%s", tail, out)
	}
	if vitest != 0 && !testenv.Eventually(5*time.Second, func() bool { return !testenv.Alive(vitest) }) {
		t.Errorf("`node node_modules/.bin/vitest run` (PID %d) survived:\n%s", vitest, out)
	}
	p.assertNothingLeft("web")
}

// TestStopFromInsideAService: `cgdev stop` run by a service's own command
// (a shell in the service) refuses before signalling anything, instead of
// killing the shell running it, and itself, half-way.
func TestStopFromInsideAService(t *testing.T) {
	for _, driver := range []string{"direct", "fallback"} {
		t.Run(driver, func(t *testing.T) {
			t.Setenv("CGDEV_TEST_BIN", testenv.Binary(t))
			p := newSvcProject(t, `driver: `+driver+`
services:
  shell:
    command: 'echo $$ >> p/shell; while [ ! -e p/go ]; do sleep 0.05; done; "$CGDEV_TEST_BIN" stop > p/out 2>&1; echo $? > p/code; sleep 1000'
  web:
    command: 'echo $$ >> p/web; sleep 1000'
`)
			p.mustCgdev("start")
			shell := p.waitPids("shell", 1)[0]
			web := p.waitPids("web", 1)[0]
			if err := os.WriteFile(filepath.Join(p.dir, "p", "go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			code := filepath.Join(p.dir, "p", "code")
			// The shell creates the file before it writes the status: wait for the line.
			testenv.Eventually(20*time.Second, func() bool { b, _ := os.ReadFile(code); return strings.HasSuffix(string(b), "\n") })
			b, _ := os.ReadFile(code)
			out, _ := os.ReadFile(filepath.Join(p.dir, "p", "out"))
			if strings.TrimSpace(string(b)) != "1" {
				t.Errorf("cgdev stop inside the service: exit status %q, want 1; output:\n%s", b, out)
			}
			if !strings.Contains(string(out), "running inside service shell's group") || strings.Contains(string(out), "[1/5]") {
				t.Errorf("cgdev stop inside the service printed:\n%s", out)
			}
			if !testenv.Alive(shell) || !testenv.Alive(web) {
				t.Errorf("after the refused stop: shell alive %v, web alive %v", testenv.Alive(shell), testenv.Alive(web))
			}
			p.mustCgdev("stop")
			p.assertNothingLeft("shell", "web")
		})
	}
}
