package e2e_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

func needUserManager(t *testing.T) *cgroup.Host { return testenv.NeedUserManager(t) }

func scopes(t *testing.T, part string) []string { return testenv.Scopes(t, part) }

// runName returns a --name unique to this test and the escaped form it
// takes in unit names.
func runName(prefix string) (name, inUnit string) {
	b := make([]byte, 4)
	rand.Read(b)
	name = prefix + hex.EncodeToString(b)
	return name, strings.ReplaceAll(name, "-", `\x2d`)
}

func assertNoScopes(t *testing.T, part string) { testenv.AssertNoScopes(t, part) }

func TestSystemdRunExitStatus(t *testing.T) {
	needUserManager(t)
	name, part := runName("sd-exit-")
	for script, want := range map[string]int{"exit 0": 0, "exit 7": 7, "kill -TERM $$": 128 + 15, "kill -KILL $$": 137} {
		code, _, stderr := cgdevRun(t, "--driver", "systemd", "run", "--name", name, "--", "sh", "-c", script)
		if code != want {
			t.Errorf("cgdev --driver systemd run -- sh -c %q exited %d; want %d (stderr %q)", script, code, want, stderr)
		}
	}
	assertNoScopes(t, part)
}

// TestSystemdRunInScope: the command runs in a scope of the user manager,
// named after --name, from its first instruction.
func TestSystemdRunInScope(t *testing.T) {
	needUserManager(t)
	name, part := runName("sd-scope-")
	code, stdout, stderr := cgdevRun(t, "--driver", "systemd", "run", "--name", name, "--", "cat", "/proc/self/cgroup")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if want := "/cgdev-run-" + part + `\x2d`; !strings.Contains(stdout, want) || !strings.Contains(stdout, ".scope\n") {
		t.Errorf("/proc/self/cgroup = %q; want a scope containing %q", stdout, want)
	}
	assertNoScopes(t, part)
}

// TestSystemdRunRefusesMemoryMax: on this host systemd would accept MemoryMax
// and not enforce it; cgdev refuses, runs nothing and leaves no scope.
func TestSystemdRunRefusesMemoryMax(t *testing.T) {
	needUserManager(t)
	name, part := runName("sd-mem-")
	marker := filepath.Join(t.TempDir(), "ran")
	code, _, stderr := cgdevRun(t, "--driver", "systemd", "run", "--name", name, "-p", "MemoryMax=64M", "--", "touch", marker)
	if code == 0 && strings.TrimSpace(stderr) == "" {
		t.Skip("the manager here enforces MemoryMax")
	}
	if code != 1 || !strings.Contains(stderr, "MemoryMax cannot be enforced") {
		t.Fatalf("exit %d, stderr %q; want 1 and a refusal naming MemoryMax", code, stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran despite the refused limit")
	}
	assertNoScopes(t, part)
}

// TestSystemdAccessDenied: another user's manager is named, with why it
// cannot be used, and nothing runs.
func TestSystemdAccessDenied(t *testing.T) {
	needUserManager(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run cgdev as another user")
	}
	// A copy of the binary that user nobody may execute.
	dir, err := os.MkdirTemp("", "cgdev-nobody-") // t.TempDir's parent is 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "cgdev")
	data, err := os.ReadFile(testenv.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "ran")
	cmd := exec.Command(bin, "--driver", "systemd", "run", "--", "touch", marker)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "access denied (it belongs to another user)") {
		t.Fatalf("cgdev as nobody with root's manager: %v\n%s\nwant an access-denied error", err, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran")
	}
}

// TestSystemdServiceScopes: `cgdev --driver systemd start` puts each
// service in a transient scope of its own, named after the project and the
// service, which systemctl lists; the process without a marker is in its
// service's scope. (TestStopHardCases stops them.)
func TestSystemdServiceScopes(t *testing.T) {
	cases := hardCasesFor("systemd")
	p := newDriverProject(t, "systemd", hardCaseConfig(cases))
	pids := p.startHardCases(t, cases)
	units := scopes(t, p.scopePrefix())
	if len(units) != len(cases) {
		t.Errorf("systemctl --user list-units shows %d scopes of the project: %v; want one per service (%d)", len(units), units, len(cases))
	}
	for _, c := range cases {
		if want := cgroup.UnitName(p.id, c.Name); !slices.Contains(units, want) {
			t.Errorf("no scope %s for service %s", want, c.Name)
		}
	}
	for _, name := range []string{"envless", "envless-escapee"} {
		pid := pids[name][0]
		if cg, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup"); !strings.Contains(string(cg), cgroup.UnitName(p.id, name)) {
			t.Errorf("marker-less process %d is not in the %s scope: %s", pid, name, cg)
		}
	}
	p.mustCgdev("stop")
	p.assertHardCasesStopped(t)
}

// TestSystemdServicesFoundByAuto: started with --driver systemd, the state
// files deleted, a plain `cgdev stop` (auto, which picks direct on this host)
// still finds the project's scopes through the manager and stops them, the
// marker-less processes included.
func TestSystemdServicesFoundByAuto(t *testing.T) {
	cases := hardCasesFor("systemd")
	p := newDriverProject(t, "systemd", hardCaseConfig(cases))
	p.startHardCases(t, cases)
	for _, d := range []string{".cgdev", ".pids"} {
		if err := os.RemoveAll(filepath.Join(p.dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(launcher.DriverEnv, "")
	p.mustCgdev("stop")
	p.assertHardCasesStopped(t)
}
