package cgroup

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Mode is the way the kernel's cgroup hierarchies are mounted.
type Mode string

const (
	Unified  Mode = "unified" // cgroup2 only, at /sys/fs/cgroup on most systems
	Hybrid   Mode = "hybrid"  // v1 controllers plus a cgroup2 tree without (most) controllers
	Legacy   Mode = "legacy"  // v1 only
	NoCgroup Mode = "none"    // nothing mounted
)

// Host is what detection found about this machine's cgroups and systemd.
type Host struct {
	Mode Mode
	// Cgroup2Mount is the cgroup2 mount point ("" when there is none).
	Cgroup2Mount string
	// OwnCgroup is this process's cgroup2 path relative to the mount ("/..." form).
	OwnCgroup string
	// V1Controllers lists controllers bound to v1 hierarchies, unusable in cgroup2.
	V1Controllers []string
	// Base is the cgroup2 directory under which cgdev keeps its groups, relative
	// to Cgroup2Mount ("/cgdev" when writing at the root is allowed).
	Base string
	// BaseWritable reports whether this user may create cgroups at Base's parent.
	BaseWritable bool
	// Controllers lists the controllers a new child of Base's parent can get
	// (the parent's cgroup.controllers).
	Controllers []string
	// Systemd describes the systemd managers reachable from here.
	Systemd SystemdInfo
	// Delegation is set where PID 1 is systemd (and no BaseEnv overrides
	// the base): the subtree systemd delegated to this process, the only
	// place cgdev may create cgroups there (delegation.go).
	Delegation *Delegation
	// ReadOnly reports that the cgroup2 mount is read-only (a container's
	// default): cgroups can be read but none created.
	ReadOnly bool
	// Problems are notes about what detection could not read.
	Problems []string
}

// SystemdInfo says which systemd managers answer.
type SystemdInfo struct {
	Booted        bool   `json:"booted"`          // /run/systemd/system exists: PID 1 is systemd
	SystemBus     bool   `json:"system_bus"`      // the system bus socket accepts connections
	UserBus       bool   `json:"user_bus"`        // a user bus or the user manager's private socket accepts connections
	UserBusSocket string `json:"user_bus_socket"` // the socket that answered
}

// BaseEnv overrides the cgroup2 directory (relative to the mount) that holds
// cgdev's groups, e.g. CGDEV_CGROUP_BASE=/cgdev-test-1.
const BaseEnv = "CGDEV_CGROUP_BASE"

// Detect reads /proc/self/mountinfo, /proc/self/cgroup and the cgroup2 tree.
func Detect() (*Host, error) {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("detecting cgroups: %w", err)
	}
	h := &Host{}
	var mountRoot string
	h.Cgroup2Mount, mountRoot, h.V1Controllers = parseMountinfo(string(mounts))
	h.ReadOnly = h.Cgroup2Mount != "" && mountReadOnly(h.Cgroup2Mount)
	switch {
	case h.Cgroup2Mount != "" && len(h.V1Controllers) == 0:
		h.Mode = Unified
	case h.Cgroup2Mount != "":
		h.Mode = Hybrid
	case len(h.V1Controllers) > 0:
		h.Mode = Legacy
	default:
		h.Mode = NoCgroup
	}
	h.Systemd = detectSystemd()
	if h.Cgroup2Mount == "" {
		return h, nil
	}
	h.OwnCgroup = relativeTo(ownCgroup2(), mountRoot)
	h.Base = h.chooseBase()
	parent := filepath.Join(h.Cgroup2Mount, filepath.Dir(h.Base))
	h.BaseWritable = unix.Access(parent, unix.W_OK) == nil
	if h.BaseWritable {
		if _, err := os.Stat(filepath.Join(h.Cgroup2Mount, h.Base)); err == nil {
			h.BaseWritable = unix.Access(filepath.Join(h.Cgroup2Mount, h.Base), unix.W_OK) == nil
		}
	}
	if h.Delegation != nil && h.Delegation.Cgroup == "" {
		h.BaseWritable = false // systemd's tree, and nothing of it is ours
	}
	ctrl, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
	if err != nil {
		h.Problems = append(h.Problems, err.Error())
	}
	h.Controllers = strings.Fields(string(ctrl))
	return h, nil
}

