package sdvmtests_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup/cgrouptest"
	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
	"github.com/cgdev/cgdev/test/vmkit"
)

// TestServicesMemoryStatus: services with memory_max (and tasks_max,
// cpu_quota) start under those limits, `cgdev status` shows the kernel's
// memory figures for them, and `cgdev stop` leaves no process and no group.
func TestServicesMemoryStatus(t *testing.T) {
	pass := inPass(t, hostPasses...)
	p := newProject(t, "mem", `services:
  hog:
    command: exec `+self(t)+`
    env: {`+vmkit.HelperEnv+`: "alloc 40 hold"}
    ready: {log: "^alloc-done", timeout: 2m}
    memory_max: 64M
    tasks_max: 50
    cpu_quota: 50%
  idle:
    command: echo $$ >> p/idle; exec sleep 1000
    memory_max: 32M
`)
	out := p.must("start")
	t.Logf("cgdev start:\n%s", strings.TrimSpace(out))
	if d := p.usedDriver(); d != wantDriver(pass) {
		t.Errorf("driver %s, want %s in the %s pass", d, wantDriver(pass), pass)
	}
	st := p.status()
	t.Logf("cgdev status:\n%s", strings.TrimSpace(p.statusText()))
	hog := st["hog"]
	if !hog.Up() || hog.MemoryCurrent == nil || hog.MemoryPeak == nil {
		t.Fatalf("status of hog: %+v", hog)
	}
	if *hog.MemoryCurrent < 40*mib || *hog.MemoryCurrent > 64*mib || *hog.MemoryPeak > 64*mib {
		t.Errorf("hog: memory_current %.1f MiB, memory_peak %.1f MiB: want between the 40 MiB it holds and the 64M limit",
			float64(*hog.MemoryCurrent)/mib, float64(*hog.MemoryPeak)/mib)
	}
	for f, want := range map[string]string{"memory.max": "67108864", "pids.max": "50", "cpu.max": "50000 100000"} {
		if got, err := os.ReadFile(filepath.Join(hog.Cgroup, f)); err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("hog's %s = %q (%v), want %q", f, got, err, want)
		}
	}
	if idle := st["idle"]; idle.State != "running" || idle.MemoryCurrent == nil {
		t.Errorf("status of idle: %+v", idle)
	}
	out = p.must("stop")
	t.Logf("cgdev stop:\n%s", strings.TrimSpace(out))
	p.assertNothingLeft("idle")
}

// TestServiceOOMReported: a service outgrowing its memory_max is killed by
// the kernel, and cgdev says so: `cgdev status` shows the kill (also under
// systemd, whose scope is gone by then), and stop then clears everything.
func TestServiceOOMReported(t *testing.T) {
	inPass(t, hostPasses...)
	p := newProject(t, "oomsvc", `services:
  hog:
    command: exec `+self(t)+`
    env: {`+vmkit.HelperEnv+`: "alloc 200 hold"}
    memory_max: 64M
  calm:
    command: exec sleep 1000
`)
	p.must("start")
	// The manager may take a moment to settle the scope after the kill.
	var st map[string]launcher.ServiceStatus
	ok := testenv.Eventually(2*time.Minute, func() bool {
		st = p.status()
		// Procs == 0: the killed process may linger a moment while the
		// kernel tears it down (status says degraded meanwhile).
		return !st["hog"].Up() && st["hog"].OOMKills > 0 && st["hog"].Procs == 0
	})
	t.Logf("cgdev status:\n%s", strings.TrimSpace(p.statusText()))
	if !ok {
		t.Fatalf("status of hog, 200 MiB under memory_max 64M: %+v, want stopped with oom_kills > 0", st["hog"])
	}
	// No supervisor watched it (no restart:, healthcheck:, watch:): the
	// kernel's evidence (oom_kill, or the scope's Result=oom-kill once
	// systemd removed its cgroup) makes it oom-killed, with the limit (the
	// peak may be gone with the cgroup: "peak unknown").
	if h := st["hog"]; h.State != "oom-killed" || !strings.HasPrefix(h.Detail, "MemoryMax=64M, peak ") {
		t.Errorf("hog: %s, want oom-killed (MemoryMax=64M, peak …)", h.StateText())
	}
	if text := p.statusText(); !strings.Contains(text, "oom-killed (MemoryMax=64M, peak ") || strings.Contains(text, "code unknown") {
		t.Errorf("cgdev status does not say oom-killed:\n%s", text)
	}
	if st["calm"].State != "running" {
		t.Errorf("the other service was affected: %+v", st["calm"])
	}
	out := p.must("stop")
	t.Logf("cgdev stop:\n%s", strings.TrimSpace(out))
	p.assertNothingLeft()
}

