package launcher

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// terminal remembers whether cgdev handed its controlling terminal to the
// command, the way a shell runs a foreground job.
type terminal struct {
	fd   int
	pgrp int // cgdev's own process group, to take the terminal back; 0 = untouched
}

// takeTerminal puts cmd in a process group of its own. When cgdev is the
// terminal's foreground job, that group becomes the foreground: Ctrl-C and
// Ctrl-\ then reach the command and its children from the terminal itself,
// while cgdev relays only signals sent to it directly (no double delivery).
func takeTerminal(cmd *exec.Cmd, stdin *os.File) terminal {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if stdin == nil {
		return terminal{}
	}
	fd := int(stdin.Fd())
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || fg != unix.Getpgrp() {
		return terminal{}
	}
	cmd.SysProcAttr.Foreground, cmd.SysProcAttr.Ctty = true, fd
	return terminal{fd: fd, pgrp: fg}
}

// restore makes cgdev's group the foreground again. SIGTTOU, which a
// background group gets for changing the foreground, is ignored meanwhile.
func (t terminal) restore() {
	if t.pgrp == 0 {
		return
	}
	signal.Ignore(unix.SIGTTOU)
	defer signal.Reset(unix.SIGTTOU)
	unix.IoctlSetPointerInt(t.fd, unix.TIOCSPGRP, t.pgrp)
}
