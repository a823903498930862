package launcher

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenersDiag asks the kernel for the TCP sockets in the LISTEN state
// over NETLINK_SOCK_DIAG (inet_diag, as ss does), for IPv4 and IPv6. The
// kernel walks only its table of listening sockets, where reading
// /proc/net/tcp walks every bucket of the established table too (sized by
// the machine's memory): about 1 ms against 25 ms on a 24 GiB host.
func listenersDiag() ([]listener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("netlink sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	var out []listener
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := dumpListening(fd, family)
		if err != nil {
			return nil, err
		}
		out = append(out, socks...)
	}
	return out, nil
}

// Sizes of linux/inet_diag.h's structs.
const (
	inetDiagReqV2Len = 56 // inet_diag_req_v2: family, protocol, ext, pad, states, inet_diag_sockid (48)
	inetDiagMsgLen   = 72 // inet_diag_msg: family, state, timer, retrans, sockid (48), expires, rqueue, wqueue, uid, inode
	tcpListenState   = 10 // TCP_LISTEN
)

// dumpListening sends one SOCK_DIAG_BY_FAMILY dump request for the
// listening TCP sockets of family and reads the answer to its end.
func dumpListening(fd int, family uint8) ([]listener, error) {
	req := make([]byte, unix.NLMSG_HDRLEN+inetDiagReqV2Len)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], uint32(family)) // sequence number
	body := req[unix.NLMSG_HDRLEN:]
	body[0], body[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(body[4:], 1<<tcpListenState)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink sock_diag request: %w", err)
	}
	var out []listener
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("netlink sock_diag answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("netlink sock_diag answer: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := -int32(ne.Uint32(m.Data)); errno != 0 {
						return nil, fmt.Errorf("netlink sock_diag: %w", syscall.Errno(errno))
					}
				}
				return nil, errors.New("netlink sock_diag: an error answer")
			}
			if l, ok := parseDiagMsg(m.Data); ok {
				out = append(out, l)
			}
		}
	}
}

// parseDiagMsg reads the address, port and inode of an inet_diag_msg.
func parseDiagMsg(b []byte) (listener, bool) {
	if len(b) < inetDiagMsgLen || b[1] != tcpListenState {
		return listener{}, false
	}
	port := binary.BigEndian.Uint16(b[4:6])
	var ip netip.Addr
	switch b[0] {
	case unix.AF_INET:
		ip = netip.AddrFrom4([4]byte(b[8:12]))
	case unix.AF_INET6:
		ip = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
	default:
		return listener{}, false
	}
	inode := binary.NativeEndian.Uint32(b[68:72])
	return listener{addr: netip.AddrPortFrom(ip, port), inode: uint64(inode)}, inode != 0
}
