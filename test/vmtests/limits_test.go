package vmtests_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/test/testenv"
	"github.com/cgdev/cgdev/test/vmkit"
)

// TestVMKernel records what the test bed offers, so a failure elsewhere can be
// told apart from a test bed that lacks a controller.
func TestVMKernel(t *testing.T) {
	h := inVM(t)
	root := cgroup.Dir(h.Cgroup2Mount)
	ctrl, _ := root.ReadFile("cgroup.controllers")
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !h.Has(c) {
			t.Errorf("controller %s missing from %s", c, ctrl)
		}
	}
	var uts syscall.Utsname
	syscall.Uname(&uts)
	rel := make([]byte, 0, len(uts.Release))
	for _, c := range uts.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	swaps, _ := os.ReadFile("/proc/swaps")
	t.Logf("kernel %s, mode %s, cgroup2 at %s, controllers: %s; base %s; swap devices: %d",
		rel, h.Mode, h.Cgroup2Mount, ctrl, h.Base, strings.Count(string(swaps), "\n")-1)
}

// TestMemoryMaxOOMKill: a program allocating 200 MB under MemoryMax=64M is
// killed by the kernel inside its group; cgdev says so with the limit and the
// peak, and exits 137. Nothing outside the group is touched.
func TestMemoryMaxOOMKill(t *testing.T) {
	inVM(t)
	needNoSwap(t)
	bystander := exec.Command("/bin/sleep", "1000")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, bystander.Process.Pid)
	oomBefore := vmstat(t, "oom_kill")

	r := runCgdev(t, 90*time.Second, []string{helperEnv + "=alloc 200"},
		"run", "--name", "oom", "-p", "MemoryMax=64M", "--", self(t))
	oomKills := vmstat(t, "oom_kill") - oomBefore
	t.Logf("exit %d after %s; OOM kills in the VM: %d; stderr: %s", r.code, r.took.Round(time.Millisecond), oomKills, strings.TrimSpace(r.stderr))
	if strings.Contains(r.stdout, "alloc-done") {
		t.Errorf("the allocator got all 200 MiB under MemoryMax=64M:\n%s", r.stdout)
	}
	if r.code != 137 {
		t.Errorf("exit status %d, want 137 (SIGKILL by the OOM killer)", r.code)
	}
	m := regexp.MustCompile(`cgdev: OOM: the kernel killed (\d+) process\(es\) of this run for exceeding MemoryMax=64M \(peak memory ([0-9.]+)M\)`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no OOM report naming MemoryMax=64M and the peak in cgdev's stderr:\n%s", r.stderr)
	}
	var peak float64
	fmt.Sscan(m[2], &peak)
	if peak < 56 || peak > 64 {
		t.Errorf("reported peak %sM, want just under the 64M limit", m[2])
	}
	if oomKills != 1 {
		t.Errorf("%d OOM kills in the whole VM, want exactly 1 (the allocator)", oomKills)
	}
	if !testenv.Alive(bystander.Process.Pid) {
		t.Error("a process outside the group died too")
	}
}

