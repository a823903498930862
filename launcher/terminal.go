package launcher

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// terminal remembers whether cgdev handed its controlling terminal to the
// command, the way a shell runs a foreground job.
type terminal struct {
	fd   int // cgdev's fd of the terminal
	pgrp int // cgdev's own process group, to take the terminal back; 0 = untouched
}

// takeTerminal puts cmd in a process group of its own. When cgdev is the
// foreground job of the terminal on its stdin, stdout or stderr, that group
// becomes the foreground: Ctrl-C, Ctrl-\ and Ctrl-Z then reach the command
// and its children from the terminal itself, while cgdev relays only signals
// sent to it directly (no double delivery).
func takeTerminal(cmd *exec.Cmd, stdio ...*os.File) terminal {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	for i, f := range stdio { // the command's fd i is f
		if f == nil {
			continue
		}
		fg, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
		if err != nil || fg != unix.Getpgrp() {
			continue
		}
		cmd.SysProcAttr.Foreground, cmd.SysProcAttr.Ctty = true, i
		return terminal{fd: int(f.Fd()), pgrp: fg}
	}
	return terminal{}
}

// restore makes cgdev's group the foreground again. SIGTTOU, which a
// background group gets for changing the foreground, is ignored meanwhile.
func (t terminal) restore() { t.give(t.pgrp) }

func (t terminal) give(pgrp int) {
	if t.pgrp == 0 {
		return
	}
	signal.Ignore(unix.SIGTTOU)
	defer signal.Reset(unix.SIGTTOU)
	unix.IoctlSetPointerInt(t.fd, unix.TIOCSPGRP, pgrp)
}

// wait waits for cmd to exit. While cmd is the foreground job, a stop
// (Ctrl-Z) is passed up the way a shell expects of a job: cgdev takes the
// terminal back and stops itself; when continued (fg), it hands the terminal
// back to the command and continues the command's group.
func (t terminal) wait(cmd *exec.Cmd) error {
	pid := cmd.Process.Pid
	for t.pgrp != 0 {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WSTOPPED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || info.Code != cldStopped {
			break
		}
		unix.Waitid(unix.P_PID, pid, &info, unix.WSTOPPED, nil) // consume the stop
		t.restore()
		unix.Kill(os.Getpid(), unix.SIGSTOP)
		t.give(pid)
		unix.Kill(-pid, unix.SIGCONT)
	}
	return cmd.Wait()
}

// cldStopped is siginfo's si_code for a stopped child (CLD_STOPPED).
const cldStopped = 5
