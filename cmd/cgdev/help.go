package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// rootUsage is cgdev's usage line.
const rootUsage = "cgdev [-C DIR] [-f FILE] [--driver DRIVER] COMMAND [ARGS...]"

// writeHelp writes c's help (for --help and "help CMD", on stdout): the
// usage line, the description, the commands (for a command that has
// some), the command's options and the global ones.
func writeHelp(w io.Writer, c *cobra.Command) {
	if !c.HasParent() {
		fmt.Fprintf(w, "cgdev %s: %s.\n\n", version, c.Short)
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", usageLine(c), description(c))
	if c.HasAvailableSubCommands() {
		writeCommands(w, c)
	}
	local, global := c.LocalFlags(), c.InheritedFlags()
	if !c.HasParent() {
		local, global = pflag.NewFlagSet("", pflag.ContinueOnError), c.LocalFlags()
	}
	if local.HasAvailableFlags() {
		fmt.Fprintf(w, "\nOptions:\n%s", flagTable(local))
	}
	if global.HasAvailableFlags() {
		fmt.Fprintf(w, "\nGlobal options:\n%s", flagTable(global))
	}
	if !c.HasParent() {
		fmt.Fprintln(w, "\nRun 'cgdev COMMAND --help' for a command's options, 'man cgdev' for everything.")
		fmt.Fprintln(w, "Exit status: 0 success, 1 failure, 2 bad invocation (status: 3 when a service is down; run: the command's).")
	}
}

// writeUsageHint follows a usage error: the usage line and where to read more.
func writeUsageHint(w io.Writer, c *cobra.Command) {
	fmt.Fprintf(w, "Usage: %s\nRun '%s --help' for more.\n", usageLine(c), c.CommandPath())
}

// usageLine is "cgdev status [SVC...] [--json]": the command's path and
// the rest of its Use.
func usageLine(c *cobra.Command) string {
	if !c.HasParent() {
		return rootUsage
	}
	return c.UseLine()
}

// description is the command's long text, else its summary as a sentence.
func description(c *cobra.Command) string {
	if c.Long != "" {
		return strings.TrimSpace(c.Long)
	}
	return sentence(c.Short)
}

func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// writeCommands lists c's commands under their groups' titles.
func writeCommands(w io.Writer, c *cobra.Command) {
	groups := c.Groups()
	if len(groups) == 0 {
		groups = []*cobra.Group{{Title: "Commands:"}}
	}
	for _, gr := range groups {
		fmt.Fprintf(w, "\n%s\n", gr.Title)
		for _, sub := range c.Commands() {
			if !sub.Hidden && sub.GroupID == gr.ID {
				fmt.Fprintf(w, "  %-11s %s\n", sub.Name(), sub.Short)
			}
		}
	}
}

// flagTable formats flags as pflag's FlagUsages does, with two
// differences: a boolean flag reads "--json", where pflag 1.1 prints
// "--json[=true|false]", and the value's name comes from the usage's
// `BACKQUOTED` word only ("--file FILE", not "--file string").
func flagTable(fs *pflag.FlagSet) string {
	type row struct{ left, usage string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		if name := valueName(f); name != "" {
			left += " " + name
		}
		_, usage := pflag.UnquoteUsage(f)
		if d := defaultValue(f); d != "" {
			usage += " (default " + d + ")"
		}
		rows = append(rows, row{left, usage})
		width = max(width, len(left))
	})
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%-*s   %s\n", width, r.left, r.usage)
	}
	return b.String()
}

// valueName is the name of the value a flag takes ("" for a boolean):
// the usage's `BACKQUOTED` word, else its type in capitals.
func valueName(f *pflag.Flag) string {
	if f.Value.Type() == "bool" {
		return ""
	}
	if strings.Contains(f.Usage, "`") {
		name, _ := pflag.UnquoteUsage(f)
		return name
	}
	return strings.ToUpper(f.Value.Type())
}

// defaultValue is the flag's default when it says something (not false,
// 0, "" or an empty list).
func defaultValue(f *pflag.Flag) string {
	switch f.DefValue {
	case "", "false", "0", "0s", "[]":
		return ""
	}
	return f.DefValue
}
