// Command cgdev runs a project's development services and test runs each in a
// cgroup of its own, so that stopping them stops everything they spawned.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand: its usage line, a summary and its entry point.
type command struct {
	usage   string
	summary string
	run     func(g *globals, args []string) error
}

// globals are the flags every subcommand accepts, and where output goes.
type globals struct {
	driver string
	stdout io.Writer
	stderr io.Writer
}

func commands() map[string]command {
	return map[string]command{
		"run":       {"run [OPTIONS] -- CMD [ARGS...]", "run one command in its own cgroup, in the foreground", runCmd},
		"doctor":    {"doctor [--json]", "explain what this machine offers and which driver cgdev picks", doctorCmd},
		"version":   {"version", "print cgdev's version", versionCmd},
		"tree":      {"tree [--json] PID", "list a process and its descendants breadth first, with service, CPU %, RSS and command", treeCmd},
		"kill-tree": {"kill-tree [--grace D] PID", "stop a process and all its descendants: SIGTERM, wait, SIGKILL the rest", killTreeCmd},
		"start":     {"start [-f FILE] [SVC...]", "start the project's services (or those named, with what they depend on) and wait until they are ready", startCmd},
		"stop":      {"stop [-f FILE] [SVC...] [--force] [--containers] [--grace D]", "stop the project's services and everything they spawned, in five verified phases", stopCmd},
		"status":    {"status [-f FILE] [--json]", "show each service's state, main PID, processes, memory, CPU, uptime and readiness", statusCmd},
		"ps":        {"ps [-f FILE] [SVC...]", "show each running service's process tree", psCmd},
		"logs":      {"logs [--file FILE] [-f] [-n N] [SVC...]", "print (and with -f follow) the services' logs, prefixed with their names", logsCmd},
		"restart":   {"restart [-f FILE] [--force] SVC...", "stop, then start, the named services", restartCmd},
		"up":        {"up [-f FILE] [SVC...]", "start, follow the logs, and stop everything on Ctrl-C", upCmd},
	}
}

// exitError carries a status to exit with, after its message (if any) is printed.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs cgdev with args and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	fs := pflag.NewFlagSet("cgdev", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(stderr)
	fs.StringVar(&g.driver, "driver", "", "cgroup driver: auto, direct, systemd or fallback (default $CGDEV_DRIVER, else the config's driver:, else auto)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { usage(stderr, fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "cgdev", version)
		return 0
	}
	if fs.NArg() == 0 {
		usage(stderr, fs)
		return 2
	}
	name := fs.Arg(0)
	if name == "help" {
		usage(stdout, fs)
		return 0
	}
	cmd, ok := commands()[name]
	if !ok {
		fmt.Fprintf(stderr, "cgdev: unknown command %q (see cgdev --help)\n", name)
		return 2
	}
	err := cmd.run(g, fs.Args()[1:])
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintf(stderr, "cgdev %s: %s\n", name, ee.msg)
		}
		return ee.code
	case errors.Is(err, pflag.ErrHelp):
		return 0
	default:
		fmt.Fprintf(stderr, "cgdev %s: %v\n", name, err)
		return 1
	}
}

func versionCmd(g *globals, args []string) error {
	if err := newFlagSet(g, "version").Parse(args); err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, "cgdev", version)
	return nil
}

func usage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "cgdev %s: run dev services and test runs each in its own cgroup.\n\nUsage: cgdev [--driver D] COMMAND [ARGS...]\n\nCommands:\n", version)
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(w, "\nGlobal options:\n%s\nRun 'cgdev COMMAND --help' for a command's options.\n", fs.FlagUsages())
}

// newFlagSet returns a flag set for a subcommand that prints its usage on --help.
func newFlagSet(g *globals, name string) *pflag.FlagSet {
	c := commands()[name]
	fs := pflag.NewFlagSet("cgdev "+name, pflag.ContinueOnError)
	fs.SetOutput(g.stderr)
	fs.Usage = func() {
		fmt.Fprintf(g.stderr, "Usage: cgdev %s\n\n%s.\n\nOptions:\n%s", c.usage, upperFirst(c.summary), fs.FlagUsages())
	}
	return fs
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// usageError is a bad invocation: exit status 2.
func usageError(format string, a ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, a...)}
}
