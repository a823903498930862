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

// inContainer runs the scripts, one after the other, with busybox's sh in
// one fresh container of image (/sdvm, with cgdev and this test binary,
// mounted at the same place; a container costs seconds under emulation), and
// returns each script's stdout; stderr is shared.
func inContainer(t *testing.T, privileged bool, scripts ...string) (outs []string, stderr string) {
	t.Helper()
	const sep = "\n@@@ next script @@@\n"
	args := []string{"run", "--rm", "--network", "none", "-v", "/sdvm:/sdvm", "-e", "CGDEV_BIN=/sdvm/cgdev"}
	if privileged {
		args = append(args, "--privileged")
	}
	script := strings.Join(scripts, "\nprintf '"+strings.ReplaceAll(sep, "\n", "\\n")+"'\n")
	args = append(args, image, "/bin/sh", "-c", script)
	r := vmkit.Run(t, 5*time.Minute, cmdOf("docker", args...))
	outs = strings.Split(r.Stdout, sep)
	if len(outs) != len(scripts) {
		t.Fatalf("docker run: exit %d, %d of %d scripts ran\nstdout:\n%s\nstderr:\n%s", r.Code, len(outs), len(scripts), r.Stdout, r.Stderr)
	}
	return outs, r.Stderr
}

// TestContainerDefault: in `docker run` as Docker starts containers by
// default (a private cgroup namespace, /sys/fs/cgroup read-only), auto picks
// the fallback driver by itself, doctor says why and what would give cgdev
// cgroups, `cgdev run` passes the exit status and reaps what its command
// left, and a limit is refused with the reason.
func TestContainerDefault(t *testing.T) {
	inPass(t, "docker")
	outs, stderr := inContainer(t, false, `/sdvm/cgdev doctor --json`, `/sdvm/cgdev doctor`,
		`/sdvm/cgdev run -- sh -c 'sleep 1000 & echo $! > /tmp/left; exit 3'
echo "rc=$?"
if kill -0 $(cat /tmp/left) 2>/dev/null; then echo leftover-alive; else echo leftover-gone; fi
/sdvm/cgdev run -p MemoryMax=32M -- echo ran; echo "limited rc=$?"`)
	t.Logf("cgdev doctor in a default container:\n%s", outs[1])
	d := parseDoctor(t, outs[0])
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
	t.Logf("cgdev run in a default container:\n%s%s", outs[2], stderr)
	for _, want := range []string{"rc=3", "leftover-gone", "limited rc=1"} {
		if !strings.Contains(outs[2], want) {
			t.Errorf("no %q in:\n%s", want, outs[2])
		}
	}
	if strings.Contains(outs[2], "\nran") || !strings.Contains(stderr, "MemoryMax cannot be enforced") || !strings.Contains(stderr, "read-only") {
		t.Errorf("MemoryMax in a default container: want it refused, naming the read-only mount:\n%s", stderr)
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
	outs, stderr := inContainer(t, true, `/sdvm/cgdev doctor --json`, `/sdvm/cgdev doctor`,
		vmkit.HelperEnv+`='alloc 100' /sdvm/cgdev run -p MemoryMax=32M -- /sdvm/`+filepath.Base(self(t))+`
echo "rc=$?"; echo "pid1 $(cat /proc/1/cgroup)"; echo "root procs: $(cat /sys/fs/cgroup/cgroup.procs | wc -l)"`,
		`cd /tmp && printf 'services:\n  web:\n    command: echo $$ > web.pid; exec sleep 1000\n    memory_max: 32M\n' > cgdev.yaml
/sdvm/cgdev start >/dev/null && /sdvm/cgdev status --json`,
		`cd /tmp && /sdvm/cgdev stop >/dev/null; echo "stop rc=$?"
if kill -0 $(cat web.pid) 2>/dev/null; then echo "web survived"; else echo "web gone"; fi`)
	t.Logf("cgdev doctor in a privileged container:\n%s", outs[1])
	d := parseDoctor(t, outs[0])
	if d.Driver != "direct" || !d.enforced("MemoryMax") || !d.enforced("TasksMax") {
		t.Errorf("driver %s (%s), limits %+v: want direct with MemoryMax and TasksMax enforced", d.Driver, d.DriverWhy, d.Limits)
	}
	if ok, detail, _ := d.check(t, "no_internal_processes"); !ok || !strings.Contains(detail, "/init") {
		t.Errorf("no_internal_processes: %s", detail)
	}

	t.Logf("MemoryMax=32M in a privileged container: %s%s", outs[2], stderr)
	if !strings.Contains(outs[2], "rc=137") {
		t.Errorf("want exit 137:\n%s", outs[2])
	}
	if m := regexp.MustCompile(`OOM: the kernel killed \d+ process\(es\) of this run for exceeding MemoryMax=32M \(peak memory [0-9.]+M\)`).FindString(stderr); m == "" {
		t.Errorf("no OOM report with limit and peak:\n%s", stderr)
	}
	if !strings.Contains(outs[2], "pid1 0::/init") || !strings.Contains(outs[2], "root procs: 0") {
		t.Errorf("the container's processes were not moved into /init:\n%s", outs[2])
	}

	t.Logf("services in a privileged container:\n%s%s", outs[3], outs[4])
	var st struct {
		Services []struct {
			State         string  `json:"state"`
			Cgroup        string  `json:"cgroup"`
			MemoryCurrent *uint64 `json:"memory_current"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(outs[3]), &st); err != nil || len(st.Services) != 1 {
		t.Fatalf("status --json: %v\n%s", err, outs[3])
	}
	if s := st.Services[0]; s.State != "running" || s.MemoryCurrent == nil || !strings.HasPrefix(s.Cgroup, "/sys/fs/cgroup/cgdev/") {
		t.Errorf("service status: %+v", s)
	}
	if !strings.Contains(outs[4], "stop rc=0") || !strings.Contains(outs[4], "web gone") {
		t.Errorf("stop in a privileged container:\n%s", outs[4])
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
	running := func() string {
		return strings.TrimSpace(vmkit.Run(t, time.Minute, cmdOf("docker", "ps", "-q", "--filter", "label=com.docker.compose.project="+strings.ToLower(p.tag))).Stdout)
	}
	t.Cleanup(func() {
		if running() != "" {
			vmkit.Run(t, 5*time.Minute, inDir(p.dir, cmdOf("docker-compose", "-f", "compose.yml", "down")))
		}
	})
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
