package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
	"github.com/cgdev/cgdev/test/vmkit"
)

// svcProject is a temporary project directory with a cgdev.yaml, run under a
// private cgroup base. Its services write the PIDs they spawn to files in
// p/ so that the test can check each of them after a stop.
type svcProject struct {
	t    testing.TB
	host *cgroup.Host
	dir  string
	id   string
}

// newSvcProject writes config as cgdev.yaml in a fresh directory with a p/
// for the PIDs (testenv.NewProject: force-stopped, its marked processes
// killed at cleanup, so a failing test leaks nothing).
func newSvcProject(t testing.TB, config string) *svcProject {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	tp := testenv.NewProject(t, dir, config)
	return &svcProject{t: t, host: tp.Host, dir: tp.Dir, id: tp.ID}
}

// cgdev runs the binary in the project directory.
func (p *svcProject) cgdev(args ...string) (code int, stdout, stderr string) {
	p.t.Helper()
	return cgdevIn(p.t, p.dir, nil, args...)
}

// mustCgdev runs the binary and fails the test unless it exits 0.
func (p *svcProject) mustCgdev(args ...string) string {
	p.t.Helper()
	code, out, errs := p.cgdev(args...)
	if code != 0 {
		p.t.Fatalf("cgdev %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// pids returns the PIDs the services wrote to p/<file>.
func (p *svcProject) pids(file string) []int { return vmkit.PIDs(filepath.Join(p.dir, "p", file)) }

// waitPids waits until p/<file> names at least n PIDs.
func (p *svcProject) waitPids(file string, n int) []int {
	p.t.Helper()
	return vmkit.WaitPIDs(p.t, filepath.Join(p.dir, "p", file), n, 10*time.Second)
}

// ours reports whether pid is a live process of this project: it carries the
// project's marker or sits in one of its cgroups. A recycled PID of an
// unrelated process is neither.
func (p *svcProject) ours(pid int) bool { return vmkit.Ours(pid, p.id, "/"+p.id+"/") }

// marked lists every live process on the machine carrying the project's marker.
func (p *svcProject) marked() []int { return testenv.Marked(p.t, p.id) }

func (p *svcProject) groupDir() string { return testenv.GroupDir(p.host, p.id) }

func (p *svcProject) groupExists() bool {
	_, err := os.Stat(p.groupDir())
	return err == nil
}

// assertNothingLeft fails for each PID in files that still runs as ours, any
// process carrying the marker, the project's cgroups and the tracking files.
func (p *svcProject) assertNothingLeft(files ...string) {
	p.t.Helper()
	p.assertNoProcessLeft(files...)
	for _, f := range []string{".cgdev/state.json", ".cgdev/services", ".pids/services.pids", ".pids/services.pids.groups", ".pids/services.pids.services"} {
		if _, err := os.Stat(filepath.Join(p.dir, f)); err == nil {
			p.t.Errorf("%s left behind", f)
		}
	}
}

// assertNoProcessLeft checks what assertNothingLeft does but the tracking files.
func (p *svcProject) assertNoProcessLeft(files ...string) {
	p.t.Helper()
	vmkit.AssertNoSurvivors(p.t, p.dir, p.id, "/"+p.id+"/", files...)
	if p.groupExists() {
		p.t.Errorf("project cgroup %s left behind", p.groupDir())
	}
}

// statusJSON runs cgdev status --json, checks the output against the
// documented schema (docs/json.md) and the exit status against the
// services' states (0 when every configured service is running, ready,
// completed or disabled, else 3).
func (p *svcProject) statusJSON() map[string]launcher.ServiceStatus {
	p.t.Helper()
	code, stdout, stderr := p.cgdev("status", "--json")
	checkJSON(p.t, "status", stdout)
	var st struct {
		Project  string                   `json:"project"`
		Services []launcher.ServiceStatus `json:"services"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		p.t.Fatalf("status --json: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	if st.Project != p.id {
		p.t.Errorf("status project %q, want %q", st.Project, p.id)
	}
	out := map[string]launcher.ServiceStatus{}
	want := 0
	for _, s := range st.Services {
		out[s.Name] = s
		if s.Configured && s.State != "running" && s.State != "ready" && s.State != "disabled" && s.State != "completed" {
			want = 3
		}
	}
	if code != want {
		p.t.Errorf("status --json: exit %d, want %d for %+v\n%s", code, want, st.Services, stderr)
	}
	return out
}

// TestStopForceIsImmediate: --force does not wait for a grace period.
func TestStopForceIsImmediate(t *testing.T) {
	p := newSvcProject(t, `services:
  stubborn:
    grace: 1m
    command: 'trap "" TERM; echo $$ >> p/stubborn; sleep 1000 & echo $! >> p/stubborn; while :; do sleep 1; done'
`)
	p.mustCgdev("start")
	p.waitPids("stubborn", 2)
	start := time.Now()
	out := p.mustCgdev("stop", "--force")
	// The bound is the 1 minute grace that --force skips, not a performance
	// target (that is BenchmarkStopForce).
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("stop --force took %s: it waited for the grace period", took)
	}
	if !strings.Contains(out, "skipped (--force)") {
		t.Errorf("stop --force output:\n%s", out)
	}
	p.assertNothingLeft("stubborn")
}

// startStranger starts a process that is not part of the project, in dir,
// with argv[0] set to name, waits until it runs as "name 1000" (bash has
// exec'd sleep), and kills it when the test ends.
func startStranger(t *testing.T, dir, name string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("bash", "-c", `exec -a "$0" sleep 1000`, name)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	testenv.WaitCmdline(t, cmd.Process.Pid, name+" 1000")
	return cmd
}

// TestStopSparesStrangers: PID files naming an unrelated process never get it
// signalled, nor does a process matching an orphan pattern outside the
// project; one matching a pattern inside the project is swept.
func TestStopSparesStrangers(t *testing.T) {
	p := newSvcProject(t, `services:
  web:
    command: 'echo $$ >> p/web; sleep 1000'
`)
	p.mustCgdev("start")
	p.waitPids("web", 1)
	stranger := startStranger(t, t.TempDir(), "sleep")
	outsider := startStranger(t, t.TempDir(), "vitest") // matches a default pattern, elsewhere
	insider := startStranger(t, p.dir, "vitest")        // matches a default pattern, in the project
	spid := stranger.Process.Pid
	lines := map[string]string{
		".pids/services.pids":          strconv.Itoa(spid) + "\n",
		".pids/services.pids.groups":   strconv.Itoa(spid) + ":web:" + strconv.Itoa(spid) + "\n",
		".pids/services.pids.services": "web:" + strconv.Itoa(spid) + "\n",
		".cgdev/state.json":            `{"project":"` + p.id + `","services":{"web":{"pid":` + strconv.Itoa(spid) + `,"pgid":` + strconv.Itoa(spid) + `}}}`,
	}
	for f, content := range lines {
		if err := os.WriteFile(filepath.Join(p.dir, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := p.mustCgdev("stop")
	if !testenv.Alive(spid) {
		t.Errorf("stop signalled PID %d, an unrelated process named in the PID files", spid)
	}
	if !testenv.Alive(outsider.Process.Pid) {
		t.Errorf("stop swept PID %d, a pattern match outside the project", outsider.Process.Pid)
	}
	if !testenv.Eventually(5*time.Second, func() bool { return !testenv.Alive(insider.Process.Pid) }) {
		t.Errorf("the pattern match inside the project (PID %d) survived:\n%s", insider.Process.Pid, out)
	}
	if !strings.Contains(out, "orphan sweep: stopped 1 process") {
		t.Errorf("stop output:\n%s", out)
	}
	p.assertNothingLeft("web")
}

// TestStartFailures: a service that exits early and one that misses its
// readiness timeout leave no process and no cgroup, show their log tail and
// make start exit 1, while the healthy service keeps running.
func TestStartFailures(t *testing.T) {
	p := newSvcProject(t, `services:
  ok:
    command: 'echo $$ >> p/ok; exec sleep 1000'
  early:
    command: 'echo early-output-line; sleep 1000 & echo $! >> p/early; exit 3'
  slow:
    command: 'echo slow-output-line; sleep 1000 & echo $! >> p/slow; wait'
    ready: {tcp: "127.0.0.1:1", timeout: 300ms}
  after-slow:
    command: 'sleep 1000'
    depends_on: [slow]
`)
	code, out, errs := p.cgdev("start")
	if code != 1 {
		t.Fatalf("start exit %d, want 1\n%s%s", code, out, errs)
	}
	for _, want := range []string{"early-output-line", "exit status 3", "slow-output-line", "not ready after 300ms", "skipped", "after-slow"} {
		if !strings.Contains(out+errs, want) {
			t.Errorf("start output lacks %q:\n%s\n%s", want, out, errs)
		}
	}
	for _, f := range []string{"early", "slow"} {
		for _, pid := range p.pids(f) {
			if p.ours(pid) {
				t.Errorf("PID %d of failed service %s still runs", pid, f)
			}
		}
		if _, err := os.Stat(filepath.Join(p.groupDir(), f)); err == nil {
			t.Errorf("cgroup of failed service %s left behind", f)
		}
	}
	// status says how each failed start ended.
	st := p.statusJSON()
	if st["ok"].State != "running" || st["after-slow"].State != "stopped" {
		t.Errorf("status after partial start: %+v", st)
	}
	if e := st["early"]; e.State != "exited" || e.Detail != "code 3" || e.LastExit == nil || e.LastExit.Code == nil || *e.LastExit.Code != 3 {
		t.Errorf("status of early (exit 3 before ready): %+v", e)
	}
	if s := st["slow"]; s.State != "failed" || !strings.HasPrefix(s.Detail, "not ready after 300ms") {
		t.Errorf("status of slow (readiness timeout): %+v", s)
	}
	if b, _ := os.ReadFile(filepath.Join(p.dir, ".pids/services.pids.services")); !strings.HasPrefix(string(b), "ok:") || strings.Count(string(b), "\n") != 1 {
		t.Errorf(".pids/services.pids.services = %q", b)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("ok", "early", "slow")
}

// TestConfigErrorsNameFileAndLine: the binary refuses a bad config before
// starting anything, naming the file, line and field.
func TestConfigErrorsNameFileAndLine(t *testing.T) {
	p := newSvcProject(t, "services:\n  web:\n    command: 'echo $$ >> p/web; sleep 1000'\n    grace: soon\n")
	code, out, errs := p.cgdev("start")
	if code == 0 || !strings.Contains(errs, "cgdev.yaml:4: services.web.grace:") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	if len(p.pids("web")) > 0 || p.groupExists() {
		t.Errorf("a refused config started something:\n%s", out)
	}
}

// TestStartTwiceConcurrently: two concurrent starts are serialised by the
// lock: the service runs once, and the second start says it already runs.
func TestStartTwiceConcurrently(t *testing.T) {
	p := newSvcProject(t, `services:
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
    ready: {exec: "test -s p/web"}
`)
	var wg sync.WaitGroup
	outs := make([]string, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = p.mustCgdev("start")
		}()
	}
	wg.Wait()
	if n := len(p.pids("web")); n != 1 {
		t.Errorf("web started %d times", n)
	}
	if joined := outs[0] + outs[1]; strings.Count(joined, "already running, left as it is") != 1 {
		t.Errorf("outputs:\n%s\n---\n%s", outs[0], outs[1])
	}
	if st := p.statusJSON(); st["web"].PID != p.pids("web")[0] || st["web"].Procs != 1 {
		t.Errorf("status: %+v, pid file %v", st["web"], p.pids("web"))
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("web")
}

// TestProcfileRestartLogs: a Procfile project; restart replaces the process;
// logs prefix each line with the service name.
func TestProcfileRestartLogs(t *testing.T) {
	p := newSvcProject(t, "")
	os.Remove(filepath.Join(p.dir, "cgdev.yaml"))
	os.WriteFile(filepath.Join(p.dir, "Procfile"), []byte("web: echo hello-from-web; echo $$ >> p/web; exec sleep 1000\n"), 0o644)
	p.mustCgdev("start")
	first := p.waitPids("web", 1)[0]
	p.mustCgdev("restart", "web")
	second := p.waitPids("web", 2)[1]
	if testenv.Alive(first) && p.ours(first) || !p.ours(second) {
		t.Errorf("restart: old %d alive=%v, new %d ours=%v", first, p.ours(first), second, p.ours(second))
	}
	if out := p.mustCgdev("logs", "-n", "5"); strings.Count(out, "web | hello-from-web") != 2 {
		t.Errorf("logs:\n%s", out)
	}
	if out := p.mustCgdev("ps"); !strings.Contains(out, "sleep 1000") || !strings.Contains(out, strconv.Itoa(second)) {
		t.Errorf("ps:\n%s", out)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("web")
}

// TestStopSomeServices: stopping one service leaves the others (and the
// containers) alone and rewrites the tracking files without it.
func TestStopSomeServices(t *testing.T) {
	p := newSvcProject(t, `compose:
  file: docker-compose.yml
services:
  a:
    command: 'echo $$ >> p/a; sleep 1000 & wait'
  b:
    command: 'echo $$ >> p/b; sleep 1000 & wait'
    depends_on: [a]
`)
	p.mustCgdev("start")
	a, b := p.waitPids("a", 1)[0], p.waitPids("b", 1)[0]
	out := p.mustCgdev("stop", "b")
	if !strings.Contains(out, "[4/5] containers: left up") {
		t.Errorf("partial stop output:\n%s", out)
	}
	if p.ours(b) || !p.ours(a) {
		t.Errorf("after stop b: a alive %v, b alive %v", p.ours(a), p.ours(b))
	}
	if got, _ := os.ReadFile(filepath.Join(p.dir, ".pids/services.pids.services")); string(got) != "a:"+strconv.Itoa(a)+"\n" {
		t.Errorf(".pids/services.pids.services = %q", got)
	}
	out = p.mustCgdev("stop")
	if !strings.Contains(out, "[4/5] containers: SKIPPED") && !strings.Contains(out, "[4/5] containers: docker compose") {
		t.Errorf("full stop with compose.file and no reachable engine:\n%s", out)
	}
	p.assertNothingLeft("a", "b")
}

// TestUpStopsOnInterrupt: cgdev up follows the logs and stops everything on SIGINT.
func TestUpStopsOnInterrupt(t *testing.T) {
	p := newSvcProject(t, `services:
  a:
    command: 'echo $$ >> p/a; sleep 1000 & while :; do echo tick-a; sleep 0.1; done'
`)
	cmd := exec.Command(testenv.Binary(t), "up")
	cmd.Dir = p.dir
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	if !testenv.Eventually(10*time.Second, func() bool { return strings.Contains(out.String(), "a     | tick-a") }) {
		t.Fatalf("up did not follow the logs:\n%s", out.String())
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("up: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "[5/5] verify: no process left") {
		t.Errorf("up output:\n%s", out.String())
	}
	p.assertNothingLeft("a")
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDependencyOrder: start brings dependencies up first; stop signals
// dependants first.
func TestDependencyOrder(t *testing.T) {
	p := newSvcProject(t, `services:
  c:
    command: 'exec sleep 1000'
    depends_on: [b]
    ready: {exec: "true"}
  a:
    command: 'exec sleep 1000'
    ready: {exec: "true"}
  b:
    command: 'exec sleep 1000'
    depends_on: a
    ready: {exec: "true"}
`)
	out := p.mustCgdev("start", "c")
	ia, ib, ic := strings.Index(out, "] a …"), strings.Index(out, "] b …"), strings.Index(out, "] c …")
	if ia < 0 || !(ia < ib && ib < ic) {
		t.Errorf("start order:\n%s", out)
	}
	out = p.mustCgdev("stop")
	if !strings.Contains(out, "dependants first: c SIGTERM→1, b SIGTERM→1, a SIGTERM→1") {
		t.Errorf("stop order:\n%s", out)
	}
	p.assertNothingLeft()
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestReadinessChecks: each kind of check passes once its service is ready,
// and start waits for it (the checked state exists when start returns).
func TestReadinessChecks(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed (the http check serves with python3 -m http.server)")
	}
	httpPort, tcpPort := freePort(t), freePort(t)
	p := newSvcProject(t, fmt.Sprintf(`services:
  http:
    command: 'sleep 0.3; exec python3 -m http.server %d --bind 127.0.0.1'
    ready: {http: "http://127.0.0.1:%d/", timeout: 20s}
  tcp:
    command: 'sleep 0.3; exec python3 -c "import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\", %d)); s.listen(); time.sleep(1000)"'
    ready: {tcp: "127.0.0.1:%d", timeout: 20s}
  log:
    command: 'sleep 0.3; echo "server listening"; exec sleep 1000'
    ready: {log: "^server listening$", timeout: 20s}
  exec:
    command: 'sleep 0.3; touch p/exec-ready; exec sleep 1000'
    ready: {exec: "test -f p/exec-ready", timeout: 20s}
`, httpPort, httpPort, tcpPort, tcpPort))
	out := p.mustCgdev("start")
	if strings.Count(out, "… ready in") != 4 {
		t.Errorf("start output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "p/exec-ready")); err != nil {
		t.Error("start returned before the exec check could pass")
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort)); err != nil {
		t.Errorf("http service not listening after start: %v", err)
	} else {
		c.Close()
	}
	st := p.statusJSON()
	for _, name := range []string{"http", "tcp", "log", "exec"} {
		if !strings.HasPrefix(st[name].Ready, "ready after") {
			t.Errorf("status of %s: ready %q", name, st[name].Ready)
		}
	}
	p.mustCgdev("stop")
	p.assertNothingLeft()
}

// TestServiceLimits: memory_max is enforced where the memory controller is
// available to the driver, and refused before anything starts where not
// (this hybrid host).
func TestServiceLimits(t *testing.T) {
	p := newSvcProject(t, `services:
  capped:
    command: 'echo $$ >> p/capped; exec sleep 1000'
    memory_max: 64M
  other:
    command: 'echo $$ >> p/other; exec sleep 1000'
`)
	code, out, errs := p.cgdev("start")
	if !p.host.Has("memory") {
		if code == 0 || !strings.Contains(errs, "MemoryMax") || !strings.Contains(errs, "capped") {
			t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		if len(p.pids("capped")) > 0 || len(p.pids("other")) > 0 || p.groupExists() {
			t.Error("a refused limit still started something")
		}
		if !strings.Contains(errs, "--ignore-unsupported") {
			t.Errorf("the refusal does not say how to go on without the limit:\n%s", errs)
		}
		// --ignore-unsupported starts both, capped without its limit, and says so.
		out = p.mustCgdev("start", "--ignore-unsupported")
		if !strings.Contains(out, "starting capped WITHOUT [MemoryMax]") || len(p.waitPids("capped", 1)) != 1 || len(p.waitPids("other", 1)) != 1 {
			t.Errorf("start --ignore-unsupported:\n%s", out)
		}
		p.mustCgdev("stop")
		p.assertNothingLeft("capped", "other")
		return
	}
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	b, err := os.ReadFile(filepath.Join(p.groupDir(), "capped", "memory.max"))
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(64<<20) {
		t.Errorf("memory.max = %q, %v", b, err)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("capped", "other")
}