// TestMemoryHighThrottles: MemoryHigh=32M makes the kernel reclaim (to swap)
// and slow the allocator down instead of killing it: memory.events counts
// "high" events, no OOM kill, and the group's resident memory stays near 32M
// although the program holds 96 MiB.
func TestMemoryHighThrottles(t *testing.T) {
	inVM(t)
	needSwap(t)
	r := runCgdev(t, 3*time.Minute, []string{helperEnv + "=alloc 96"},
		"run", "--name", "high", "-p", "MemoryHigh=32M", "--", self(t))
	if r.code != 0 {
		t.Fatalf("exit %d, want 0 (memory.high never kills)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	rep := fields(vmkit.LineWith(t, r.stdout, "alloc-done"))
	high, oom := num(t, rep, "memory.events.high"), num(t, rep, "memory.events.oom_kill")
	cur, swapped := num(t, rep, "memory.current"), num(t, rep, "memory.swap.current")
	t.Logf("96 MiB allocated in %s ms: memory.events high=%d oom_kill=%d, memory.current=%.1f MiB, memory.swap.current=%.1f MiB",
		rep["ms"], high, oom, float64(cur)/mib, float64(swapped)/mib)
	if high == 0 {
		t.Error("memory.events high = 0: the group never went over memory.high")
	}
	if oom != 0 {
		t.Errorf("memory.events oom_kill = %d under memory.high alone", oom)
	}
	if cur > 40*mib {
		t.Errorf("memory.current %.1f MiB with MemoryHigh=32M: not held back", float64(cur)/mib)
	}
	if swapped < 48*mib {
		t.Errorf("memory.swap.current %.1f MiB: the excess was not reclaimed to swap", float64(swapped)/mib)
	}
}

// TestMemorySwapMax: with swap present, MemorySwapMax=0 takes it away. The same
// 128 MiB allocation under MemoryMax=64M survives when the group may swap and
// is OOM-killed when it may not.
func TestMemorySwapMax(t *testing.T) {
	inVM(t)
	needSwap(t)
	env := []string{helperEnv + "=alloc 128"}
	may := runCgdev(t, 3*time.Minute, env, "run", "--name", "swap-ok", "-p", "MemoryMax=64M", "--", self(t))
	if may.code != 0 {
		t.Fatalf("with swap allowed: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", may.code, may.stdout, may.stderr)
	}
	rep := fields(vmkit.LineWith(t, may.stdout, "alloc-done"))
	t.Logf("MemoryMax=64M, swap allowed: 128 MiB held, memory.swap.current=%.1f MiB, exit 0",
		float64(num(t, rep, "memory.swap.current"))/mib)

	not := runCgdev(t, 3*time.Minute, env, "run", "--name", "swap-no", "-p", "MemoryMax=64M", "-p", "MemorySwapMax=0", "--", self(t))
	t.Logf("MemoryMax=64M MemorySwapMax=0: exit %d; %s", not.code, strings.TrimSpace(not.stderr))
	if not.code != 137 || !strings.Contains(not.stderr, "cgdev: OOM:") {
		t.Errorf("with MemorySwapMax=0: exit %d, want 137 with an OOM report\nstdout:\n%s\nstderr:\n%s", not.code, not.stdout, not.stderr)
	}
}

func needSwap(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/swaps")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(b), "\n") < 2 {
		t.Skip("no swap in this VM (the harness gives one with run-in-vm.sh -S)")
	}
}

// needNoSwap skips tests whose program would be swapped out rather than
// killed: MemoryMax limits RAM only, as in systemd (TestMemorySwapMax shows it).
func needNoSwap(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/swaps")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(b), "\n") >= 2 {
		t.Skip("this VM has swap: MemoryMax alone would swap the excess out instead of OOM-killing (vmtest.sh runs this test in a boot without swap)")
	}
}

