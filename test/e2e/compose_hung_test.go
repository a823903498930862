package e2e_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
	"github.com/cgdev/cgdev/test/vmkit"
)

// TestStopWithHungDocker (issue 9, "a hung docker"): with a docker on $PATH
// that never answers, or answers the probes but hangs in `down`, stop's
// phase 4 gives up after compose.timeout with a line naming it, the stop
// fails, the services are stopped all the same, and no process of the hung
// docker (nor a child of it) is left.
func TestStopWithHungDocker(t *testing.T) {
	for name, hangOn := range map[string]string{
		"every call": `*`,
		"down only":  `*down*`,
	} {
		t.Run(name, func(t *testing.T) {
			p := newSvcProject(t, `compose:
  file: docker-compose.yml
  timeout: 2s
services:
  web:
    command: 'echo $$ >> p/web; exec sleep 1000'
`)
			bin := t.TempDir()
			pids := filepath.Join(bin, "docker.pids")
			docker := `#!/bin/sh
case "$*" in
` + hangOn + `) echo $$ >> ` + pids + `; sleep 1000 & echo $! >> ` + pids + `; wait ;;
version*) echo 24.0.7 ;;
"compose version") echo "Docker Compose version v2.21.0" ;;
esac
`
			if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(docker), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { killListed(pids) })
			p.mustCgdev("start")
			code, out, errs := cgdevIn(t, p.dir, []string{"PATH=" + bin + ":" + os.Getenv("PATH")}, "stop")
			if code == 0 || !strings.Contains(out, "GAVE UP after 2s: ") || !strings.Contains(out, "is the Docker engine hung?") {
				t.Errorf("stop with a hung docker: exit %d\n%s%s", code, out, errs)
			}
			if !testenv.Eventually(10*time.Second, func() bool { return len(liveListed(pids)) == 0 }) {
				t.Errorf("processes of the hung docker left behind: %v", liveListed(pids))
			}
			p.assertNoProcessLeft("web")
		})
	}
}

// liveListed returns the PIDs listed in file that still run the fake docker
// (its script, from file's directory) or its sleep (a PID reused by another
// process is not counted).
func liveListed(file string) []int {
	var live []int
	for _, pid := range vmkit.PIDs(file) {
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err == nil && (strings.Contains(string(cmdline), filepath.Dir(file)) || string(cmdline) == "sleep\x001000\x00") {
			live = append(live, pid)
		}
	}
	return live
}

// killListed kills what the test's fake docker started, if cgdev did not.
func killListed(file string) {
	for _, pid := range liveListed(file) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
