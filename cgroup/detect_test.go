package cgroup

import (
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const hybridMountinfo = `25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestParseMountinfo(t *testing.T) {
	cg2, _, v1 := parseMountinfo(hybridMountinfo)
	if cg2 != "/sys/fs/cgroup/unified" || strings.Join(v1, ",") != "cpu,memory" {
		t.Errorf("hybrid: got %q %v", cg2, v1)
	}
	cg2, _, v1 = parseMountinfo("29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n")
	if cg2 != "/sys/fs/cgroup" || len(v1) != 0 {
		t.Errorf("unified (with optional fields): got %q %v", cg2, v1)
	}
	cg2, _, _ = parseMountinfo(`41 31 0:38 / /mnt/my\040cg rw - cgroup2 cgroup2 rw` + "\n")
	if cg2 != "/mnt/my cg" {
		t.Errorf("escaped mount point: got %q", cg2)
	}
	cg2, root, _ := parseMountinfo("29 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
	if cg2 != "/sys/fs/cgroup" || root != "/docker/abc" {
		t.Errorf("bind-mounted subtree: got %q root %q", cg2, root)
	}
	for p, want := range map[string]string{"/docker/abc": "/", "/docker/abc/svc": "/svc", "/docker/abcdef": "/docker/abcdef"} {
		if got := relativeTo(p, "/docker/abc"); got != want {
			t.Errorf("relativeTo(%q, /docker/abc) = %q; want %q", p, got, want)
		}
	}
}

// TestDetectThisHost checks detection against the kernel: the mount point it
// reports must be a cgroup2 filesystem, and this process must be in the
// cgroup it names.
func TestDetectThisHost(t *testing.T) {
	h, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	if h.Cgroup2Mount == "" {
		t.Skip("no cgroup2 mounted here")
	}
	var st unix.Statfs_t
	if err := unix.Statfs(h.Cgroup2Mount, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Fatalf("%s is not a cgroup2 mount (statfs type %#x, %v)", h.Cgroup2Mount, st.Type, err)
	}
	procs, err := Dir(h.Cgroup2Mount + h.OwnCgroup).ReadFile("cgroup.procs")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains("\n"+procs+"\n", "\n"+itoa(unix.Getpid())+"\n") {
		t.Errorf("own cgroup %s does not list this process", h.OwnCgroup)
	}
	if h.Mode == Hybrid && len(h.V1Controllers) == 0 {
		t.Errorf("hybrid without v1 controllers")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
