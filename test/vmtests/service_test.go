package vmtests_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
)

// TestServiceMemoryStatus: a service with memory_max (and tasks_max,
// cpu_quota) started by `cgdev start` runs under those limits, `cgdev status`
// reports its current and peak memory from the kernel, and `cgdev stop`
// removes its group.
func TestServiceMemoryStatus(t *testing.T) {
	inVM(t)
	dir := t.TempDir()
	conf := `driver: direct
services:
  hog:
    command: exec ` + self(t) + `
    env: {` + helperEnv + `: "alloc 40 hold"}
    ready: {log: "^alloc-done", timeout: 2m}
    memory_max: 64M
    tasks_max: 50
    cpu_quota: 50%
`
	file := filepath.Join(dir, "cgdev.yaml")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runCgdev(t, time.Minute, nil, "stop", "-f", file) })

	r := runCgdev(t, 3*time.Minute, nil, "start", "-f", file)
	t.Logf("cgdev start: exit %d after %s: %s", r.code, r.took.Round(time.Millisecond), strings.TrimSpace(r.stdout+r.stderr))
	if r.code != 0 {
		t.Fatalf("cgdev start failed:\n%s%s", r.stdout, r.stderr)
	}
	st := runCgdev(t, time.Minute, nil, "status", "-f", file)
	t.Logf("cgdev status:\n%s", strings.TrimRight(st.stdout, "\n"))
	js := runCgdev(t, time.Minute, nil, "status", "--json", "-f", file)
	var status struct {
		Services []struct {
			Name          string  `json:"name"`
			State         string  `json:"state"`
			Cgroup        string  `json:"cgroup"`
			MemoryCurrent *uint64 `json:"memory_current"`
			MemoryPeak    *uint64 `json:"memory_peak"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(js.stdout), &status); err != nil || len(status.Services) != 1 {
		t.Fatalf("cgdev status --json: %v\n%s%s", err, js.stdout, js.stderr)
	}
	s := status.Services[0]
	if s.State != "ready" || s.MemoryCurrent == nil || s.MemoryPeak == nil {
		t.Fatalf("status of hog: %+v", s)
	}
	t.Logf("status --json: memory_current=%.1f MiB memory_peak=%.1f MiB, cgroup %s",
		float64(*s.MemoryCurrent)/mib, float64(*s.MemoryPeak)/mib, s.Cgroup)
	if *s.MemoryCurrent < 40*mib || *s.MemoryCurrent > 64*mib {
		t.Errorf("memory_current %d: want between the 40 MiB held and the 64M limit", *s.MemoryCurrent)
	}
	if *s.MemoryPeak < *s.MemoryCurrent || *s.MemoryPeak > 64*mib {
		t.Errorf("memory_peak %d: want at least memory_current %d and at most 64M", *s.MemoryPeak, *s.MemoryCurrent)
	}
	g := cgroup.Dir(s.Cgroup)
	for f, want := range map[string]string{"memory.max": "67108864", "pids.max": "50", "cpu.max": "50000 100000"} {
		if got, err := g.ReadFile(f); err != nil || got != want {
			t.Errorf("service group %s = %q (%v), want %q", f, got, err, want)
		}
	}

	stop := runCgdev(t, time.Minute, nil, "stop", "-f", file)
	t.Logf("cgdev stop: exit %d after %s: %s", stop.code, stop.took.Round(time.Millisecond), strings.TrimSpace(stop.stdout+stop.stderr))
	if _, err := os.Stat(s.Cgroup); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the service's group %s survived cgdev stop (%v)", s.Cgroup, err)
	}
}

// TestServiceOOMKilled: a service with memory_max that outgrows it is
// OOM-killed by the kernel; status reports oom-killed with the limit and
// the group's peak, and under restart: on-failure it is restarted (an OOM
// kill counts as a failure) until its crash loop ends it.
func TestServiceOOMKilled(t *testing.T) {
	inVM(t)
	// sleep first: a start counts once the service has run 300 ms.
	file := startProject(t, `driver: direct
services:
  hog:
    command: sleep 1; exec `+self(t)+`
    env: {`+helperEnv+`: "alloc 64 hold"}
    memory_max: 32M
    memory_swap_max: 0
    restart: on-failure
    restart_delay: 100ms
    max_restarts: 2
  once:
    command: sleep 1; exec `+self(t)+`
    env: {`+helperEnv+`: "alloc 64 hold"}
    memory_max: 32M
    memory_swap_max: 0
  steady:
    command: exec sleep 1000
    restart: always
`)
	type exit struct {
		Signal string `json:"signal"`
		OOM    *struct {
			Limit string `json:"limit"`
			Peak  uint64 `json:"peak"`
		} `json:"oom"`
	}
	type service struct {
		Name     string `json:"name"`
		State    string `json:"state"`
		Detail   string `json:"detail"`
		Restarts int    `json:"restarts"`
		LastExit *exit  `json:"last_exit"`
	}
	var hog, once service
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) && (hog.State != "failed" || once.State != "oom-killed") {
		time.Sleep(200 * time.Millisecond)
		var st struct{ Services []service }
		statusOf(t, file, &st)
		for _, s := range st.Services {
			switch s.Name {
			case "hog":
				hog = s
			case "once":
				once = s
			}
		}
	}
	table := runCgdev(t, time.Minute, nil, "status", "-f", file)
	t.Logf("cgdev status:\n%s", strings.TrimRight(table.stdout, "\n"))
	events, _ := os.ReadFile(filepath.Join(filepath.Dir(file), ".cgdev", "events.log"))
	t.Logf("events:\n%s", events)
	if once.State != "oom-killed" || !strings.HasPrefix(once.Detail, "MemoryMax=32M, peak ") {
		t.Errorf("once (restart: no): %+v, want oom-killed (MemoryMax=32M, peak …)", once)
	}
	if hog.State != "failed" || hog.Restarts != 2 || hog.LastExit == nil || hog.LastExit.OOM == nil {
		t.Fatalf("hog (restart: on-failure): %+v, want failed after 2 restarts, the last exit an OOM kill", hog)
	}
	if o := hog.LastExit.OOM; o.Limit != "MemoryMax=32M" || o.Peak < 30*mib || o.Peak > 33*mib || hog.LastExit.Signal != "SIGKILL" {
		t.Errorf("hog's last exit: %+v %+v, want SIGKILL by the OOM killer at MemoryMax=32M with a peak near 32M", hog.LastExit, o)
	}
	if !strings.Contains(string(events), "hog: oom-killed (MemoryMax=32M, peak ") || !strings.Contains(string(events), "restarting in 100ms (restart 1)") {
		t.Errorf("events lack the OOM kill and the restart")
	}
}

// TestServiceOOMKilledUnwatched: a service with no restart:, healthcheck:
// or watch: (so no supervisor watches it) that outgrows its memory_max is
// judged oom-killed, with its limit and peak, from the kernel's evidence
// (its empty group's memory.events oom_kill), not "exited (code unknown)".
func TestServiceOOMKilledUnwatched(t *testing.T) {
	inVM(t)
	file := startProject(t, `driver: direct
services:
  hog:
    command: sleep 1; exec `+self(t)+`
    env: {`+helperEnv+`: "alloc 64 hold"}
    memory_max: 32M
    memory_swap_max: 0
`)
	type service struct {
		Name     string `json:"name"`
		State    string `json:"state"`
		Detail   string `json:"detail"`
		OOMKills int    `json:"oom_kills"`
	}
	var hog service
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) && (hog.State == "" || hog.State == "running") {
		time.Sleep(200 * time.Millisecond)
		var st struct{ Services []service }
		statusOf(t, file, &st)
		hog = st.Services[0]
	}
	table := runCgdev(t, time.Minute, nil, "status", "-f", file)
	t.Logf("cgdev status:\n%s", strings.TrimRight(table.stdout, "\n"))
	if hog.State != "oom-killed" || !strings.HasPrefix(hog.Detail, "MemoryMax=32M, peak ") || strings.Contains(hog.Detail, "unknown") || hog.OOMKills == 0 {
		t.Errorf("hog, unwatched: %+v, want oom-killed (MemoryMax=32M, peak …) with oom_kills", hog)
	}
	if !strings.Contains(table.stdout, "oom-killed (MemoryMax=32M, peak ") || strings.Contains(table.stdout, "code unknown") {
		t.Errorf("the table does not say oom-killed:\n%s", table.stdout)
	}
}

// TestMemoryNAReason: under the direct driver, a service without a memory
// limit gets no memory controller (its parent's cgroup.subtree_control lacks
// memory): status estimates its memory and says so, not that the driver
// does not report memory (it does, where the controller is enabled).
func TestMemoryNAReason(t *testing.T) {
	inVM(t)
	file := startProject(t, `driver: direct
services:
  plain:
    command: exec sleep 1000
`)
	var st struct {
		Services []struct {
			Cgroup         string `json:"cgroup"`
			MemoryEstimate bool   `json:"memory_estimate"`
			MemoryNA       string `json:"memory_na"`
		}
	}
	if statusOf(t, file, &st); len(st.Services) != 1 {
		t.Fatalf("status --json: %d services, want 1", len(st.Services))
	}
	plain := st.Services[0]
	ctrl, _ := os.ReadFile(filepath.Join(plain.Cgroup, "cgroup.controllers"))
	t.Logf("%s/cgroup.controllers: %q; memory_na: %q", plain.Cgroup, strings.TrimSpace(string(ctrl)), plain.MemoryNA)
	if strings.Contains(string(ctrl), "memory") {
		t.Fatalf("the service's group has the memory controller without a limit: the test's premise fails")
	}
	if !plain.MemoryEstimate || !strings.Contains(plain.MemoryNA, "not enabled for this group") {
		t.Errorf("memory_na %q (estimate %v), want the true reason: the memory controller is not enabled for this group", plain.MemoryNA, plain.MemoryEstimate)
	}
}

// startProject writes conf as the cgdev.yaml of a new project directory
// and starts it (stopped when the test ends); it returns the file.
func startProject(t *testing.T, conf string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "cgdev.yaml")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runCgdev(t, time.Minute, nil, "stop", "-f", file) })
	if r := runCgdev(t, 3*time.Minute, nil, "start", "-f", file); r.code != 0 {
		t.Fatalf("cgdev start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return file
}

// statusOf decodes `cgdev status --json` of the project file into v.
func statusOf(t *testing.T, file string, v any) {
	t.Helper()
	js := runCgdev(t, time.Minute, nil, "status", "--json", "-f", file)
	if err := json.Unmarshal([]byte(js.stdout), v); err != nil {
		t.Fatalf("status --json: %v\n%s", err, js.stdout)
	}
}
