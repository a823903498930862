package launcher

import (
	"fmt"
	"net"
	"os"
	"slices"
	"testing"
)

func TestParseTCPLine(t *testing.T) {
	for line, want := range map[string]string{
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0":     "127.0.0.1:8080",
		"   1: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1":                                     "0.0.0.0:3000",
		"   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 99 1": "[::1]:8080",
		"   0: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 98 1": "127.0.0.1:80",
	} {
		l, ok := parseTCPLine(line)
		if !ok || l.addr.String() != want {
			t.Errorf("parseTCPLine(%q) = %v %v, want %s", line, l.addr, ok, want)
		}
	}
	for _, line := range []string{
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
		"   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1234 1", // ESTABLISHED
	} {
		if l, ok := parseTCPLine(line); ok {
			t.Errorf("parseTCPLine(%q) = %v, want not a listener", line, l)
		}
	}
}

// TestWhoHoldsOwnListener: a socket this test listens on is found, on
// IPv4 and IPv6, as held by this process, not a cgdev one.
func TestWhoHoldsOwnListener(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v (skipped)", addr, err)
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		holders, err := WhoHolds(port)
		l.Close()
		if err != nil || len(holders) != 1 || holders[0].PID != os.Getpid() || holders[0].Cgdev || holders[0].Port != port {
			t.Errorf("WhoHolds(%d) on %s = %+v, %v; want this process", port, addr, holders, err)
		}
		if holders, _ := WhoHolds(port); len(holders) != 0 {
			t.Errorf("WhoHolds(%d) after close = %+v", port, holders)
		}
	}
}

func TestResolvePorts(t *testing.T) {
	c, err := loadConfig(writeConfig(t, "cgdev.yaml", `services:
  db:
    command: db
    ports: [5432, 5433]
  web:
    command: web
    ready: {http: "http://localhost/health"}
  wait-db:
    command: sleep 1000
    ready: {tcp: "127.0.0.1:5432"}
  remote:
    command: x
    ready: {tcp: "example.com:80"}
  proxied:
    command: docker compose up
    ports: []
    ready: {tcp: "127.0.0.1:8080"}
`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]int{"db": {5432, 5433}, "web": {80}, "wait-db": nil, "remote": nil, "proxied": {}} {
		if got := c.Service(name).Ports; len(got) != len(want) || (len(want) > 0 && got[0] != want[0]) {
			t.Errorf("%s: ports %v, want %v", name, got, want)
		}
	}
	if _, err := loadConfig(writeConfig(t, "cgdev.yaml", "services:\n  a:\n    command: x\n    ports: [0]\n")); err == nil {
		t.Error("port 0 accepted")
	}
}

// BenchmarkWhoHolds: who holds a port this process listens on (the
// /proc/net/tcp{,6} read, then every process's fds), and a free port
// (the read alone: what start pays per port of each service it starts).
func BenchmarkWhoHolds(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	held := l.Addr().(*net.TCPAddr).Port
	b.Run("held", func(b *testing.B) {
		for b.Loop() {
			if h, _ := WhoHolds(held); len(h) != 1 {
				b.Fatalf("WhoHolds = %v", h)
			}
		}
	})
	b.Run("free", func(b *testing.B) {
		for b.Loop() {
			if h, _ := WhoHolds(1); len(h) != 0 {
				b.Fatalf("WhoHolds(1) = %v", h)
			}
		}
	})
}

// TestListenersDiagMatchesProc: sock_diag and /proc/net/tcp{,6} list the
// same listening sockets (a listener of this test's among them).
func TestListenersDiagMatchesProc(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	diag, err := listenersDiag()
	if err != nil {
		t.Skipf("no NETLINK_SOCK_DIAG here (%v): /proc/net/tcp is read instead", err)
	}
	proc, err := procListeners(0)
	if err != nil {
		t.Fatal(err)
	}
	key := func(ls []listener) []string {
		var out []string
		for _, l := range ls {
			out = append(out, fmt.Sprintf("%s#%d", l.addr, l.inode))
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(key(diag), key(proc)) {
		t.Errorf("sock_diag: %v\n/proc/net/tcp: %v", key(diag), key(proc))
	}
	if !slices.ContainsFunc(diag, func(d listener) bool { return int(d.addr.Port()) == l.Addr().(*net.TCPAddr).Port }) {
		t.Errorf("this test's listener is not among %v", key(diag))
	}
}
