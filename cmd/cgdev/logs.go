package main

import (
	"fmt"
	"os"
	"time"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func logsCommand(g *globals) *cobra.Command {
	var opt launcher.LogOptions
	var since string
	c := &cobra.Command{
		Use:   "logs [SVC...] [-f] [-n N] [--since T] [-t]",
		Short: "print (and with -f follow) the services' logs, prefixed with their names",
		Long: `Print the last N lines of each service's log (all services, or those named),
each line prefixed with "name | " (coloured on a terminal, unless NO_COLOR is
set); with -f, then follow every log at once until Ctrl-C.

Here -f is --follow, as in "docker compose -f FILE logs -f": a project file is
named with -f before the command ("cgdev -f dev.yaml logs -f") or --file after it.`,
		ValidArgsFunction: g.completeServices,
		RunE: func(c *cobra.Command, args []string) error {
			opt.Color, opt.Out = useColor(g), g.stdout
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return usageError("--since %v", err)
				}
				opt.Since = t
				if !c.Flags().Changed("lines") {
					opt.Lines = -1 // every line since then
				}
			}
			return logsCmd(g, args, opt)
		},
	}
	// --file here shadows the global -f/--file, freeing -f for --follow.
	c.Flags().StringVar(&g.file, "file", "", "the project `FILE` (-f before the command)")
	c.Flags().BoolVarP(&opt.Follow, "follow", "f", false, "keep printing new lines until interrupted")
	c.Flags().IntVarP(&opt.Lines, "lines", "n", 20, "print the last `N` lines of each log first (-1: all kept; with --since: all since)")
	c.Flags().StringVar(&since, "since", "", "leave out lines written before `T`: a duration ago (10m, 1h30m) or a time (2024-05-01T10:00:00, RFC 3339)")
	c.Flags().BoolVarP(&opt.Timestamps, "timestamps", "t", false, "prefix each line with when it was written (\"~\": known only to within more than a second)")
	return c
}

func logsCmd(g *globals, names []string, opt launcher.LogOptions) error {
	s, err := openSession(g, projectFile)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.checkNames(names, false); err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	return launcher.Logs(ctx, s.project, names, opt)
}

// parseSince reads --since: a duration before now, or a time (RFC 3339,
// or a local date and time without a zone).
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (10m, 1h30m) nor a time (2024-05-01T10:00:00, RFC 3339)", s)
}

// useColor says whether to colour output: only on a terminal, never when
// $NO_COLOR is set (no-color.org) or $TERM is dumb.
func useColor(g *globals) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := g.stdout.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
