package testenv

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/cgdev/cgdev/cgroup"
)

// NeedUserManager skips unless a systemd user manager answers (as under
// test/systemd/with-manager.sh) and systemctl is there to cross-check cgdev.
func NeedUserManager(t testing.TB) *cgroup.Host {
	t.Helper()
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	if !h.Systemd.UserBus {
		t.Skip("no systemd user manager reachable; run under test/systemd/with-manager.sh")
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("systemctl not installed")
	}
	return h
}

// Scopes lists the loaded cgdev units whose name contains part, as
// `systemctl --user list-units 'cgdev-*'` shows them.
func Scopes(t testing.TB, part string) []string {
	t.Helper()
	out, err := exec.Command("systemctl", "--user", "list-units", "--all", "--plain", "--no-legend", "cgdev-*").Output()
	if err != nil {
		t.Fatalf("systemctl --user list-units: %v", err)
	}
	var units []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[0], part) {
			units = append(units, f[0])
		}
	}
	return units
}

// AssertNoScopes fails if a scope whose name contains part is loaded, and
// then kills and stops it (part must be unique to the test: only processes
// the test started are in it).
func AssertNoScopes(t testing.TB, part string) {
	t.Helper()
	left := Scopes(t, part)
	if len(left) > 0 {
		t.Errorf("cgdev left scopes behind: %v", left)
	}
	for _, u := range left {
		exec.Command("systemctl", "--user", "kill", "--signal=KILL", u).Run()
		exec.Command("systemctl", "--user", "stop", u).Run()
		exec.Command("systemctl", "--user", "reset-failed", u).Run()
	}
}

// ScopePrefix is what the unit names of project's scopes start with (the
// project id, escaped).
func ScopePrefix(project string) string {
	return strings.TrimSuffix(cgroup.UnitName(project, "x"), "x.scope")
}
