package e2e_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/fallback"
	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// fbHardCases forks, and writes to $1 the PID of: a background child, a
// setsid child, a double-forked daemon (re-parented to init), one that also
// left the session, a child renamed with exec -a, a copy of sleep called
// esbuild ($2), a shell ignoring SIGTERM, a child with an empty environment.
const fbHardCases = `sleep 1000 & echo $! >> "$1"
setsid sleep 1000 & echo $! >> "$1"
(sleep 1000 & echo $! >> "$1") &
(setsid sh -c 'echo $$ >> "$1"; exec sleep 1000' x "$1" &) &
bash -c 'exec -a vitest sleep 1000' & echo $! >> "$1"
"$2" 1000 & echo $! >> "$1"
sh -c 'trap "" TERM; echo $$ >> "$1"; while :; do sleep 0.05; done' x "$1" &
env -i sleep 1000 & echo $! >> "$1"
exec sleep 1000
`

const fbHardCaseCount = 8

// fbProject writes a project whose "web" service runs the hard cases and
// whose "forker" service keeps forking (ignoring SIGTERM), and arranges for
// anything carrying its marker to be killed when the test ends.
func fbProject(t *testing.T) (dir, pidFile string) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed (needed for exec -a)")
	}
	dir = t.TempDir()
	pidFile = filepath.Join(dir, "web.pids")
	esbuild := fbCopy(t, "sleep", filepath.Join(dir, "bin"), "esbuild")
	must(t, os.WriteFile(filepath.Join(dir, "hard.sh"), []byte(fbHardCases), 0o644))
	procfile := "web: sh ./hard.sh " + pidFile + " " + esbuild + "\n" +
		`forker: trap "" TERM; while :; do sleep 1000 & sleep 0.02; done` + "\n"
	must(t, os.WriteFile(filepath.Join(dir, "Procfile"), []byte(procfile), 0o644))
	id := launcher.ProjectID(dir)
	t.Cleanup(func() {
		d, _ := fallback.New(nil)
		groups, _ := d.Groups(id)
		for _, g := range groups {
			if pids, _ := g.Procs(); len(pids) > 0 {
				t.Errorf("service %s left processes: %v (killing them)", g.Name(), pids)
				g.Kill()
			}
		}
	})
	return dir, pidFile
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func fbCopy(t *testing.T, prog, dir, name string) string {
	t.Helper()
	src, err := exec.LookPath(prog)
	must(t, err)
	b, err := os.ReadFile(src)
	must(t, err)
	must(t, os.MkdirAll(dir, 0o755))
	dst := filepath.Join(dir, name)
	must(t, os.WriteFile(dst, b, 0o755))
	return dst
}

// fbCgdev runs cgdev --driver fallback ARGS in dir, without any inherited marker.
func fbCgdev(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), append([]string{"--driver", "fallback"}, args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CGDEV_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// fbBystander starts a copy of sleep called vitest in a directory outside
// the project, without the marker: named like an orphan pattern, not ours.
func fbBystander(t *testing.T) proc.Identity {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(fbCopy(t, "sleep", filepath.Join(dir, "node_modules", ".bin"), "vitest"), "1000")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CGDEV_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	must(t, cmd.Start())
	go cmd.Wait()
	p, err := proc.ReadProc(cmd.Process.Pid)
	must(t, err)
	t.Cleanup(func() { p.Identity().Signal(syscall.SIGKILL) })
	return p.Identity()
}

// fbStart starts the project and returns the hard cases' PIDs.
func fbStart(t *testing.T, dir, pidFile string) []int {
	t.Helper()
	if code, out := fbCgdev(t, dir, "start"); code != 0 {
		t.Fatalf("cgdev --driver fallback start: exit %d\n%s", code, out)
	}
	var pids []int
	if !testenv.Eventually(5*time.Second, func() bool {
		b, _ := os.ReadFile(pidFile)
		pids = pids[:0]
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			pids = append(pids, n)
		}
		return len(pids) == fbHardCaseCount
	}) {
		t.Fatalf("web wrote %d of %d PIDs", len(pids), fbHardCaseCount)
	}
	for _, pid := range pids {
		if p, err := proc.ReadProc(pid); err == nil {
			t.Cleanup(func() { p.Identity().Signal(syscall.SIGKILL) })
		}
	}
	return pids
}

