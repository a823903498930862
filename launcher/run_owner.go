package launcher

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// A run's name is claimed by binding an abstract unix socket named after
// it, @cgdev-run/<uid>/<name>, the way the supervisor is found: the kernel
// drops the name the moment its holder dies, so nothing can go stale. The
// holder is the run's owner, `cgdev run` itself, from before its group is
// created until after it is removed; while the owner lives nobody else
// touches the group. A group whose name nobody holds is stale: whoever
// claims the name (the run's watcher, a later cgdev) collects it, holding
// the claim meanwhile so that no new run can take the name.

// runClaim is a held run name.
type runClaim struct {
	ln net.Listener
}

// runSocket is the abstract socket that holds a run name for this user.
func runSocket(name string) string {
	return fmt.Sprintf("@cgdev-run/%d/%s", os.Geteuid(), name)
}

// claimRun takes name for this process. It returns nil, nil when another
// live process holds it.
func claimRun(name string) (*runClaim, error) {
	ln, err := net.Listen("unix", runSocket(name))
	if errors.Is(err, unix.EADDRINUSE) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claiming run name %s: %w", name, err)
	}
	return &runClaim{ln: ln}, nil
}

// serve accepts and drops connections, so that a process asking who owns
// the run (runOwner) never fills the listener's backlog.
func (c *runClaim) serve() {
	go func() {
		for {
			conn, err := c.ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
}

// release gives the name up. A nil claim is released already.
func (c *runClaim) release() {
	if c != nil {
		c.ln.Close()
	}
}

// runOwner returns the PID of the process holding name, or 0 when nobody does.
func runOwner(name string) int {
	conn, err := net.DialTimeout("unix", runSocket(name), time.Second)
	if err != nil {
		return 0
	}
	defer conn.Close()
	cred, err := peer(conn)
	if err != nil {
		return 0
	}
	return int(cred.Pid)
}
