package sdvmtests_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/vmkit"
)

// image is the busybox image guest.sh imports (no registry is reachable).
const image = "local/busybox"

// inContainer runs script with busybox's sh in a fresh container of image,
// /sdvm (cgdev and this test binary) mounted at the same place.
func inContainer(t *testing.T, privileged bool, env []string, script string) vmkit.Result {
	t.Helper()
	args := []string{"run", "--rm", "--network", "none", "-v", "/sdvm:/sdvm", "-e", "CGDEV_BIN=/sdvm/cgdev"}
	if privileged {
		args = append(args, "--privileged")
	}
	for _, kv := range env {
		args = append(args, "-e", kv)
	}
	args = append(args, image, "/bin/sh", "-c", script)
	return vmkit.Run(t, 5*time.Minute, cmdOf("docker", args...))
}

// TestContainerDefault: in `docker run` as Docker starts containers by
// default (a private cgroup namespace, /sys/fs/cgroup read-only), auto picks
// the fallback driver by itself, doctor says why and what would give cgdev
// cgroups, `cgdev run` passes the exit status and reaps what its command
// left, and a limit is refused with the reason.
func TestContainerDefault(t *testing.T) {
	inPass(t, "docker")
	r := inContainer(t, false, nil, `/sdvm/cgdev doctor --json > /tmp/doctor.json; cat /tmp/doctor.json; echo ---; /sdvm/cgdev doctor`)
	t.Logf("cgdev doctor in a default container:\n%s", r.Stdout[strings.Index(r.Stdout, "---")+4:])
	d := parseDoctor(t, r.Stdout[:strings.Index(r.Stdout, "---")])
	if d.Driver != "fallback" {
		t.Errorf("driver %s (%s), want fallback", d.Driver, d.DriverWhy)
	}
	if !strings.Contains(d.DriverWhy, "read-only") {
		t.Errorf("the driver's reason does not name the read-only cgroup mount: %s", d.DriverWhy)
	}
	if ok, detail, fix := d.check(t, "cgroupfs_writable"); ok || !strings.Contains(detail, "read-only") || !strings.Contains(fix, "--privileged") {
		t.Errorf("cgroupfs_writable: ok=%v %s (fix: %s)", ok, detail, fix)
	}
	if ok, detail, _ := d.check(t, "cgroup_namespace"); !ok || !strings.Contains(detail, "private cgroup namespace") {
		t.Errorf("cgroup_namespace: %s", detail)
	}

	r = inContainer(t, false, nil, `/sdvm/cgdev run -- sh -c 'sleep 1000 & echo $! > /tmp/left; exit 3'
echo "rc=$?"
if kill -0 $(cat /tmp/left) 2>/dev/null; then echo leftover-alive; else echo leftover-gone; fi
/sdvm/cgdev run -p MemoryMax=32M -- echo ran; echo "limited rc=$?"`)
	t.Logf("in a default container:\n%s%s", r.Stdout, r.Stderr)
	for _, want := range []string{"rc=3", "leftover-gone", "limited rc=1"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("no %q in:\n%s", want, r.Stdout)
		}
	}
	if strings.Contains(r.Stdout, "\nran") || !strings.Contains(r.Stderr, "MemoryMax cannot be enforced") || !strings.Contains(r.Stderr, "read-only") {
		t.Errorf("MemoryMax in a default container: want it refused, naming the read-only mount:\n%s", r.Stderr)
	}
}

