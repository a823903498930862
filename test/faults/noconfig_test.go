package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
)

// TestStopWithoutItsFiles (issue 9, item 10): what start read can be gone
// by the time of the stop (the env_file deleted, a typo in cgdev.yaml,
// cgdev.yaml removed); status and stop then go on from the kernel, with a
// warning naming what could not be read, and stop everything.
func TestStopWithoutItsFiles(t *testing.T) {
	const config = `services:
  web:
    command: 'sleep 1000 & exec sleep 1000'
    env_file: .env
  db:
    command: exec sleep 1000
`
	for _, c := range []struct {
		name  string
		spoil func(dir string) error
		warns string
	}{
		{"env_file deleted", func(dir string) error { return os.Remove(filepath.Join(dir, ".env")) }, ".env"},
		{"YAML typo", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "cgdev.yaml"), []byte(config+"  oops: [\n"), 0o644)
		}, "cgdev.yaml"},
		{"cgdev.yaml removed", func(dir string) error { return os.Remove(filepath.Join(dir, "cgdev.yaml")) }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := testenv.NewProject(t, "", config)
			testenv.WriteFile(t, filepath.Join(p.Dir, ".env"), "A=1\n")
			if code, out, errs := p.Cgdev(time.Minute, "start"); code != 0 {
				t.Fatalf("start: exit %d\n%s%s", code, out, errs)
			}
			if err := c.spoil(p.Dir); err != nil {
				t.Fatal(err)
			}
			before := userFiles(t, p.Dir)
			if code, out, errs := p.Cgdev(time.Minute, "status"); code != 0 || !strings.Contains(out, "web") || !strings.Contains(errs, c.warns) {
				t.Errorf("status: exit %d\n%s%s", code, out, errs)
			}
			if code, out, errs := p.Cgdev(time.Minute, "stop"); code != 0 || !strings.Contains(errs, c.warns) {
				t.Errorf("stop: exit %d\n%s%s", code, out, errs)
			}
			p.AssertNothingLeft()
			assertUnchanged(t, before, userFiles(t, p.Dir))
		})
	}
}
