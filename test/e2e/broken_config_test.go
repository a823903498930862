package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStopWithUnloadableConfig: when the project file cannot be loaded any
// more (a variable it expands missing from this shell, or an edit that
// broke it), stop, status and ps still work by the project directory,
// saying so; start still refuses.
func TestStopWithUnloadableConfig(t *testing.T) {
	p := newPCProject(t, `processes:
  web:
    command: sleep ${NAP}
    readiness_probe:
      exec: {command: "true"}
`, map[string]string{})
	code, out, stderr := cgdevIn(t, p.dir, []string{"NAP=1000"}, "start")
	if code != 0 {
		t.Fatalf("start: exit %d\n%s%s", code, out, stderr)
	}
	// Without NAP the file still loads (sleep with no operand); break it.
	os.WriteFile(filepath.Join(p.dir, "process-compose.yaml"), []byte("processes:\n  web:\n    command: sleep ${NAP^^}\n"), 0o644)
	code, out, stderr = p.cgdev("status")
	if code != 0 || !strings.Contains(out, "web") || !strings.Contains(stderr, "going on by the project directory "+p.dir+" alone") {
		t.Errorf("status: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = p.cgdev("stop")
	if code != 0 || !strings.Contains(out, "[5/5] verify: no process left") {
		t.Errorf("stop: exit %d\n%s%s", code, out, stderr)
	}
	p.assertNothingLeft()
	if code, _, stderr := p.cgdev("start"); code != 1 || !strings.Contains(stderr, "${NAP^^}") || strings.Contains(stderr, "going on") {
		t.Errorf("start with the broken file: exit %d\n%s", code, stderr)
	}
}