// TestTasksMaxForkBomb: under TasksMax=50 a program trying to start 200
// processes gets EAGAIN once the group holds 50 tasks; the VM stays responsive
// and stopping cgdev removes everything.
func TestTasksMaxForkBomb(t *testing.T) {
	h := inVM(t)
	b := startCgdev(t, []string{helperEnv + "=forkbomb 200"},
		"run", "--name", "bomb", "--grace", "1s", "-p", "TasksMax=50", "--", self(t))
	rep := fields(b.line(t, "forkbomb-done", 2*time.Minute))
	g := runGroup(t, h, "bomb")
	started, failed := num(t, rep, "started"), num(t, rep, "failed")
	current, refused := num(t, rep, "pids.current"), flatKey(t, g, "pids.events", "max")
	t.Logf("TasksMax=50: %d processes started, %d forks refused (%s); pids.current=%d, pids.max=%s, pids.events max=%d",
		started, failed, rep["first_errno"], current, rep["pids.max"], refused)
	if failed == 0 {
		t.Error("no fork failed: the fork bomb was not contained")
	}
	if rep["pids.max"] != "50" || current > 50 {
		t.Errorf("pids.max=%s pids.current=%d, want 50 and at most 50", rep["pids.max"], current)
	}
	if refused == 0 {
		t.Error("pids.events max = 0: the kernel never refused a fork")
	}
	if rep["first_errno"] != "EAGAIN" {
		t.Errorf("the first refused fork failed with %s, want EAGAIN", rep["first_errno"])
	}
	// The VM outside the group still forks.
	if out, err := exec.Command("/bin/sh", "-c", "echo alive").Output(); err != nil || string(out) != "alive\n" {
		t.Fatalf("forking outside the group failed: %q %v", out, err)
	}
	code, took := b.stop(t, syscall.SIGTERM, time.Minute)
	t.Logf("SIGTERM to cgdev: exited %d after %s; stderr: %s", code, took.Round(time.Millisecond), strings.TrimSpace(b.Stderr.String()))
	if _, err := os.Stat(string(g)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("group %s still exists after the stop (err %v)", g, err)
	}
	for _, p := range strings.Split(rep["pids"], ",") {
		var pid int
		fmt.Sscan(p, &pid)
		if pid > 0 && testenv.Alive(pid) {
			t.Errorf("process %d of the bomb survived the stop", pid)
		}
	}
}

// TestCPUQuota: CPUQuota=50% holds a busy loop to half of its time,
// measured by cpu.stat over a window as used against used + throttled (the
// guest kernel's clock, which the host's load does not skew as it skews CPU
// time against the VM's wall clock), throttled in most periods; an
// unlimited loop in the same VM is never throttled.
func TestCPUQuota(t *testing.T) {
	h := inVM(t)
	window := 4 * time.Second
	free := busyCPU(t, h, "spin-free", window)
	var limited vmkit.CPUStat
	func() {
		b := startCgdev(t, []string{helperEnv + "=busy"}, "run", "--name", "spin-half", "--grace", "1s", "-p", "CPUQuota=50%", "--", self(t))
		b.line(t, "busy:", time.Minute)
		g := runGroup(t, h, "spin-half")
		if v, _ := g.ReadFile("cpu.max"); v != "50000 100000" {
			t.Errorf("cpu.max = %q, want \"50000 100000\"", v)
		}
		limited = vmkit.CPUOver(t, string(g), window)
		b.stop(t, syscall.SIGTERM, time.Minute)
	}()
	t.Logf("busy loop, unlimited: %s", free)
	t.Logf("busy loop, CPUQuota=50%%: %s", limited)
	vmkit.CheckQuota(t, "CPUQuota=50%", limited, 0.5)
	if free.NrThrottled != 0 || free.ThrottledUsec != 0 {
		t.Errorf("the unlimited loop was throttled (%s): the throttling is not the quota's doing", free)
	}
	if free.WallShare() < 0.15 {
		t.Errorf("the unlimited loop got only %.0f%% of a CPU: the VM is starved, the measurement says nothing", free.WallShare()*100)
	}
}

// busyCPU runs an unlimited busy loop under cgdev and returns its cpu.stat over window.
func busyCPU(t *testing.T, h *cgroup.Host, name string, window time.Duration) vmkit.CPUStat {
	b := startCgdev(t, []string{helperEnv + "=busy"}, "run", "--name", name, "--grace", "1s", "--", self(t))
	b.line(t, "busy:", time.Minute)
	cpu := vmkit.CPUOver(t, string(runGroup(t, h, name)), window)
	b.stop(t, syscall.SIGTERM, time.Minute)
	return cpu
}

