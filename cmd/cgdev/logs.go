package main

import (
	"os"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func logsCommand(g *globals) *cobra.Command {
	var opt launcher.LogOptions
	c := &cobra.Command{
		Use:   "logs [SVC...] [-f] [-n N]",
		Short: "print (and with -f follow) the services' logs, prefixed with their names",
		Long: `Print the last N lines of each service's log (all services, or those named),
each line prefixed with "name | " (coloured on a terminal, unless NO_COLOR is
set); with -f, then follow every log at once until Ctrl-C.

Here -f is --follow, as in "docker compose -f FILE logs -f": a project file is
named with -f before the command ("cgdev -f dev.yaml logs -f") or --file after it.`,
		ValidArgsFunction: g.completeServices,
		RunE: func(_ *cobra.Command, args []string) error {
			opt.Color, opt.Out = useColor(g), g.stdout
			return logsCmd(g, args, opt)
		},
	}
	// --file here shadows the global -f/--file, freeing -f for --follow.
	c.Flags().StringVar(&g.file, "file", "", "the project `FILE` (-f before the command)")
	c.Flags().BoolVarP(&opt.Follow, "follow", "f", false, "keep printing new lines until interrupted")
	c.Flags().IntVarP(&opt.Lines, "lines", "n", 20, "print the last `N` lines of each log first")
	return c
}

func logsCmd(g *globals, names []string, opt launcher.LogOptions) error {
	s, err := openSession(g, projectFile)
	if err != nil {
		return err
	}
	if err := s.checkNames(names, false); err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	return launcher.Logs(ctx, s.project, names, opt)
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
