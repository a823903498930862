package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// readmeBlock returns the first ```sh block after the README heading that
// starts with heading.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n### "+heading)
	if i < 0 {
		t.Fatalf("README.md has no section %q", heading)
	}
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(s[i:])
	if m == nil {
		t.Fatalf("README.md section %q has no sh block", heading)
	}
	return m[1]
}

// TestReadmeQuickStarts runs the README's quick starts for a Procfile user
// and a process-compose user as written, in a copy of the example
// directories as a fresh clone has them, with the cgdev this checkout
// builds as bin/cgdev (make is not run again), and checks that they
// work and leave nothing behind.
func TestReadmeQuickStarts(t *testing.T) {
	needPython(t)
	for _, c := range []struct {
		heading, example string
		want             []string
	}{
		{"Coming from foreman", "procfile", []string{"web … running", "clock | Hello from .env, it is", "[5/5] verify: no process left"}},
		{"Coming from process-compose", "process-compose", []string{"web … ready in", "clock … running", "clock | Hello from process-compose.yaml, it is", "web SIGINT→1", "[5/5] verify: no process left"}},
	} {
		t.Run(c.example, func(t *testing.T) {
			testenv.CgroupBase(t)
			clone := t.TempDir()
			example := filepath.Join(clone, "examples", c.example)
			copyDir(t, filepath.Join(testenv.RepoRoot(), "examples", c.example), example)
			os.Mkdir(filepath.Join(clone, "bin"), 0o755)
			if err := os.Symlink(testenv.Binary(t), filepath.Join(clone, "bin", "cgdev")); err != nil {
				t.Fatal(err)
			}
			// The example's ports are 5000 and 8080 unless told: other tests
			// (and other checkouts) may use those, so the test tells them.
			port := freePort(t)
			script := "make() { :; }\nset -ex\n" + readmeBlock(t, c.heading) + "\n"
			// logs right after start may come before clock's first line.
			script = strings.Replace(script, "cgdev logs", "sleep 1.5; cgdev logs", 1)
			cmd := exec.Command("bash", "-c", script)
			cmd.Dir = clone
			cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), fmt.Sprintf("WEB_PORT=%d", port), "NO_COLOR=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the README's %s quick start failed: %v\n%s", c.example, err, out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			p := &svcProject{t: t, dir: example, id: launcher.ProjectID(example)}
			if m := p.marked(); len(m) > 0 {
				t.Errorf("processes of the example left: %v", m)
			}
		})
	}
}

// copyDir copies the regular files of src (one level, dotfiles too) to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