// TestLimitsReadBack: every limit of a running service's group reads back
// from its cgroup2 file exactly as cgdev was told.
func TestLimitsReadBack(t *testing.T) {
	h := inVM(t)
	var l cgroup.Limits
	for _, p := range []string{"MemoryMax=64M", "MemoryHigh=48M", "MemorySwapMax=0", "TasksMax=50", "CPUQuota=50%", "CPUWeight=200"} {
		if err := l.Set(p); err != nil {
			t.Fatal(err)
		}
	}
	g, _ := startService(t, h, "readback", "svc", l)
	want := map[string]string{
		"memory.max":      "67108864",
		"memory.high":     "50331648",
		"memory.swap.max": "0",
		"pids.max":        "50",
		"cpu.max":         "50000 100000",
		"cpu.weight":      "200",
	}
	for _, f := range sortedKeys(want) {
		got, err := cgroup.Dir(g.Path()).ReadFile(f)
		if err != nil || got != want[f] {
			t.Errorf("%s = %q (%v), want %q", f, got, err, want[f])
		} else {
			t.Logf("%s = %s", f, got)
		}
	}
}

// TestEachLimitAlone: each of the seven limits set on its own reaches its
// file. A limit with no typed field in the runtime spec (memory.high,
// memory.swap.max, cpu.weight, io.weight) must still get its controller
// enabled for the group.
func TestEachLimitAlone(t *testing.T) {
	h := inVM(t)
	for _, c := range []struct{ prop, file, want string }{
		{"MemoryMax=64M", "memory.max", "67108864"},
		{"MemoryHigh=48M", "memory.high", "50331648"},
		{"MemorySwapMax=0", "memory.swap.max", "0"},
		{"TasksMax=50", "pids.max", "50"},
		{"CPUQuota=50%", "cpu.max", "50000 100000"},
		{"CPUWeight=200", "cpu.weight", "200"},
		{"IOWeight=300", "io.weight", "default 300"},
	} {
		t.Run(c.file, func(t *testing.T) {
			var l cgroup.Limits
			if err := l.Set(c.prop); err != nil {
				t.Fatal(err)
			}
			drv, err := cgroup.NewDirect(h)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("/bin/sleep", "1000")
			g, err := drv.Start(context.Background(), cgroup.Spec{Project: "alone", Name: "svc", Limits: l}, cmd)
			if err != nil {
				t.Fatalf("%s alone: %v", c.prop, err)
			}
			go cmd.Wait()
			defer cleanup.StopGroup(context.Background(), g, syscall.SIGKILL, 0)
			got, err := cgroup.Dir(g.Path()).ReadFile(c.file)
			if err != nil || got != c.want {
				t.Errorf("%s alone: %s = %q (%v), want %q", c.prop, c.file, got, err, c.want)
			}
		})
	}
}

func sortedKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// startService starts /bin/sleep as service name of project with the direct
// driver, and stops it when the test ends.
func startService(t *testing.T, h *cgroup.Host, project, name string, l cgroup.Limits) (cgroup.Group, *exec.Cmd) {
	t.Helper()
	drv, err := cgroup.NewDirect(h)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sleep", "1000")
	g, err := drv.Start(context.Background(), cgroup.Spec{Project: project, Name: name, Limits: l}, cmd)
	if err != nil {
		t.Fatalf("starting %s/%s with %s: %v", project, name, &l, err)
	}
	go cmd.Wait()
	t.Cleanup(func() {
		if _, err := cleanup.StopGroup(context.Background(), g, syscall.SIGTERM, time.Second); err != nil {
			t.Errorf("stopping %s: %v", g.Path(), err)
		}
	})
	return g, cmd
}

