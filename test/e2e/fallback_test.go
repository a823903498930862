package e2e_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
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
