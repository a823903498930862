package e2e_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// listenScript is a python3 program listening on 127.0.0.1:$1 until killed:
// a server, or a squatter.
const listenScript = `import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("listening", flush=True)
time.sleep(1000)
`

func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed (the listeners of these tests are python3 programs)")
	}
}

// startSquatter starts a process that is none of cgdev's listening on
// port, python3 running squatter.py, and kills it when the test ends.
func startSquatter(t *testing.T, port int) int {
	t.Helper()
	script := filepath.Join(t.TempDir(), "squatter.py")
	os.WriteFile(script, []byte(listenScript), 0o644)
	cmd := exec.Command("python3", script, strconv.Itoa(port))
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	go cmd.Wait()
	line := make([]byte, 10)
	if n, _ := out.Read(line); !strings.HasPrefix(string(line[:n]), "listening") {
		t.Fatalf("the squatter did not listen on %d", port)
	}
	return cmd.Process.Pid
}

// writeListener puts listenScript in p's directory as listen.py.
func (p *svcProject) writeListener() {
	if err := os.WriteFile(filepath.Join(p.dir, "listen.py"), []byte(listenScript), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// TestPortSquatter: with a process that is not cgdev's listening on a
// service's port, start fails before starting anything, names the
// squatter's PID and command, and leaves nothing running; the squatter is
// left alone.
func TestPortSquatter(t *testing.T) {
	needPython(t)
	port := freePort(t)
	p := newSvcProject(t, fmt.Sprintf(`services:
  web:
    command: python3 listen.py %d
    ready: {tcp: "127.0.0.1:%d", timeout: 10s}
  worker:
    command: sleep 1000
`, port, port))
	p.writeListener()
	squatter := startSquatter(t, port)
	code, out, stderr := p.cgdev("start")
	want := fmt.Sprintf("port %d of service web (cgdev.yaml:2) is already in use by PID %d (", port, squatter)
	if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, fmt.Sprintf("squatter.py %d), not a cgdev process", port)) {
		t.Errorf("start with a squatter: exit %d, want 1 and %q\nstdout:\n%s\nstderr:\n%s", code, want, out, stderr)
	}
	if strings.Contains(out, "ready") {
		t.Errorf("start reported a service ready:\n%s", out)
	}
	p.assertNothingLeft()
	if !testenv.Alive(squatter) {
		t.Error("the squatter was killed: cgdev must leave processes that are not its own alone")
	}
	_, who, _ := p.cgdev("who", strconv.Itoa(port))
	if !strings.Contains(who, fmt.Sprintf("PID %d (", squatter)) || !strings.Contains(who, "squatter.py") {
		t.Errorf("who %d:\n%s", port, who)
	}
}

// TestPortHeldByCgdevService: a port held by another project's service is
// named with that project's service and the directory to stop it in, by
// start and by who (and who --json matches the schema).
func TestPortHeldByCgdevService(t *testing.T) {
	needPython(t)
	port := freePort(t)
	a := newSvcProject(t, fmt.Sprintf(`services:
  api:
    command: python3 listen.py %d
    ports: [%d]
    ready: {log: listening, timeout: 10s}
`, port, port))
	a.writeListener()
	a.mustCgdev("start")
	apiPID := a.statusJSON()["api"].PID
	b := a.subProject("b", fmt.Sprintf(`services:
  web:
    command: python3 ../listen.py %d
    ports: %d
`, port, port))
	code, _, stderr := b.cgdev("start")
	want := fmt.Sprintf("is already in use by PID %d (python3 listen.py %d), service api of the cgdev project in %s (stop it there: cd %s && cgdev stop api)", apiPID, port, a.dir, a.dir)
	want = want[strings.Index(want, "PID"):]
	want = strings.Replace(want, "(python3 ", "(", 1) // python3 may be a shim: its argv[0] a full path
	wantPID := fmt.Sprintf("already in use by PID %d (", apiPID)
	if code != 1 || !strings.Contains(stderr, wantPID) || !strings.Contains(stderr, strings.TrimPrefix(want, fmt.Sprintf("PID %d (", apiPID))) {
		t.Errorf("start of b: exit %d, want 1, %q and %q\n%s", code, wantPID, want, stderr)
	}
	b.assertNothingLeft()

	code, out, stderr := b.cgdev("who", "--json", strconv.Itoa(port))
	checkJSON(t, "who", out)
	var who struct {
		Port    int                   `json:"port"`
		Holders []launcher.PortHolder `json:"holders"`
	}
	json.Unmarshal([]byte(out), &who)
	if code != 0 || who.Port != port || len(who.Holders) != 1 {
		t.Fatalf("who --json: exit %d\n%s%s", code, out, stderr)
	}
	if h := who.Holders[0]; h.PID != apiPID || !h.Cgdev || h.Project != a.id || h.Service != "api" || h.Dir != a.dir {
		t.Errorf("who --json holder: %+v, want PID %d, project %s, service api, dir %s", h, apiPID, a.id, a.dir)
	}
	a.mustCgdev("stop")
	a.assertNothingLeft()
	if _, out, _ := b.cgdev("who", strconv.Itoa(port)); !strings.Contains(out, "nobody listens") {
		t.Errorf("who after stop:\n%s", out)
	}
}

// TestReadyOnlyOnOwnSocket: a tcp readiness check answered by a process
// outside the service's group (here one that starts listening after the
// port check, while the service never listens) does not make the service
// ready: start fails naming the holder, and leaves nothing running.
func TestReadyOnlyOnOwnSocket(t *testing.T) {
	port := freePort(t)
	p := newSvcProject(t, fmt.Sprintf(`services:
  web:
    command: sleep 1000
    ready: {tcp: "127.0.0.1:%d", timeout: 8s}
`, port))
	cmd := exec.Command(testenv.Binary(t), "start")
	cmd.Dir = p.dir
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	p.logLine("web", "--- cgdev: starting web") // past the port check: the service is starting
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	err = cmd.Wait()
	want := fmt.Sprintf("port %d answered, but it is held by PID %d", port, os.Getpid())
	if err == nil || !strings.Contains(out.String(), want) {
		t.Errorf("start: %v, want exit 1 and %q\n%s", err, want, out.String())
	}
	p.assertNoProcessLeft()
	// The failed start is recorded (status says how it ended) until a stop.
	if st := p.statusJSON()["web"]; st.State != "failed" || !strings.Contains(st.Detail, want) {
		t.Errorf("status after the failed start: %+v, want failed with %q", st, want)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft()
}