// TestServiceOOMRestarted: under the systemd driver, as dev (the user
// manager's scopes) and as root (the system manager's), a service outgrowing
// its memory_max is recorded as oom-killed with the limit and the group's
// peak, and under restart: on-failure it is restarted (an OOM kill is a
// failure) until its crash loop ends it; a service without a restart
// policy, watched by the same supervisor, stays oom-killed. Under systemd the
// scope is gone when the supervisor looks: the report must survive that.
func TestServiceOOMRestarted(t *testing.T) {
	// The systemd driver's passes: the direct driver's is TestServiceOOMKilled (test/vmtests).
	inPass(t, "dev", "root")
	// sleep first: a start counts once the service has run 300 ms.
	p := newProject(t, "oomrestart", `services:
  hog:
    command: sleep 1; exec `+self(t)+`
    env: {`+vmkit.HelperEnv+`: "alloc 200 hold"}
    memory_max: 64M
    restart: on-failure
    restart_delay: 100ms
    max_restarts: 1
  once:
    command: sleep 1; exec `+self(t)+`
    env: {`+vmkit.HelperEnv+`: "alloc 200 hold"}
    memory_max: 64M
`)
	p.must("start")
	var st map[string]launcher.ServiceStatus
	ok := testenv.Eventually(3*time.Minute, func() bool {
		time.Sleep(200 * time.Millisecond) // each look is a cgdev process in an emulated VM
		st = p.status()
		return st["hog"].State == "failed" && st["once"].State == "oom-killed"
	})
	t.Logf("cgdev status:\n%s", strings.TrimSpace(p.statusText()))
	events, _ := os.ReadFile(filepath.Join(p.dir, ".cgdev", "events.log"))
	t.Logf("events:\n%s", events)
	if !ok {
		t.Fatalf("hog: %+v\nonce: %+v\nwant hog failed after its restarts, once oom-killed", st["hog"], st["once"])
	}
	if once := st["once"]; !strings.HasPrefix(once.Detail, "MemoryMax=64M, peak ") {
		t.Errorf("once (restart: no): %+v, want oom-killed (MemoryMax=64M, peak …)", once)
	}
	hog := st["hog"]
	if hog.Restarts != 1 || hog.LastExit == nil || hog.LastExit.OOM == nil {
		t.Fatalf("hog (restart: on-failure): %+v, want failed after 1 restart, the last exit an OOM kill", hog)
	}
	if o := hog.LastExit.OOM; o.Limit != "MemoryMax=64M" || o.Peak < 50*mib || o.Peak > 65*mib {
		t.Errorf("hog's last exit: %+v, OOM %+v: want the limit MemoryMax=64M and a peak near it", hog.LastExit, o)
	}
	if !strings.Contains(string(events), "hog: oom-killed (MemoryMax=64M, peak ") || !strings.Contains(string(events), "restarting in 100ms (restart 1)") {
		t.Errorf("events lack the OOM kill and the restart")
	}
	p.must("stop")
	p.assertNothingLeft()
}

// TestStopHardCases: services that fork background children, setsid
// children, double-forked daemons (one that also left the session), renamed
// and stopped processes, processes ignoring SIGTERM, one forking during the
// stop and marker-less ones (cgrouptest.HardCases) leave no survivor and no
// group after `cgdev stop`.
func TestStopHardCases(t *testing.T) {
	pass := inPass(t, hostPasses...)
	p := newProject(t, "hard", cgrouptest.Config(cgrouptest.HardCases, "p/hard"))
	p.must("start")
	pids := p.waitHardCases()
	if d := p.usedDriver(); d != wantDriver(pass) {
		t.Errorf("driver %s, want %s in the %s pass", d, wantDriver(pass), pass)
	}
	// the PID is written before the exec that renames it
	if pid := pids["renamed"][0]; !testenv.Eventually(time.Minute, func() bool { return strings.HasPrefix(proc.Cmdline(pid), "vitest") }) {
		t.Errorf("renamed process shows %q", proc.Cmdline(pid))
	}
	st := p.status()
	// A double fork's service ends its main process at once; when that is
	// seen only after the start (emulation is slow), the state is degraded.
	for _, c := range cgrouptest.HardCases {
		if s := st[c.Name]; s.Procs == 0 || (s.State != "running" && s.State != "degraded") {
			t.Errorf("status of %s: %+v", c.Name, s)
		}
	}
	out := p.must("stop")
	t.Logf("cgdev stop:\n%s", strings.TrimSpace(out))
	p.assertHardCasesStopped()
}