func fbCheckStopped(t *testing.T, pids []int, bystander proc.Identity, out string) {
	t.Helper()
	for _, pid := range pids {
		if testenv.Alive(pid) {
			t.Errorf("PID %d (%s) survived the stop", pid, proc.Cmdline(pid))
		}
	}
	if !bystander.Alive() {
		t.Errorf("bystander vitest (PID %d, outside the project, no marker) was killed", bystander.PID)
	}
	for k := 1; k <= 5; k++ {
		if !strings.Contains(out, "["+strconv.Itoa(k)+"/5]") {
			t.Errorf("stop report lacks phase [%d/5]:\n%s", k, out)
		}
	}
}

// TestFallbackStopHardCases: with --driver fallback, stop leaves none of the
// hard cases alive (double-forked and renamed ones included) and never
// touches the bystander.
func TestFallbackStopHardCases(t *testing.T) {
	dir, pidFile := fbProject(t)
	bystander := fbBystander(t)
	pids := fbStart(t, dir, pidFile)
	if code, out := fbCgdev(t, dir, "status"); code != 0 || !strings.Contains(out, "web") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	code, out := fbCgdev(t, dir, "stop", "--grace", "300ms")
	t.Logf("cgdev --driver fallback stop:\n%s", out)
	if code != 0 {
		t.Errorf("stop: exit %d", code)
	}
	fbCheckStopped(t, pids, bystander, out)
	// The double-forked setsid daemon left tree, group and session: the
	// report names it as caught by its marker, so the user learns it escapes.
	if !strings.Contains(out, "found by the marker:") {
		t.Errorf("stop report does not name the processes found only by their marker:\n%s", out)
	}
}

// TestFallbackStopWithoutState: stop finds the services by their marker when
// .cgdev/ is gone and .pids/ names an unrelated live process (as a recycled
// PID would), which is never signalled.
func TestFallbackStopWithoutState(t *testing.T) {
	dir, pidFile := fbProject(t)
	bystander := fbBystander(t)
	pids := fbStart(t, dir, pidFile)
	must(t, os.RemoveAll(filepath.Join(dir, ".cgdev")))
	line := strconv.Itoa(bystander.PID)
	for name, content := range map[string]string{
		"services.pids":          line + "\n",
		"services.pids.groups":   line + ":web:" + line + "\n",
		"services.pids.services": "web:" + line + "\n",
	} {
		must(t, os.MkdirAll(filepath.Join(dir, ".pids"), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, ".pids", name), []byte(content), 0o644))
	}
	code, out := fbCgdev(t, dir, "stop", "--grace", "300ms")
	t.Logf("cgdev --driver fallback stop:\n%s", out)
	if code != 0 {
		t.Errorf("stop: exit %d", code)
	}
	fbCheckStopped(t, pids, bystander, out)
}

// TestFallbackRunReapsLeftovers: cgdev --driver fallback run passes the exit
// status through and reaps what the command left: a setsid child, a
// double-forked one, and an env -i child orphaned in the leader's group.
func TestFallbackRunReapsLeftovers(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	script := `setsid sleep 1000 & echo $! >> "$1"
(sleep 1000 & echo $! >> "$1")
env -i sleep 1000 & echo $! >> "$1"
sh -c 'trap "" TERM; echo $$ >> "$1"; while :; do sleep 0.05; done' x "$1" &
while [ $(wc -l < "$1") -lt 4 ]; do sleep 0.01; done
sleep 0.1
exit 3`
	code, out := fbCgdev(t, "", "run", "--grace", "200ms", "--", "sh", "-c", script, "x", pidFile)
	pids := func() []int {
		b, _ := os.ReadFile(pidFile)
		var p []int
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			p = append(p, n)
		}
		return p
	}()
	for _, pid := range pids {
		if p, err := proc.ReadProc(pid); err == nil && p.State != 'Z' {
			t.Cleanup(func() { p.Identity().Signal(syscall.SIGKILL) })
			t.Errorf("PID %d (%s) survived the run", pid, proc.Cmdline(pid))
		}
	}
	if code != 3 || len(pids) != 4 || !strings.Contains(out, "leftover process(es) with SIGKILL") {
		t.Errorf("cgdev --driver fallback run: exit %d, %d PIDs, output:\n%s", code, len(pids), out)
	}
}
