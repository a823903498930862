// Command cgdev runs a project's development services and test runs each in a
// cgroup of its own, so that stopping them stops everything they spawned.
//
// The commands are a spf13/cobra tree (flags on spf13/pflag): one file per
// command holds its flags, its help text and its body. --help, the man page
// (cgdev __man) and the shell completion scripts (cgdev completion SHELL)
// are all generated from that tree.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses. docs/cli.md has the same table, and test/e2e/cli_test.go
// holds each command to it.
const (
	exitOK      = 0
	exitFailure = 1 // the command could not do what it was asked
	exitUsage   = 2 // bad invocation: unknown command or flag, bad argument
)

// exitStatuses describe the exit statuses for --help and the man page.
var exitStatuses = []struct{ code, meaning string }{
	{"0", "success; for status: every service it reports on is up (running or ready) or disabled"},
	{"1", "failure: a config error, a service that did not start, a stop that left something running, ..."},
	{"2", "bad invocation: an unknown command, flag or service name, a missing or extra argument, a bad flag value"},
	{"3", "status only: a configured service is not up (neither running nor ready nor disabled)"},
	{"N", "run only: the command's own exit status (128+n when signal n ended it)"},
	{"128+n", "given up on signal n (130: Ctrl-C): a wait for the project lock (nothing changed), a restart whose stop was interrupted (stopped, not started again)"},
}

// globals are the flags every command accepts, and where output goes.
type globals struct {
	driver string               // --driver
	file   string               // -f/--file
	dir    string               // -C/--directory
	load   launcher.LoadOptions // start's, up's and restart's -e and -p
	stdout io.Writer
	stderr io.Writer
}

// exitError carries a status to exit with, after its message (if any) is
// printed; a message with code exitUsage is followed by the usage line.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageError is a bad invocation: exit status 2.
func usageError(format string, a ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, a...)}
}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs cgdev with args and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	args, err := commandFirst(root, args)
	if err != nil {
		return g.exitStatus(root, err)
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if cmd == nil {
		cmd = root
	}
	return g.exitStatus(cmd, err)
}

// exitStatus prints err as "cgdev CMD: message" and returns its status; a
// usage error is followed by the command's usage line.
func (g *globals) exitStatus(cmd *cobra.Command, err error) int {
	if err == nil {
		return exitOK
	}
	code, msg := exitFailure, err.Error()
	var ee *exitError
	if errors.As(err, &ee) {
		code, msg = ee.code, ee.msg
	}
	if msg != "" {
		fmt.Fprintf(g.stderr, "%s: %s\n", cmd.CommandPath(), msg)
		if code == exitUsage {
			writeUsageHint(g.stderr, cmd)
		}
	}
	return code
}