// TestContainerPrivileged: in `docker run --privileged` (a private cgroup
// namespace mounted read-write) auto picks the direct driver although the
// namespace root holds the container's processes: cgdev moves them into
// /init before enabling controllers, so MemoryMax is enforced (an OOM kill,
// reported with limit and peak, exit 137) and services run and stop under
// memory_max with their memory shown.
func TestContainerPrivileged(t *testing.T) {
	inPass(t, "docker")
	r := inContainer(t, true, nil, `/sdvm/cgdev doctor --json; echo ---; /sdvm/cgdev doctor`)
	t.Logf("cgdev doctor in a privileged container:\n%s", r.Stdout[strings.Index(r.Stdout, "---")+4:])
	d := parseDoctor(t, r.Stdout[:strings.Index(r.Stdout, "---")])
	if d.Driver != "direct" || !d.enforced("MemoryMax") || !d.enforced("TasksMax") {
		t.Errorf("driver %s (%s), limits %+v: want direct with MemoryMax and TasksMax enforced", d.Driver, d.DriverWhy, d.Limits)
	}
	if ok, detail, _ := d.check(t, "no_internal_processes"); !ok || !strings.Contains(detail, "/init") {
		t.Errorf("no_internal_processes: %s", detail)
	}

	r = inContainer(t, true, []string{vmkit.HelperEnv + "=alloc 100"}, `/sdvm/cgdev run -p MemoryMax=32M -- /sdvm/`+filepath.Base(self(t))+`
echo "rc=$?"; echo "pid1 $(cat /proc/1/cgroup)"; echo "root procs: $(cat /sys/fs/cgroup/cgroup.procs | wc -l)"`)
	t.Logf("MemoryMax=32M in a privileged container: %s%s", r.Stdout, r.Stderr)
	if !strings.Contains(r.Stdout, "rc=137") {
		t.Errorf("want exit 137:\n%s", r.Stdout)
	}
	if m := regexp.MustCompile(`OOM: the kernel killed \d+ process\(es\) of this run for exceeding MemoryMax=32M \(peak memory [0-9.]+M\)`).FindString(r.Stderr); m == "" {
		t.Errorf("no OOM report with limit and peak:\n%s", r.Stderr)
	}
	if !strings.Contains(r.Stdout, "pid1 0::/init") || !strings.Contains(r.Stdout, "root procs: 0") {
		t.Errorf("the container's processes were not moved into /init:\n%s", r.Stdout)
	}

	r = inContainer(t, true, nil, `cd /tmp && printf 'services:\n  web:\n    command: echo $$ > web.pid; exec sleep 1000\n    memory_max: 32M\n' > cgdev.yaml
/sdvm/cgdev start >/dev/null && /sdvm/cgdev status --json && /sdvm/cgdev stop >/dev/null; echo "stop rc=$?"
if kill -0 $(cat web.pid) 2>/dev/null; then echo "web survived"; else echo "web gone"; fi`)
	t.Logf("services in a privileged container:\n%s%s", r.Stdout, r.Stderr)
	var st struct {
		Services []struct {
			State         string  `json:"state"`
			Cgroup        string  `json:"cgroup"`
			MemoryCurrent *uint64 `json:"memory_current"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.Stdout[:strings.LastIndex(r.Stdout, "stop rc=")]), &st); err != nil || len(st.Services) != 1 {
		t.Fatalf("status --json: %v\n%s", err, r.Stdout)
	}
	if s := st.Services[0]; s.State != "running" || s.MemoryCurrent == nil || !strings.HasPrefix(s.Cgroup, "/sys/fs/cgroup/cgdev/") {
		t.Errorf("service status: %+v", s)
	}
	if !strings.Contains(r.Stdout, "stop rc=0") || !strings.Contains(r.Stdout, "web gone") {
		t.Errorf("stop in a privileged container:\n%s", r.Stdout)
	}
}

// TestComposeDown: stop's phase 4 brings a real compose project down with
// the Compose the machine has (Debian 12: docker-compose 1.29, no v2
// plugin): the container is gone afterwards.
func TestComposeDown(t *testing.T) {
	inPass(t, "docker")
	p := newProject(t, "compose", "compose:\n  file: compose.yml\nservices:\n  app:\n    command: exec sleep 1000\n")
	compose := "services:\n  box:\n    image: " + image + "\n    command: sleep 1000\n    network_mode: none\n    stop_grace_period: 1s\n"
	if err := os.WriteFile(filepath.Join(p.dir, "compose.yml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	up := vmkit.Run(t, 5*time.Minute, inDir(p.dir, cmdOf("docker-compose", "-f", "compose.yml", "up", "-d")))
	if up.Code != 0 {
		t.Fatalf("docker-compose up: exit %d\n%s%s", up.Code, up.Stdout, up.Stderr)
	}
	t.Cleanup(func() {
		vmkit.Run(t, 5*time.Minute, inDir(p.dir, cmdOf("docker-compose", "-f", "compose.yml", "down")))
	})
	running := func() string {
		return strings.TrimSpace(vmkit.Run(t, time.Minute, cmdOf("docker", "ps", "-q", "--filter", "label=com.docker.compose.project="+strings.ToLower(p.tag))).Stdout)
	}
	if running() == "" {
		t.Fatal("the compose container is not running after docker-compose up")
	}
	p.must("start")
	out := p.must("stop")
	t.Logf("cgdev stop:\n%s", strings.TrimSpace(out))
	if !strings.Contains(out, "[4/5] containers: docker-compose -f "+filepath.Join(p.dir, "compose.yml")+" down") {
		t.Errorf("phase 4 did not run docker-compose down:\n%s", out)
	}
	if ids := running(); ids != "" {
		t.Errorf("container(s) %s still run after cgdev stop", ids)
	}
	p.assertNothingLeft()
}
