package main

import (
	"context"
	"fmt"

	"github.com/cgdev/cgdev/launcher"
)

// upCmd starts, follows the logs, and on Ctrl-C (or SIGTERM, SIGHUP) stops
// what it started. The project lock is held while starting and while
// stopping, not while following, so status and logs work meanwhile.
func upCmd(g *globals, args []string) error {
	fs := newFlagSet(g, "up")
	file := addFileFlag(fs)
	lines := fs.IntP("lines", "n", 0, "print the last N lines of each log before following")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := openSession(g, *file)
	if err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	results, startErr := startLocked(ctx, g, s, fs.Args())
	var names []string
	if len(fs.Args()) > 0 {
		for _, r := range results {
			names = append(names, r.Name)
		}
	}
	if startErr == nil && ctx.Err() == nil {
		fmt.Fprintln(g.stdout, "\ncgdev: following the logs; Ctrl-C stops everything")
		err = launcher.Logs(ctx, s.project, names, launcher.LogOptions{Follow: true, Lines: *lines, Color: isTerminal(g), Out: g.stdout})
		if err != nil {
			fmt.Fprintf(g.stderr, "cgdev up: %v\n", err)
		}
		fmt.Fprintln(g.stdout)
	}
	unlock, err := s.project.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := runStop(s, names, launcher.StopOptions{Out: g.stdout}); err != nil {
		return err
	}
	if startErr != nil {
		return &exitError{code: 1, msg: startErr.Error()}
	}
	return nil
}

func startLocked(ctx context.Context, g *globals, s *session, names []string) ([]launcher.StartResult, error) {
	unlock, err := s.project.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return launcher.Start(ctx, s.project, s.driver, names, launcher.StartOptions{Driver: s.driver.Name(), Out: g.stdout})
}
