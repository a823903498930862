package e2e_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgdev/cgdev/launcher"
	"golang.org/x/sys/unix"
)

// TestConfigRefusalsStartNothing: the binary refuses, before starting any
// service, a FIFO as env_file (it used to block start while it held the
// lock), an overflowing limit (it used to become a negative MemoryMax) and
// a NUL byte in an env value (the other services used to start); each error
// names the file, line and field.
func TestConfigRefusalsStartNothing(t *testing.T) {
	for _, tc := range []struct{ name, bad, want string }{
		{"fifo env_file", "    env_file: fifo\n", "cgdev.yaml:6: services.bad.env_file:"},
		{"overflowing limit", "    memory_max: 8388608T\n", "cgdev.yaml:6: services.bad.memory_max: property MemoryMax:"},
		{"NUL in env", "    env: {A: \"x\\0y\"}\n", "cgdev.yaml:6: services.bad.env.A: contains a NUL byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newSvcProject(t, "services:\n  web:\n    command: 'echo $$ >> p/web; exec sleep 1000'\n  bad:\n    command: 'echo $$ >> p/bad; exec sleep 1000'\n"+tc.bad)
			if err := unix.Mkfifo(filepath.Join(p.dir, "fifo"), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errs := p.cgdev("start")
			if code == 0 || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q; want an error containing %q", code, errs, tc.want)
			}
			if len(p.pids("web"))+len(p.pids("bad")) > 0 || p.groupExists() {
				t.Errorf("a refused config started something:\n%s", out)
			}
		})
	}
}

// TestDirOutsideProjectWarns: a service directory outside the project is
// accepted, and every command says so on stderr, naming file, line and field.
func TestDirOutsideProjectWarns(t *testing.T) {
	p := newSvcProject(t, "services:\n  web:\n    command: 'exec sleep 1000'\n    dir: /tmp\n")
	for _, cmd := range []string{"status", "stop"} {
		code, _, errs := p.cgdev(cmd)
		if cmd == "status" && code == launcher.StatusDown {
			code = 0 // nothing runs: status says so with 3, as documented
		}
		if code != 0 || !strings.Contains(errs, "cgdev: warning: cgdev.yaml:4: services.web.dir: /tmp is outside the project directory") {
			t.Errorf("cgdev %s: exit %d, stderr %q", cmd, code, errs)
		}
	}
}
