package main

import (
	"os"

	"github.com/cgdev/cgdev/launcher"
	"golang.org/x/sys/unix"
)

func logsCmd(g *globals, args []string) error {
	fs := newFlagSet(g, "logs")
	file := fs.String("file", "", "project file (default: ./cgdev.yaml, else ./Procfile)")
	follow := fs.BoolP("follow", "f", false, "keep printing new lines until interrupted")
	lines := fs.IntP("lines", "n", 20, "print the last N lines of each log first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := launcher.OpenProject(*file)
	if err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	return launcher.Logs(ctx, s, fs.Args(), launcher.LogOptions{
		Follow: *follow, Lines: *lines, Color: isTerminal(g), Out: g.stdout,
	})
}

// isTerminal reports whether cgdev writes to a terminal (for colour).
func isTerminal(g *globals) bool {
	f, ok := g.stdout.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