// waitHardCases waits until every hard case has written its PIDs and
// returns them.
func (p *project) waitHardCases() map[string][]int {
	p.t.Helper()
	file := filepath.Join(p.dir, "p", "hard")
	var pids map[string][]int
	if !testenv.Eventually(time.Minute, func() bool {
		pids = cgrouptest.ReadPIDs(file)
		return cgrouptest.Started(cgrouptest.HardCases, pids) && len(pids["forker"]) >= 3
	}) {
		p.t.Fatalf("the hard cases did not all start: %v", pids)
	}
	return pids
}

// assertHardCasesStopped fails for every PID the hard cases wrote that is
// still the project's, and for anything else the project left.
func (p *project) assertHardCasesStopped() {
	p.t.Helper()
	for name, ps := range cgrouptest.ReadPIDs(filepath.Join(p.dir, "p", "hard")) {
		for _, pid := range ps {
			if p.ours(pid) {
				p.t.Errorf("PID %d of the hard case %s survived the stop: %s", pid, name, proc.Cmdline(pid))
			}
		}
	}
	p.assertNothingLeft()
}

// TestStopWithoutStateFiles: with .cgdev/ and .pids/ deleted, stop still
// finds every group (through the kernel or the manager) and leaves nothing.
func TestStopWithoutStateFiles(t *testing.T) {
	inPass(t, hostPasses...)
	p := newProject(t, "nostate", cgrouptest.Config(cgrouptest.HardCases, "p/hard"))
	p.must("start")
	p.waitHardCases()
	for _, d := range []string{".cgdev", ".pids"} {
		if err := os.RemoveAll(filepath.Join(p.dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	if s := p.status()["daemon"]; s.State != "running" {
		t.Errorf("status without state files: daemon %+v", s)
	}
	out := p.must("stop")
	t.Logf("cgdev stop without state files:\n%s", strings.TrimSpace(out))
	p.assertHardCasesStopped()
}

// TestUsersDoNotSeeEachOther: three users (root, dev, dev2) run a project
// each; each user's status lists only its own services, and each user's stop
// leaves the others' running.
func TestUsersDoNotSeeEachOther(t *testing.T) {
	inPass(t, "root", "root-delegate")
	if out, err := vmkit.Within(time.Minute, "systemctl", "start", "user@1001.service"); err != nil {
		t.Fatalf("starting dev2's user manager: %v %s", err, out)
	}
	config := "services:\n  app:\n    command: echo $$ >> p/app; exec sleep 1000\n"
	projects := map[string]*project{
		"root": newProject(t, "app", config),
		"dev":  newProject(t, "app", config).owned("dev"),
		"dev2": newProject(t, "app", config).owned("dev2"),
	}
	order := []string{"root", "dev", "dev2"}
	for _, u := range order {
		projects[u].must("start")
		projects[u].waitPids("app", 1)
	}
	for _, u := range order {
		p := projects[u]
		var others []string
		for _, o := range order {
			if o != u {
				others = append(others, projects[o].tag)
			}
		}
		out := p.statusText()
		for _, tag := range others {
			if strings.Contains(out, tag) {
				t.Errorf("%s's status shows another user's project %s:\n%s", u, tag, out)
			}
		}
		if p.status()["app"].State != "running" {
			t.Errorf("%s's status does not show its own app running", u)
		}
	}
	for i, u := range order {
		out := projects[u].must("stop")
		t.Logf("%s: cgdev stop:\n%s", u, strings.TrimSpace(out))
		projects[u].assertNothingLeft("app")
		for _, o := range order[i+1:] {
			if pids := projects[o].pids("app"); !projects[o].ours(pids[0]) {
				t.Errorf("%s's stop stopped %s's app (PID %d)", u, o, pids[0])
			}
		}
	}
}

// TestMemoryNAInDelegation: under the direct driver in a delegated subtree,
// a service without a memory limit gets no memory controller (cgdev
// enables it where a limit needs it); status estimates its memory and says
// that truly, not that the driver does not report memory.
func TestMemoryNAInDelegation(t *testing.T) {
	inPass(t, "dev-delegate", "root-delegate")
	p := newProject(t, "memna", `services:
  plain:
    command: exec sleep 1000
`)
	p.must("start")
	plain := p.status()["plain"]
	t.Logf("cgdev status:\n%s", strings.TrimSpace(p.statusText()))
	ctrl, err := os.ReadFile(filepath.Join(plain.Cgroup, "cgroup.controllers"))
	if err != nil || strings.Contains(string(ctrl), "memory") {
		t.Fatalf("%s/cgroup.controllers: %q, %v: want a group without the memory controller", plain.Cgroup, ctrl, err)
	}
	if !plain.MemoryEstimate || !strings.Contains(plain.MemoryNA, "not enabled for this group") {
		t.Errorf("memory_na %q (estimate %v), want the true reason: the memory controller is not enabled for this group", plain.MemoryNA, plain.MemoryEstimate)
	}
	p.must("stop")
	p.assertNothingLeft()
}
