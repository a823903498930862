package launcher

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/proc"
	"go.yaml.in/yaml/v3"
)

// PortHolder is a process holding a listening TCP socket: one line of
// `cgdev who PORT`, and one object of its --json.
type PortHolder struct {
	Port    int    `json:"port"`
	Address string `json:"address"` // the socket's local address, e.g. 127.0.0.1:3000 or [::]:3000
	// PID is 0 when no process could be found holding the socket (one of
	// another user's, read without privilege).
	PID     int    `json:"pid"`
	Command string `json:"command,omitempty"`
	// Cgdev is true for a process of a cgdev service or run, known from its
	// marker or its cgroup; Project, Service or Run then say whose.
	Cgdev   bool   `json:"cgdev"`
	Project string `json:"project,omitempty"`
	Service string `json:"service,omitempty"`
	Run     string `json:"run,omitempty"`
	// Dir is the directory of the holder's project, where `cgdev stop`
	// stops it ("" when it cannot be found from the process).
	Dir string `json:"dir,omitempty"`
}

// String describes the holder for a message: "PID 123 (python3 -m
// http.server 3000), not a cgdev process", or its cgdev service and how
// to stop it.
func (h PortHolder) String() string {
	if h.PID == 0 {
		return fmt.Sprintf("a socket on %s whose process cgdev cannot see (another user's?)", h.Address)
	}
	who := fmt.Sprintf("PID %d (%s)", h.PID, orDash(h.Command))
	switch {
	case !h.Cgdev:
		return who + ", not a cgdev process"
	case h.Run != "":
		return fmt.Sprintf("%s, of `cgdev run` %s", who, h.Run)
	case h.Dir != "":
		return fmt.Sprintf("%s, service %s of the cgdev project in %s (stop it there: cd %s && cgdev stop %s)", who, h.Service, h.Dir, h.Dir, h.Service)
	}
	return fmt.Sprintf("%s, service %s of the cgdev project %s (its directory is unknown: run `cgdev stop %s` in that project)", who, h.Service, h.Project, h.Service)
}

// WhoHolds returns the processes holding a listening TCP socket (IPv4 or
// IPv6) on port, in this network namespace: one entry per process and
// socket, lowest PID first. A port nobody listens on yields none.
func WhoHolds(port int) ([]PortHolder, error) {
	socks, err := listeners(port)
	if err != nil || len(socks) == 0 {
		return nil, err
	}
	inodes := map[uint64]netip.AddrPort{}
	for _, s := range socks {
		inodes[s.inode] = s.addr
	}
	owners := socketOwners(inodes, allPIDs())
	var out []PortHolder
	found := map[uint64]bool{}
	for _, o := range owners {
		found[o.inode] = true
		h := identify(o.pid)
		h.Port, h.Address = port, inodes[o.inode].String()
		out = append(out, h)
	}
	for _, s := range socks {
		if !found[s.inode] {
			out = append(out, PortHolder{Port: port, Address: s.addr.String()})
		}
	}
	return out, nil
}

// listener is a TCP socket in the LISTEN state.
type listener struct {
	addr  netip.AddrPort
	inode uint64
}

// tcpListen is the LISTEN state in /proc/net/tcp's st column.
const tcpListen = "0A"

// listeners returns the TCP sockets listening on port (every port when
// port is 0), from the kernel's sock_diag, else from /proc/net/tcp{,6}.
func listeners(port int) ([]listener, error) {
	all, err := listenersDiag()
	if err != nil {
		return procListeners(port)
	}
	var out []listener
	for _, l := range all {
		if port == 0 || int(l.addr.Port()) == port {
			out = append(out, l)
		}
	}
	return out, nil
}

// procListeners reads /proc/net/tcp and /proc/net/tcp6 for the sockets
// listening on port (every port when port is 0).
func procListeners(port int) ([]listener, error) {
	var out []listener
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if os.IsNotExist(err) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			l, ok := parseTCPLine(sc.Text())
			if ok && (port == 0 || int(l.addr.Port()) == port) {
				out = append(out, l)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", file, err)
		}
	}
	return out, nil
}

