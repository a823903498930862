package launcher_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgdev/cgdev/launcher"
)

// TestFindProject: the nearest directory holding cgdev.yaml, a Procfile or
// .cgdev/ is the project, as git finds its repository from a subdirectory.
func TestFindProject(t *testing.T) {
	root := t.TempDir()
	mk := func(rel string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(rel, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, []byte("web: sleep 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mk("app/cgdev.yaml")
	mk("app/Procfile")
	mk("app/src/deep/er/")
	mk("foreman/Procfile")
	mk("foreman/lib/")
	mk("gone/.cgdev/logs/")
	mk("gone/web/")
	mk("app/nested/Procfile")
	for _, c := range []struct{ from, file, wantDir, wantConfig string }{
		{"app", "", "app", "app/cgdev.yaml"},                    // cgdev.yaml before Procfile
		{"app/src/deep/er", "", "app", "app/cgdev.yaml"},        // walk up
		{"app/nested", "", "app/nested", "app/nested/Procfile"}, // the nearest wins
		{"foreman/lib", "", "foreman", "foreman/Procfile"},
		{"gone/web", "", "gone", ""},                                         // .cgdev/ alone: found, no config
		{"app/src", "../../foreman/Procfile", "foreman", "foreman/Procfile"}, // -f, relative to the directory
	} {
		dir, config, err := launcher.FindProject(filepath.Join(root, c.from), c.file)
		wantConfig := ""
		if c.wantConfig != "" {
			wantConfig = filepath.Join(root, c.wantConfig)
		}
		if err != nil || dir != filepath.Join(root, c.wantDir) || config != wantConfig {
			t.Errorf("FindProject(%s, %q) = %s, %s, %v; want %s, %s", c.from, c.file, dir, config, err, c.wantDir, c.wantConfig)
		}
	}
	lonely := t.TempDir()
	if dir, _, err := launcher.FindProject(lonely, ""); err == nil {
		if !strings.HasPrefix(lonely, dir) || strings.HasPrefix(dir, root) {
			t.Errorf("found %s from an empty directory", dir)
		}
		t.Skipf("a parent of the temporary directory holds a project (%s): the not-found case cannot be tested here", dir)
	} else if !strings.Contains(err.Error(), "or any parent directory") {
		t.Errorf("not found: %v", err)
	}
}