// newRoot builds the command tree: the global flags and every command.
func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "cgdev",
		Short: "run dev services and test runs each in its own cgroup",
		Long: `cgdev runs a project's development services (from cgdev.yaml, a Procfile or a
process-compose.yaml) and test runs each in a cgroup of its own, so that
stopping them stops everything they spawned: background children, setsid
children, double-forked daemons. There is no resident daemon: the kernel's
cgroups are the source of truth.

The project is found like git finds its repository: the nearest of the working
directory and its parents holding cgdev.yaml, a Procfile, a process-compose.yaml
or a .cgdev/ directory (a project whose config file is gone: stop, status and
ps still work there). -f names the file, -C the directory to start from.

Global flags go before or after the command: "cgdev -C web status" and
"cgdev status -C web" are the same. Before the command -f is --file; after
"logs" it is --follow, as in "docker compose -f FILE logs -f".`,
		Version:               version,
		Args:                  cobra.NoArgs,
		SilenceErrors:         true,
		SilenceUsage:          true,
		DisableFlagsInUseLine: true,
		RunE: func(c *cobra.Command, _ []string) error {
			writeHelp(g.stderr, c) // what to type next, but not on stdout: no command ran
			return &exitError{code: exitUsage}
		},
		PersistentPreRunE: func(*cobra.Command, []string) error { return g.enterDir() },
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetVersionTemplate("cgdev {{.Version}}\n")
	root.SetHelpFunc(func(c *cobra.Command, _ []string) { writeHelp(c.OutOrStdout(), c) })
	root.SetUsageFunc(func(c *cobra.Command) error { writeUsageHint(c.ErrOrStderr(), c); return nil })
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError("%v", err) })

	pf := root.PersistentFlags()
	pf.StringVarP(&g.dir, "directory", "C", "", "run as if cgdev were started in `DIR` (like git -C, make -C)")
	pf.StringVarP(&g.file, "file", "f", "", "the project `FILE` (default: the nearest cgdev.yaml, else Procfile, else process-compose.yaml, here or in a parent directory)")
	pf.StringVar(&g.driver, "driver", "", "cgroup `DRIVER`: auto, direct, systemd or fallback (default: $CGDEV_DRIVER, else the config's driver:, else auto)")
	pf.BoolP("help", "h", false, "show this help")
	root.Flags().Bool("version", false, "print the version and exit")
	root.MarkPersistentFlagDirname("directory")
	root.RegisterFlagCompletionFunc("driver", completeDrivers)

	root.AddGroup(
		&cobra.Group{ID: "services", Title: "The project's services:"},
		&cobra.Group{ID: "processes", Title: "One command, any process:"},
		&cobra.Group{ID: "other", Title: "About cgdev:"},
	)
	for _, c := range []*cobra.Command{
		startCommand(g), stopCommand(g), restartCommand(g), statusCommand(g),
		psCommand(g), logsCommand(g), upCommand(g),
	} {
		c.GroupID = "services"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{runCommand(g), treeCommand(g), killTreeCommand(g), whoCommand(g)} {
		c.GroupID = "processes"
		root.AddCommand(c)
	}
	root.AddCommand(doctorCommand(g), versionCommand(g), manCommand(g), superviseCommand(g), runWatchCommand(g))
	root.SetHelpCommandGroupID("other")
	root.SetCompletionCommandGroupID("other")
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	if comp, _, err := root.Find([]string{"completion"}); err == nil && comp != root {
		comp.Use = "completion bash|zsh|fish|powershell"
		comp.Short = "print a shell completion script: commands, flags, the project's service names"
		comp.Long = `Print a script that completes cgdev's commands, flags and flag values, and the
service names of the project the command line finds (-C and -f included), for
the shell named. Try it in the current shell with
"source <(cgdev completion bash)"; make install puts the bash, zsh and fish
scripts where those shells look (see docs/cli.md).`
		comp.Args = cobra.ArbitraryArgs
		comp.RunE = func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("name the shell: bash, zsh, fish or powershell")
			}
			return usageError("unknown shell %q (bash, zsh, fish or powershell)", args[0])
		}
	}
	if help, _, err := root.Find([]string{"help"}); err == nil && help != root {
		help.Use, help.Short = "help [COMMAND]", "show the help of cgdev or of a command (as --help does)"
	}
	for _, c := range root.Commands() {
		if c.GroupID == "" && !c.Hidden {
			c.GroupID = "other"
		}
	}
	walk(root, func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true
		c.Args = argsAreUsage(c.Args)
	})
	return root
}

// walk calls f for c and every command below it.
func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walk(sub, f)
	}
}

// argsAreUsage makes an argument check's error a usage error (exit 2);
// cobra's own checks (the completion commands') return plain errors.
func argsAreUsage(check cobra.PositionalArgs) cobra.PositionalArgs {
	if check == nil {
		return nil
	}
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			var ee *exitError
			if errors.As(err, &ee) {
				return err
			}
			return usageError("%v", err)
		}
		return nil
	}
}

// enterDir changes to the -C directory: the rest of the command, -f
// included, then runs as if cgdev had been started there.
func (g *globals) enterDir() error {
	if g.dir == "" {
		return nil
	}
	if err := os.Chdir(g.dir); err != nil {
		return fmt.Errorf("-C %s: %w", g.dir, errors.Unwrap(err))
	}
	return nil
}

func versionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print cgdev's version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(g.stdout, "cgdev", version)
			return nil
		},
	}
}

// noArgs refuses arguments with a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("%s takes no arguments (got %q)", c.Name(), args[0])
	}
	return nil
}
