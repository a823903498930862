package e2e_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup/cgrouptest"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// drivers are the --driver values every stop test runs with.
var drivers = []string{"direct", "systemd", "fallback"}

// newDriverProject is newSvcProject with every cgdev call using driver
// ($CGDEV_DRIVER). For systemd it skips when no user manager answers, and
// fails if a scope of the project outlives the test.
func newDriverProject(t *testing.T, driver, config string) *svcProject {
	t.Helper()
	if driver == "systemd" {
		needUserManager(t)
	}
	t.Setenv(launcher.DriverEnv, driver)
	p := newSvcProject(t, config)
	if driver == "systemd" {
		t.Cleanup(func() { assertNoScopes(t, p.scopePrefix()) })
	}
	return p
}

// scopePrefix is what the unit names of the project's scopes start with
// (the project id, escaped).
func (p *svcProject) scopePrefix() string { return testenv.ScopePrefix(p.id) }

// forEachDriver runs test once per driver, in a subtest named after it.
func forEachDriver(t *testing.T, test func(t *testing.T, driver string)) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) { test(t, driver) })
	}
}

// hardCasesFor are the hard cases driver must follow: all of them, but for
// the fallback driver's documented exception (cgrouptest.HardCase.Untracked).
func hardCasesFor(driver string) []cgrouptest.HardCase {
	return slices.DeleteFunc(slices.Clone(cgrouptest.HardCases), func(c cgrouptest.HardCase) bool {
		return c.Untracked && driver == "fallback"
	})
}

// hardCaseConfig is a project with one service per hard case, each writing
// its PIDs to p/hard.
func hardCaseConfig(cases []cgrouptest.HardCase) string { return cgrouptest.Config(cases, "p/hard") }

// startHardCases starts the hard-case project and returns every PID the
// cases wrote, each killed when the test ends in case cgdev failed to.
func (p *svcProject) startHardCases(t *testing.T, cases []cgrouptest.HardCase) map[string][]int {
	t.Helper()
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("bash is not installed (a hard case renames itself with exec -a)")
	}
	p.mustCgdev("start")
	file := filepath.Join(p.dir, "p", "hard")
	var pids map[string][]int
	if !testenv.Eventually(10*time.Second, func() bool {
		pids = cgrouptest.ReadPIDs(file)
		return cgrouptest.Started(cases, pids)
	}) {
		t.Fatalf("the hard cases did not all start: %v", pids)
	}
	for _, ps := range pids {
		for _, pid := range ps {
			testenv.KillOnCleanup(t, pid)
		}
	}
	return pids
}

// assertHardCasesStopped fails for every PID the cases wrote that still runs.
func (p *svcProject) assertHardCasesStopped(t *testing.T) {
	t.Helper()
	for name, ps := range cgrouptest.ReadPIDs(filepath.Join(p.dir, "p", "hard")) {
		for _, pid := range ps {
			if testenv.Alive(pid) {
				t.Errorf("PID %d of the hard case %s survived the stop: %s", pid, name, testenv.Cmdline(pid))
			}
		}
	}
	p.assertNothingLeft()
}

// killedInPhase2 lists the services the [2/5] line of a stop report says
// needed the kill after their grace.
func killedInPhase2(out string) []string {
	var killed []string
	for _, line := range strings.Split(out, "\n") {
		_, list, ok := strings.Cut(line, "[2/5] wait: ")
		if !ok {
			continue
		}
		if _, k, ok := strings.Cut(list, "killed (SIGKILL to the whole group, cgroup.kill where it is a cgroup): "); ok {
			for _, item := range strings.Split(k, ", ") {
				if name, _, ok := strings.Cut(item, " (still running"); ok {
					killed = append(killed, name)
				}
			}
		}
	}
	slices.Sort(killed)
	return killed
}

// TestStopHardCases, with each driver: services that fork background
// children, setsid children, double-forked daemons (one that also left the
// session), renamed processes, a stopped process, processes ignoring
// SIGTERM, one forking while it is stopped and processes without a marker
// all run, status sees them, and stop leaves none of them, kills only the
// services that ignore SIGTERM, and never touches a bystander. Without the
// state files, and with .pids naming the bystander, the same.
func TestStopHardCases(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		for _, stateless := range []bool{false, true} {
			t.Run(map[bool]string{false: "with state", true: "without state"}[stateless], func(t *testing.T) {
				cases := hardCasesFor(driver)
				p := newDriverProject(t, driver, hardCaseConfig(cases))
				bystander := startStranger(t, t.TempDir(), "vitest")
				p.startHardCases(t, cases)
				st := p.statusJSON()
				for _, c := range cases {
					if st[c.Name].State != "running" || st[c.Name].Procs == 0 {
						t.Errorf("status of %s: %+v", c.Name, st[c.Name])
					}
				}
				if st["daemon"].Procs != 1 {
					t.Errorf("daemon: %d processes, want the one double-forked sleep", st["daemon"].Procs)
				}
				if stateless {
					p.forgetState(bystander.Process.Pid)
				}
				out := p.mustCgdev("stop")
				var wantKilled []string
				for _, c := range cases {
					if c.IgnoresTERM {
						wantKilled = append(wantKilled, c.Name)
					}
				}
				slices.Sort(wantKilled)
				if got := killedInPhase2(out); !slices.Equal(got, wantKilled) {
					t.Errorf("the stop killed %v; want %v, which ignore SIGTERM:\n%s", got, wantKilled, out)
				}
				if driver == "fallback" && !strings.Contains(out, "found by the marker:") {
					t.Errorf("the report does not name the processes found only by their marker:\n%s", out)
				}
				p.assertHardCasesStopped(t)
				if !testenv.Alive(bystander.Process.Pid) {
					t.Errorf("the bystander vitest (PID %d, outside the project, no marker) was killed", bystander.Process.Pid)
				}
			})
		}
	})
}