// parseTCPLine parses one line of /proc/net/tcp{,6}:
// "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...",
// keeping LISTEN sockets only. Addresses are hex: the IP in the kernel's
// byte order (32-bit words, little-endian here), ':', the port big-endian.
func parseTCPLine(line string) (listener, bool) {
	f := strings.Fields(line)
	if len(f) < 10 || f[3] != tcpListen {
		return listener{}, false
	}
	ipHex, portHex, ok := strings.Cut(f[1], ":")
	raw, err := hex.DecodeString(ipHex)
	if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
		return listener{}, false
	}
	for i := 0; i+4 <= len(raw); i += 4 { // each 32-bit word to network order
		binary.BigEndian.PutUint32(raw[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	ip, _ := netip.AddrFromSlice(raw)
	port, err1 := strconv.ParseUint(portHex, 16, 16)
	inode, err2 := strconv.ParseUint(f[9], 10, 64)
	if err1 != nil || err2 != nil || inode == 0 {
		return listener{}, false
	}
	return listener{addr: netip.AddrPortFrom(ip.Unmap(), uint16(port)), inode: inode}, true
}

// socketOwner is a process holding a socket open.
type socketOwner struct {
	pid   int
	inode uint64
}

// socketOwners returns which of pids hold the sockets in inodes open, by
// reading their /proc/PID/fd links ("socket:[INODE]"), in the order of
// pids. A process that exits meanwhile, or whose fds cgdev may not read,
// is skipped.
func socketOwners[V any](inodes map[uint64]V, pids []int) []socketOwner {
	var out []socketOwner
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd"
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		held := map[uint64]bool{}
		for _, e := range entries {
			link, err := os.Readlink(dir + "/" + e.Name())
			if err != nil {
				continue
			}
			s, ok := strings.CutPrefix(link, "socket:[")
			if !ok {
				continue
			}
			inode, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
			if _, want := inodes[inode]; err == nil && want && !held[inode] {
				held[inode] = true
				out = append(out, socketOwner{pid: pid, inode: inode})
			}
		}
	}
	return out
}

// allPIDs lists the processes in /proc, lowest first.
func allPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// identify says whose process pid is: its command, and its cgdev project
// and service from its marker, else from its cgroup (a process that cleared
// its environment is still in its service's cgroup).
func identify(pid int) PortHolder {
	h := PortHolder{PID: pid}
	if p, err := proc.ReadProc(pid); err == nil {
		h.Command = p.Command()
	}
	m := proc.ReadMarker(pid)
	if m.Project == "" && m.Run == "" {
		m.Project, m.Service = serviceFromCgroup(pid)
	}
	h.Project, h.Service, h.Run = m.Project, m.Service, m.Run
	h.Cgdev = m.Project != "" || m.Run != ""
	if m.Project != "" {
		h.Dir = projectDirOf(pid, m.Project)
	}
	return h
}

// projectIDPattern is what ProjectID makes: a name, '-', 8 hex digits.
var projectIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+-[0-9a-f]{8}$`)

// serviceFromCgroup reads the project and service from pid's cgroup2 path
// when it is one of the direct driver's, <base>/<project>/<service>.
// (A systemd scope's processes are known by their marker.)
func serviceFromCgroup(pid int) (project, service string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", ""
	}
	var path string
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			path = p
		}
	}
	if path == "" {
		return "", ""
	}
	if h, err := cgroup.Detect(); err == nil && h.Base != "" {
		if rest, ok := strings.CutPrefix(path, strings.TrimSuffix(h.Base, "/")+"/"); ok {
			if proj, svc, ok := strings.Cut(rest, "/"); ok && projectIDPattern.MatchString(proj) && !strings.Contains(svc, "/") {
				return proj, svc
			}
		}
	}
	return "", ""
}

// projectDirOf finds the directory of project from pid's working
// directory: the nearest of it and its parents whose project id is
// project (a service usually runs inside its project).
func projectDirOf(pid int, project string) string {
	for d := proc.Cwd(pid); d != "" && filepath.IsAbs(d); d = filepath.Dir(d) {
		if ProjectID(d) == project {
			return d
		}
		if d == "/" {
			break
		}
	}
	return ""
}

// ports reads a list of TCP ports (a single port counts as a list of one).
func (c *loader) ports(v *yaml.Node, field string) ([]int, error) {
	list, err := c.strings(v, field)
	if err != nil {
		return nil, err
	}
	out := []int{}
	for i, s := range list {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return nil, c.errAt(v, fmt.Sprintf("%s[%d]", field, i), "%q is not a TCP port (1 to 65535)", s)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// resolvePorts gives each service that declares no ports the port of its
// tcp or http readiness check, when that check is on this host and no
// other service declares the port as its own.
func (c *Config) resolvePorts() {
	declared := map[int]string{}
	for _, s := range c.Services {
		for _, p := range s.Ports {
			declared[p] = s.Name
		}
	}
	for _, s := range c.Services {
		if s.portsSet || s.Ready == nil {
			continue
		}
		if port, ok := s.Ready.localPort(); ok && (declared[port] == "" || declared[port] == s.Name) {
			s.Ports = []int{port}
		}
	}
}

// localPort is the port a tcp or http check connects to, when it connects
// to this host (localhost, a loopback or unspecified address).
func (r *Ready) localPort() (int, bool) {
	var hostport string
	switch r.Kind {
	case "tcp":
		hostport = r.Target
	case "http":
		u, err := url.Parse(r.Target)
		if err != nil {
			return 0, false
		}
		hostport = u.Host
		if u.Port() == "" {
			def := "80"
			if u.Scheme == "https" {
				def = "443"
			}
			hostport = net.JoinHostPort(u.Hostname(), def)
		}
	default:
		return 0, false
	}
	host, p, err := net.SplitHostPort(hostport)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || !localHost(host) {
		return 0, false
	}
	return port, true
}

func localHost(host string) bool {
	if host == "" || strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// checkPortsFree refuses to start services whose ports are held already,
// naming each holder; services already running are not checked.
func checkPortsFree(cfg *Config, services []*Service, running map[string]cgroup.Group) error {
	var problems []string
	for _, s := range services {
		if running[s.Name] != nil {
			continue
		}
		for _, port := range s.Ports {
			holders, err := WhoHolds(port)
			if err != nil {
				return fmt.Errorf("checking port %d of service %s: %w", port, s.Name, err)
			}
			if len(holders) > 0 {
				problems = append(problems, fmt.Sprintf("port %d of service %s (%s:%d) is already in use by %s", port, s.Name, cfg.File, s.Line, describeHolders(holders)))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("nothing started: %s", strings.Join(problems, "; "))
	}
	return nil
}

// describeHolders names up to three holders of one port.
func describeHolders(holders []PortHolder) string {
	var parts []string
	for i, h := range holders {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(holders)-3))
			break
		}
		parts = append(parts, h.String())
	}
	return strings.Join(parts, "; ")
}

// checkOwnListener is the second half of a tcp or http readiness check on
// one of the service's ports: the connection was answered, but only a
// listening socket held by a process of the service's own group makes the
// service ready. Anything else (a squatter, the service having died of
// EADDRINUSE) is named.
func (e readyEnv) checkOwnListener(port int) error {
	if e.group == nil || !slices.Contains(e.ownPorts, port) {
		return nil
	}
	socks, err := listeners(port)
	if err != nil {
		return err
	}
	inodes := map[uint64]bool{}
	for _, s := range socks {
		inodes[s.inode] = true
	}
	pids, err := e.group.Procs()
	if err != nil {
		return err
	}
	if len(socketOwners(inodes, pids)) > 0 {
		return nil
	}
	holders, _ := WhoHolds(port)
	if len(holders) == 0 {
		return fmt.Errorf("port %d answered, but no process of this service listens on it", port)
	}
	return fmt.Errorf("port %d answered, but it is held by %s, not by a process of this service", port, describeHolders(holders))
}