// TestCloneIntoCgroupLeaf: with memory, pids and cpu enabled down the tree,
// services start straight into their leaf groups with clone3(CLONE_INTO_CGROUP)
// (no gate, no EBUSY), and the project directory holds no process, as the
// "no internal processes" rule demands.
func TestCloneIntoCgroupLeaf(t *testing.T) {
	h := inVM(t)
	var l cgroup.Limits
	for _, p := range []string{"MemoryMax=64M", "TasksMax=50", "CPUQuota=50%"} {
		if err := l.Set(p); err != nil {
			t.Fatal(err)
		}
	}
	var groups []cgroup.Group
	for _, name := range []string{"web", "worker"} {
		g, cmd := startService(t, h, "leafy", name, l)
		if cmd.Path != "/bin/sleep" {
			t.Errorf("%s: started through %s: the CLONE_INTO_CGROUP start was refused and the gate used", name, cmd.Path)
		}
		procs, _ := cgroup.Dir(g.Path()).ReadFile("cgroup.procs")
		if procs != fmt.Sprint(cmd.Process.Pid) {
			t.Errorf("%s: cgroup.procs = %q, want only %d", name, procs, cmd.Process.Pid)
		}
		own, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
		t.Logf("%s: pid %d in %s", name, cmd.Process.Pid, strings.TrimSpace(string(own)))
		groups = append(groups, g)
	}
	project := cgroup.Dir(filepath.Dir(groups[0].Path()))
	sub, _ := project.ReadFile("cgroup.subtree_control")
	procs, _ := project.ReadFile("cgroup.procs")
	t.Logf("project group %s: subtree_control %q, cgroup.procs %q", project, sub, procs)
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !strings.Contains(" "+sub+" ", " "+c+" ") {
			t.Errorf("%s not enabled for the services (subtree_control %q)", c, sub)
		}
	}
	if procs != "" {
		t.Errorf("the project group holds processes: %q", procs)
	}
	// The rule is live: a process cannot join the project group itself.
	probe := exec.Command("/bin/sleep", "1000")
	if err := probe.Start(); err != nil {
		t.Fatal(err)
	}
	err := project.WriteFile("cgroup.procs", fmt.Sprint(probe.Process.Pid))
	probe.Process.Kill()
	probe.Wait()
	if !errors.Is(err, syscall.EBUSY) {
		t.Errorf("moving a process into the project group: %v, want EBUSY (no internal processes)", err)
	} else {
		t.Logf("moving a process into the project group itself: %v", err)
	}
}

// TestRefusedWithoutMemoryDelegation: where the memory controller is not
// delegated to cgdev's base, a MemoryMax run is refused before anything starts,
// as on a hybrid host, while a pids limit in the same place works.
func TestRefusedWithoutMemoryDelegation(t *testing.T) {
	h := inVM(t)
	// /nomem-X enables pids only for its children; cgdev's base lives below them.
	top := cgroup.Dir(filepath.Join(h.Cgroup2Mount, filepath.Base(h.Base)+"-nomem"))
	if err := os.Mkdir(string(top), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.RemoveCgroupTree(t, string(top)) })
	if err := cgroup.Dir(h.Cgroup2Mount).WriteFile("cgroup.subtree_control", "+pids"); err != nil {
		t.Fatal(err)
	}
	if err := top.WriteFile("cgroup.subtree_control", "+pids"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(string(top), "deleg"), 0o755); err != nil {
		t.Fatal(err)
	}
	base := strings.TrimPrefix(filepath.Join(string(top), "deleg", "cgdev"), h.Cgroup2Mount)
	env := []string{cgroup.BaseEnv + "=" + base}

	r := runCgdev(t, time.Minute, env, "run", "--name", "refused", "-p", "MemoryMax=64M", "--", "/bin/sh", "-c", "echo ran")
	t.Logf("MemoryMax=64M with base %s: exit %d: %s", base, r.code, strings.TrimSpace(r.stderr))
	if r.code == 0 || strings.Contains(r.stdout, "ran") {
		t.Errorf("the command ran (exit %d, stdout %q)", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, "MemoryMax cannot be enforced") || !strings.Contains(r.stderr, "not delegated") {
		t.Errorf("stderr does not explain the refusal:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(h.Cgroup2Mount, base)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused run left %s behind", base)
	}

	ok := runCgdev(t, time.Minute, env, "run", "--name", "allowed", "-p", "TasksMax=50", "--", "/bin/sh", "-c", "echo ran")
	if ok.code != 0 || ok.stdout != "ran\n" {
		t.Errorf("TasksMax=50 in the same place: exit %d, stdout %q, stderr %s", ok.code, ok.stdout, ok.stderr)
	}
}