// forgetState deletes .cgdev/ and writes .pids files naming pid, an
// unrelated process (as a recycled PID would be), for every service.
func (p *svcProject) forgetState(pid int) {
	p.t.Helper()
	if err := os.RemoveAll(filepath.Join(p.dir, ".cgdev")); err != nil {
		p.t.Fatal(err)
	}
	line := strconv.Itoa(pid)
	for name, content := range map[string]string{
		"services.pids":          line + "\n",
		"services.pids.groups":   line + ":background:" + line + "\n",
		"services.pids.services": "background:" + line + "\n",
	} {
		if err := os.WriteFile(filepath.Join(p.dir, ".pids", name), []byte(content), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
}

// TestStopContinuesStoppedProcesses: a stopped process (SIGSTOP, Ctrl-Z)
// keeps the stop signal pending until it is continued. Phase 1 sends SIGCONT
// after the stop signal, so the service exits on it at once instead of
// sitting out its 5 s grace and being killed.
func TestStopContinuesStoppedProcesses(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, `grace: 5s
services:
  paused:
    command: 'echo $$ >> p/paused; exec sleep 1000'
`)
		p.mustCgdev("start")
		pid := p.waitPids("paused", 1)[0]
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		if !testenv.Eventually(5*time.Second, func() bool { return testenv.State(pid) == 'T' }) {
			t.Fatalf("PID %d did not stop (state %c)", pid, testenv.State(pid))
		}
		out := p.mustCgdev("stop")
		if !strings.Contains(out, "[2/5] wait: exited: paused in ") {
			t.Errorf("the stopped service was not ended by its stop signal:\n%s", out)
		}
		p.assertNothingLeft("paused")
	})
}

// TestRunReapsHardCases, with each driver: `cgdev run` passes the command's
// exit status through and, once it has exited, stops what it left in its
// group: every hard case, the ones ignoring SIGTERM with SIGKILL after
// --grace; no group is left.
func TestRunReapsHardCases(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		h := testenv.CgroupBase(t)
		if driver == "systemd" {
			needUserManager(t)
		}
		if _, err := os.Stat("/bin/bash"); err != nil {
			t.Skip("bash is not installed (a hard case renames itself with exec -a)")
		}
		// Not the stopped case here: when the command exits, its process
		// group, holding a stopped process, is orphaned, and the kernel
		// sends the whole group SIGHUP (and SIGCONT), which would end the
		// SIGTERM-ignoring cases before cgdev could show it kills them.
		cases := slices.DeleteFunc(hardCasesFor(driver), func(c cgrouptest.HardCase) bool { return c.Name == "stopped" })
		var script strings.Builder
		for _, c := range cases {
			script.WriteString(c.Script + "\n")
		}
		fmt.Fprintf(&script, `until [ "$(cut -d' ' -f1 "$%s" | sort -u | wc -l)" -ge %d ]; do sleep 0.01; done; exit 3`, cgrouptest.PIDsEnv, len(cases))
		dir := t.TempDir()
		file := filepath.Join(dir, "pids")
		name, part := runName("reap-")
		cmd := exec.Command(testenv.Binary(t), "--driver", driver, "run", "--name", name, "--grace", "200ms", "--", "sh", "-c", script.String())
		cmd.Dir, cmd.Env = dir, append(os.Environ(), cgrouptest.PIDsEnv+"="+file)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		pids := cgrouptest.ReadPIDs(file)
		for _, ps := range pids {
			for _, pid := range ps {
				testenv.KillOnCleanup(t, pid)
			}
		}
		if code := cmd.ProcessState.ExitCode(); code != 3 {
			t.Errorf("cgdev --driver %s run: %v (exit %d); want the command's exit status 3; stderr:\n%s", driver, err, code, &stderr)
		}
		if !cgrouptest.Started(cases, pids) {
			t.Fatalf("the hard cases did not all start: %v", pids)
		}
		for name, ps := range pids {
			for _, pid := range ps {
				if testenv.Alive(pid) {
					t.Errorf("PID %d of the hard case %s survived the run: %s", pid, name, testenv.Cmdline(pid))
				}
			}
		}
		if !strings.Contains(stderr.String(), "leftover process(es) with SIGKILL after the 200ms grace period") {
			t.Errorf("stderr does not report the leftovers killed after the grace:\n%s", &stderr)
		}
		switch driver {
		case "direct":
			assertNoGroups(t, h)
		case "systemd":
			assertNoScopes(t, part)
		}
	})
}
