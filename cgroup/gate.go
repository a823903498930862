package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// gate holds a started process before it executes its command, until the
// process has been put where it belongs (moved into a cgroup, or added to a
// systemd scope). It is the order systemd-run uses: place first, then exec.
//
// The held process is /bin/sh blocked in read(2) on a pipe; release lets it
// exec the command in place (same PID), abort makes it exit 125 unexecuted.
type gate struct {
	w *os.File
}

// startGated starts cmd held at a gate and calls place with its PID; only
// when place succeeds is the process let through to exec its command. When
// place fails (or the release does), the held process is killed before it
// has run anything, and reaped, and the error returned. The process cannot
// fork before place returns: place moves it into a cgroup, or hands it to
// a manager, knowing that whatever it runs will start there.
func startGated(cmd *exec.Cmd, place func(pid int) error) error {
	g, err := holdAtGate(cmd)
	if err != nil {
		return err
	}
	err = cmd.Start()
	g.afterStart(cmd)
	if err != nil {
		g.w.Close()
		return err
	}
	if err := place(cmd.Process.Pid); err != nil {
		g.abort(cmd)
		return err
	}
	if err := g.release(); err != nil {
		g.abort(cmd)
		return err
	}
	return nil
}

// holdAtGate rewrites the unstarted cmd so that, once started, it waits at a gate.
func holdAtGate(cmd *exec.Cmd) (*gate, error) {
	if cmd.Err != nil {
		return nil, cmd.Err
	}
	if cmd.Process != nil {
		return nil, errors.New("cgroup: command already started")
	}
	// The gate's shell could report a missing or non-executable program only
	// by exiting 127 after Start: check it first, as execve would.
	if path := cmd.Path; strings.Contains(path, "/") {
		if !filepath.IsAbs(path) && cmd.Dir != "" {
			path = filepath.Join(cmd.Dir, path)
		}
		if _, err := exec.LookPath(path); err != nil {
			return nil, err
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("gate pipe: %w", err)
	}
	fd := strconv.Itoa(3 + len(cmd.ExtraFiles))
	script := "read -r _ <&" + fd + " || exit 125; exec " + fd + "<&-; exec \"$0\" \"$@\""
	argv := append([]string{"/bin/sh", "-c", script, cmd.Path}, cmd.Args[1:]...)
	cmd.Path, cmd.Args = "/bin/sh", argv
	cmd.ExtraFiles = append(cmd.ExtraFiles, r)
	return &gate{w: w}, nil
}

// afterStart closes the parent's copy of the read end.
func (g *gate) afterStart(cmd *exec.Cmd) {
	cmd.ExtraFiles[len(cmd.ExtraFiles)-1].Close()
	cmd.ExtraFiles = cmd.ExtraFiles[:len(cmd.ExtraFiles)-1]
}

// release lets the held process exec its command.
func (g *gate) release() error {
	_, err := g.w.Write([]byte("go\n"))
	if cerr := g.w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("releasing gate: %w", err)
	}
	return nil
}

// abort kills the held process without letting it exec, and reaps it.
func (g *gate) abort(cmd *exec.Cmd) {
	g.w.Close()
	if cmd.Process != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}
