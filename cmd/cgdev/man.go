package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// manCommand prints cgdev(1), the man page, made from the same command
// tree as --help; `make install` installs it.
func manCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "__man",
		Short:  "print the man page cgdev(1) in roff",
		Hidden: true,
		Args:   noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			writeMan(g.stdout, c.Root())
			return nil
		},
	}
}

// environment and files are the man page's ENVIRONMENT and FILES sections.
var (
	environment = [][2]string{
		{"CGDEV_DRIVER", "the driver when --driver is not given: auto, direct, systemd or fallback"},
		{"CGDEV_CGROUP_BASE", "the cgroup2 directory, relative to the mount, that holds cgdev's groups (default /cgdev)"},
		{"NO_COLOR", "when set and not empty, no colour in any output (no-color.org); nor is there any when the output is not a terminal or TERM is dumb"},
		{"CGDEV_PROJECT, CGDEV_SERVICE, CGDEV_RUN", "set by cgdev in every service and run, and inherited by all they spawn: the markers the orphan sweep and the fallback driver go by"},
	}
	files = [][2]string{
		{"cgdev.yaml, Procfile", "the project's services, found in the working directory or the nearest parent holding one"},
		{".cgdev/state.json", "what cgdev started (main PIDs with their start times, readiness): a record, not the truth"},
		{".cgdev/logs/SVC.log, SVC.log.1, SVC.log.2, SVC.log.idx", "each service's output, rotated past logs.max_size (default 20M, 3 files), and its index (rotation offset, when cgdev saw it how long)"},
		{".cgdev/services/SVC.json", "how each service last ended and its restarts, written by whoever watched it: what status shows as exited (code 3), oom-killed, failed"},
		{".cgdev/events.log, events.log.1", "one line per exit, OOM kill, liveness failure, restart and give-up (up shows them); rotated past 1 MiB, one old file kept"},
		{".cgdev/state.lock", "held for each update of state.json (the supervisor updates it too)"},
		{".cgdev/lock", "serialises start, stop and restart on one project"},
		{".pids/services.pids, .pids/services.pids.groups, .pids/services.pids.services", "PID files for scripts (cgdev writes and removes only regular files in real directories: a user's file or a symlink there is left alone, with a warning)"},
	}
)

// writeMan writes the man page: every command with its options, the
// global options, the exit statuses, the environment and the files.
func writeMan(w io.Writer, root *cobra.Command) {
	m := &roff{w: w}
	m.macro("TH", "CGDEV", "1", "", "cgdev "+version, "User Commands")
	fmt.Fprintln(w, ".nh")   // no hyphenation: flags and file names stay whole
	fmt.Fprintln(w, ".ad l") // ragged right
	m.macro("SH", "NAME")
	m.text("cgdev - " + root.Short)
	m.macro("SH", "SYNOPSIS")
	m.macro("nf")
	m.text(rootUsage)
	for _, c := range manCommands(root) {
		m.text(usageLine(c))
	}
	m.macro("fi")
	m.macro("SH", "DESCRIPTION")
	m.paragraphs(description(root))
	m.macro("SH", "GLOBAL OPTIONS")
	m.flags(root.LocalFlags())
	m.macro("SH", "COMMANDS")
	for _, c := range manCommands(root) {
		m.macro("SS", usageLine(c))
		m.paragraphs(description(c))
		if c.LocalFlags().HasAvailableFlags() {
			m.flags(c.LocalFlags())
		}
	}
	m.macro("SH", "EXIT STATUS")
	for _, e := range exitStatuses {
		m.item(e.code, e.meaning)
	}
	m.macro("SH", "ENVIRONMENT")
	for _, e := range environment {
		m.item(e[0], e[1])
	}
	m.macro("SH", "FILES")
	for _, f := range files {
		m.item(f[0], f[1])
	}
	m.macro("SH", "SEE ALSO")
	m.text("systemd-run(1), systemd.resource-control(5), cgroups(7), foreman(1); docs/ in cgdev's source: cli.md, services.md, run.md, json.md.")
}

// manCommands are the commands the page describes, in --help's order.
func manCommands(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, gr := range root.Groups() {
		for _, c := range root.Commands() {
			if !c.Hidden && c.GroupID == gr.ID {
				out = append(out, c)
			}
		}
	}
	return out
}

// roff writes man(7) markup, escaping text so that it prints as written.
type roff struct{ w io.Writer }

func (r *roff) macro(name string, args ...string) {
	fmt.Fprint(r.w, "."+name)
	for _, a := range args {
		fmt.Fprintf(r.w, " \"%s\"", escapeRoff(a))
	}
	fmt.Fprintln(r.w)
}

func (r *roff) text(s string) {
	for _, line := range strings.Split(s, "\n") {
		line = escapeRoff(strings.TrimSpace(line))
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			line = `\&` + line
		}
		fmt.Fprintln(r.w, line)
	}
}

// paragraphs writes text whose paragraphs are separated by blank lines.
func (r *roff) paragraphs(s string) {
	for i, p := range strings.Split(s, "\n\n") {
		if i > 0 {
			r.macro("PP")
		}
		r.text(p)
	}
}

// item is a tagged paragraph: the tag in bold, then its text.
func (r *roff) item(tag, text string) {
	r.macro("TP")
	fmt.Fprintf(r.w, "\\fB%s\\fR\n", escapeRoff(tag))
	r.text(text)
}

// flags writes one tagged paragraph per flag, as the help's flag table.
func (r *roff) flags(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		tag := `\fB\-\-` + escapeRoff(f.Name) + `\fR`
		if f.Shorthand != "" {
			tag = `\fB\-` + escapeRoff(f.Shorthand) + `\fR, ` + tag
		}
		if name := valueName(f); name != "" {
			tag += ` \fI` + escapeRoff(name) + `\fR`
		}
		_, usage := pflag.UnquoteUsage(f)
		if d := defaultValue(f); d != "" {
			usage += " (default " + d + ")"
		}
		r.macro("TP")
		fmt.Fprintln(r.w, tag)
		r.text(usage)
	})
}

// escapeRoff makes s print literally: backslashes as \e, and every '-' as
// \- (a minus sign: what a flag must be for copy and paste to work).
func escapeRoff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, `"`, `\(dq`)
	return strings.ReplaceAll(s, "-", `\-`)
}
