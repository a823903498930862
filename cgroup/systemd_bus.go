package cgroup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// endpoint is one socket on which a systemd manager may answer.
type endpoint struct {
	manager string // "user" or "system"
	socket  string
	// direct is a peer-to-peer connection to the manager itself (its
	// "private" socket): EXTERNAL auth and no Hello, as systemctl uses.
	// Otherwise the socket is a bus daemon's, which needs Hello.
	direct bool
}

func (e endpoint) String() string { return fmt.Sprintf("the %s manager at %s", e.manager, e.socket) }

// systemdEndpoints lists where a manager cgdev may use answers, best first:
// the user manager when a user bus or its private socket is reachable (for
// root too), else the system manager for root on a host booted with systemd.
// Each endpoint is only a candidate: dialling decides.
func systemdEndpoints(h *Host) []endpoint {
	var eps []endpoint
	if h.Systemd.UserBus {
		if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
			eps = append(eps, endpoint{"user", filepath.Join(rt, "systemd/private"), true})
		}
		if s := h.Systemd.UserBusSocket; s != "" && (len(eps) == 0 || eps[0].socket != s) {
			eps = append(eps, endpoint{"user", s, isPrivateSocket(s)})
		}
		return eps
	}
	if os.Geteuid() == 0 && h.Systemd.Booted {
		eps = append(eps, endpoint{"system", "/run/systemd/private", true})
		eps = append(eps, endpoint{"system", "/run/dbus/system_bus_socket", false})
	}
	return eps
}

func isPrivateSocket(path string) bool {
	return filepath.Base(path) == "private" && filepath.Base(filepath.Dir(path)) == "systemd"
}

// dialManager returns a connection to the first endpoint that accepts one.
func dialManager(h *Host) (*sd.Conn, endpoint, error) {
	eps := systemdEndpoints(h)
	if len(eps) == 0 {
		return nil, endpoint{}, noManagerError(h)
	}
	var errs []error
	for _, ep := range eps {
		conn, err := ep.connect()
		if err == nil {
			return conn, ep, nil
		}
		errs = append(errs, fmt.Errorf("%s: %s", ep, dialProblem(err)))
	}
	return nil, endpoint{}, fmt.Errorf("systemd driver: no systemd manager answers: %w", errors.Join(errs...))
}

// connect returns go-systemd's client on ep. That client wants two D-Bus
// connections (calls, and job signals), which it dials one after the other;
// both are dialled at once here, since setting one up is a handful of round
// trips to the manager, the largest fixed cost of a scope-backed run.
func (ep endpoint) connect() (*sd.Conn, error) {
	type dialed struct {
		conn *dbus.Conn
		err  error
	}
	ch := make(chan dialed, 2)
	for range 2 {
		go func() {
			c, err := ep.dial()
			ch <- dialed{c, err}
		}()
	}
	taken := 0
	conn, err := sd.NewConnection(func() (*dbus.Conn, error) {
		d := <-ch
		taken++
		return d.conn, d.err
	})
	for ; taken < 2; taken++ { // one the client never asked for (it failed early)
		if d := <-ch; d.conn != nil {
			d.conn.Close()
		}
	}
	return conn, err
}

// dial opens and authenticates one D-Bus connection. The connection lives as
// long as the driver, so it is not bound to any request's context.
func (ep endpoint) dial() (*dbus.Conn, error) {
	conn, err := dbus.Dial("unix:path=" + dbusEscape(ep.socket))
	if err != nil {
		return nil, err
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, err
	}
	if !ep.direct {
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// dbusEscape escapes a value for a D-Bus address ("unix:path=...").
func dbusEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_/.\\*", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

func noManagerError(h *Host) error {
	var why []string
	if os.Getenv("XDG_RUNTIME_DIR") == "" && os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		why = append(why, "neither XDG_RUNTIME_DIR nor DBUS_SESSION_BUS_ADDRESS is set, so there is no user manager to ask")
	} else {
		var socks []string
		for _, sock := range userBusSockets() {
			if slices.ContainsFunc(socks, func(s string) bool { return strings.HasPrefix(s, sock+": ") }) {
				continue
			}
			problem := "answers now"
			if c, err := net.Dial("unix", sock); err == nil {
				c.Close()
			} else {
				problem = dialProblem(err)
			}
			socks = append(socks, sock+": "+problem)
		}
		why = append(why, "no user bus or user manager socket accepts connections ("+strings.Join(socks, "; ")+")")
	}
	switch {
	case !h.Systemd.Booted:
		why = append(why, "PID 1 is not systemd (/run/systemd/system is missing)")
	case os.Geteuid() != 0:
		why = append(why, "the system manager is for root only")
	}
	return fmt.Errorf("systemd driver: no systemd manager reachable: %s; use --driver direct, or run inside a user session (test/systemd/with-manager.sh starts one for tests)",
		strings.Join(why, "; "))
}

// dialProblem says in words why a socket did not give a connection.
func dialProblem(err error) string {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return "no such socket"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens on it"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "access denied (it belongs to another user)"
	case strings.Contains(err.Error(), "authentication"):
		return fmt.Sprintf("access denied (the manager refused EXTERNAL authentication as uid %d): %v", os.Getuid(), err)
	}
	return err.Error()
}

// D-Bus error names cgdev reacts to.
const (
	errUnitExists   = "org.freedesktop.systemd1.UnitExists"
	errNoSuchUnit   = "org.freedesktop.systemd1.NoSuchUnit"
	errAccessDenied = "org.freedesktop.DBus.Error.AccessDenied"
	errInteractive  = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
)

// dbusErrorName returns the D-Bus error name carried by err, or "".
func dbusErrorName(err error) string {
	var pe *dbus.Error
	if errors.As(err, &pe) {
		return pe.Name
	}
	var ve dbus.Error
	if errors.As(err, &ve) {
		return ve.Name
	}
	return ""
}

// callError wraps an error of a manager call in words a user can act on.
func (ep endpoint) callError(op string, err error) error {
	switch dbusErrorName(err) {
	case errAccessDenied, errInteractive:
		return fmt.Errorf("%s: %s denied access: %w (a non-root user cannot create units in the system manager; use a user session's manager)", op, ep, err)
	}
	if errors.Is(err, dbus.ErrClosed) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %s stopped answering: %w", op, ep, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