// chooseBase picks where cgdev's groups live: $CGDEV_CGROUP_BASE; else,
// where PID 1 is systemd, "cgdev" inside the delegated unit this process
// runs in (and with none, no usable base: see Delegation); else /cgdev at
// the root when writable (root on a non-systemd host, or in a container's
// cgroup namespace), else a "cgdev" sibling of this process's cgroup when its
// parent is delegated to us.
func (h *Host) chooseBase() string {
	if b := os.Getenv(BaseEnv); b != "" {
		return "/" + strings.Trim(filepath.Clean("/"+b), "/")
	}
	if h.Systemd.Booted {
		d := h.findDelegation()
		h.Delegation = &d
		if d.Cgroup != "" {
			return filepath.Join(d.Cgroup, "cgdev")
		}
	}
	if unix.Access(h.Cgroup2Mount, unix.W_OK) == nil {
		return "/cgdev"
	}
	if h.OwnCgroup != "" && h.OwnCgroup != "/" {
		return filepath.Join(filepath.Dir(h.OwnCgroup), "cgdev")
	}
	return "/cgdev"
}

// parseMountinfo returns the cgroup2 mount point, the cgroup that mount
// shows as its root (not "/" when a subtree is bind-mounted, as in some
// containers), and the v1 controllers.
func parseMountinfo(s string) (cg2, root string, v1 []string) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		// fields: id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			if cg2 == "" {
				cg2, root = unescapeMount(f[4]), unescapeMount(f[3])
			}
		case "cgroup":
			for _, opt := range strings.Split(g[2], ",") {
				if isV1Controller(opt) {
					v1 = append(v1, opt)
				}
			}
		}
	}
	sort.Strings(v1)
	return cg2, root, v1
}

// relativeTo returns cgroup path p (from /proc/self/cgroup, relative to the
// hierarchy's root) as seen under a mount of root.
func relativeTo(p, root string) string {
	if root == "" || root == "/" || p == "" {
		return p
	}
	if rest, ok := strings.CutPrefix(p, root); ok && (rest == "" || rest[0] == '/') {
		return "/" + strings.TrimPrefix(rest, "/")
	}
	return p
}

func isV1Controller(opt string) bool {
	switch opt {
	case "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio",
		"perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc":
		return true
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroup2 returns the "0::" path of /proc/self/cgroup.
func ownCgroup2() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	return ""
}

func detectSystemd() SystemdInfo {
	var s SystemdInfo
	_, err := os.Stat("/run/systemd/system")
	s.Booted = err == nil
	s.SystemBus = dialable("/run/dbus/system_bus_socket")
	for _, sock := range userBusSockets() {
		if dialable(sock) {
			s.UserBus, s.UserBusSocket = true, sock
			break
		}
	}
	return s
}

// userBusSockets lists where a user manager may answer, best first.
func userBusSockets() []string {
	var socks []string
	if addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); addr != "" {
		for _, part := range strings.Split(addr, ";") {
			for _, kv := range strings.Split(strings.TrimPrefix(part, "unix:"), ",") {
				if p, ok := strings.CutPrefix(kv, "path="); ok {
					socks = append(socks, p)
				}
			}
		}
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
		socks = append(socks, filepath.Join(rt, "bus"), filepath.Join(rt, "systemd/private"))
	}
	return socks
}

func dialable(sock string) bool {
	c, err := net.DialTimeout("unix", sock, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Has reports whether controller c is available to cgdev's groups.
func (h *Host) Has(c string) bool {
	for _, x := range h.Controllers {
		if x == c {
			return true
		}
	}
	return false
}

// BoundToV1 reports whether cgroup2 controller c is held by a v1 hierarchy
// (where io is called blkio).
func (h *Host) BoundToV1(c string) bool {
	if c == "io" {
		c = "blkio"
	}
	for _, x := range h.V1Controllers {
		if x == c {
			return true
		}
	}
	return false
}
