package e2e_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
)

// cgdevIn runs the binary in dir with extra environment entries.
func cgdevIn(t testing.TB, dir string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// commandNames lists the commands cgdev --help shows, under its group titles.
func commandNames(t *testing.T) []string {
	t.Helper()
	code, help, stderr := cgdevIn(t, t.TempDir(), nil, "--help")
	if code != 0 || stderr != "" {
		t.Fatalf("cgdev --help: exit %d, stderr %q", code, stderr)
	}
	var cmds []string
	inList := false
	for _, line := range strings.Split(help, "\n") {
		switch {
		case strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " ") && line != "Global options:":
			inList = true
		case inList && strings.HasPrefix(line, "  "):
			cmds = append(cmds, strings.Fields(line)[0])
		default:
			inList = false
		}
	}
	for _, want := range []string{"start", "stop", "restart", "status", "ps", "logs", "up", "run", "tree", "kill-tree", "who", "doctor", "version", "completion", "help"} {
		if !slices.Contains(cmds, want) {
			t.Errorf("cgdev --help does not list %s (lists %v)", want, cmds)
		}
	}
	return cmds
}

// TestHelpForEveryCommand: --help and "help CMD" print the command's usage
// on stdout (so "| less" shows it) and exit 0; booleans read --json.
func TestHelpForEveryCommand(t *testing.T) {
	dir := t.TempDir()
	for _, c := range commandNames(t) {
		for _, args := range [][]string{{c, "--help"}, {c, "-h"}, {"help", c}} {
			code, out, stderr := cgdevIn(t, dir, nil, args...)
			if code != 0 || stderr != "" || !strings.HasPrefix(out, "Usage: cgdev "+c) {
				t.Errorf("cgdev %s: exit %d, stdout %.60q, stderr %q", strings.Join(args, " "), code, out, stderr)
			}
			if strings.Contains(out, "[=true|false]") || strings.Contains(out, "[=false]") {
				t.Errorf("cgdev %s prints a boolean flag with its value:\n%s", strings.Join(args, " "), out)
			}
		}
	}
	if code, out, _ := cgdevIn(t, dir, nil, "--version"); code != 0 || !strings.HasPrefix(out, "cgdev ") {
		t.Errorf("cgdev --version: exit %d, %q", code, out)
	}
	code, out, stderr := cgdevIn(t, dir, nil, "status", "--help")
	if !strings.Contains(out, "      --json   print the status as JSON") || code != 0 || stderr != "" {
		t.Errorf("status --help:\n%s", out)
	}
	// No command: the help, but on stderr and with status 2 (nothing ran).
	if code, out, stderr := cgdevIn(t, dir, nil); code != 2 || out != "" || !strings.Contains(stderr, "Usage: cgdev") {
		t.Errorf("cgdev alone: exit %d, stdout %q, stderr %.80q", code, out, stderr)
	}
}

// TestBadInvocation: a wrong flag, command, argument or flag value prints
// the error and the usage line on stderr, nothing on stdout, and exits 2,
// for every command.
func TestBadInvocation(t *testing.T) {
	dir := t.TempDir()
	for _, c := range commandNames(t) {
		args := []string{c, "--no-such-flag"}
		if c == "help" {
			continue // help takes a topic, not flags of its own
		}
		code, out, stderr := cgdevIn(t, dir, nil, args...)
		if code != 2 || out != "" || !strings.Contains(stderr, "unknown flag: --no-such-flag") || !strings.Contains(stderr, "Usage: cgdev "+c) {
			t.Errorf("cgdev %s: exit %d, stdout %q, stderr %q; want 2, the error and the usage line", strings.Join(args, " "), code, out, stderr)
		}
	}
	for _, c := range []struct {
		args      []string
		want, use string
	}{
		{[]string{"--no-such-flag", "status"}, "unknown flag: --no-such-flag", "Usage: cgdev status"},
		{[]string{"--drive", "direct", "status"}, "unknown flag: --drive", "Usage: cgdev status"},
		{[]string{"stat"}, `unknown command "stat" (did you mean status?)`, "Usage: cgdev [-C DIR]"},
		{[]string{"--driver"}, "flag needs an argument: --driver", "Usage: cgdev [-C DIR]"},
		{[]string{"stop", "--grace", "soon"}, `invalid argument "soon" for "--grace`, "Usage: cgdev stop"},
		{[]string{"stop", "--grace", "-1s"}, "--grace -1s: must not be negative", "Usage: cgdev stop"},
		{[]string{"kill-tree", "--grace", "-1s", "1"}, "must not be negative", "Usage: cgdev kill-tree"},
		{[]string{"tree"}, "expected exactly one PID", "Usage: cgdev tree"},
		{[]string{"tree", "abc"}, `PID "abc": not a positive number`, "Usage: cgdev tree"},
		{[]string{"doctor", "extra"}, "takes no arguments", "Usage: cgdev doctor"},
		{[]string{"who"}, "expected exactly one PORT", "Usage: cgdev who"},
		{[]string{"who", "70000"}, `PORT "70000": not a TCP port`, "Usage: cgdev who"},
		{[]string{"start", "-p", "0"}, "-p/--port 0: a port is 1 to 65535", "Usage: cgdev start"},
		{[]string{"version", "extra"}, "takes no arguments", "Usage: cgdev version"},
		{[]string{"run"}, "no command given", "Usage: cgdev run"},
		{[]string{"run", "-p", "Bogus=1", "--", "true"}, `unknown property "Bogus"`, "Usage: cgdev run"},
		{[]string{"completion"}, "name the shell", "Usage: cgdev completion"},
		{[]string{"completion", "tcsh"}, `unknown shell "tcsh"`, "Usage: cgdev completion"},
	} {
		code, out, stderr := cgdevIn(t, dir, nil, c.args...)
		if code != 2 || out != "" || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, c.use) {
			t.Errorf("cgdev %s: exit %d, stdout %q, stderr %q; want 2, %q and %q", strings.Join(c.args, " "), code, out, stderr, c.want, c.use)
		}
	}
}

// TestUnknownServiceIsUsageError: a service name that is not in the config
// is a bad invocation (2) for every command that takes names; nothing starts.
func TestUnknownServiceIsUsageError(t *testing.T) {
	p := newSvcProject(t, "services:\n  web:\n    command: 'echo $$ >> p/web; exec sleep 1000'\n")
	for _, c := range []string{"start", "stop", "restart", "status", "ps", "logs", "up"} {
		code, out, stderr := p.cgdev(c, "nosuch")
		if code != 2 || !strings.Contains(stderr, `no service "nosuch"`) || !strings.Contains(stderr, "(services: web)") || !strings.Contains(stderr, "Usage: cgdev "+c) {
			t.Errorf("cgdev %s nosuch: exit %d\nstdout:\n%s\nstderr:\n%s", c, code, out, stderr)
		}
	}
	if len(p.pids("web")) > 0 {
		t.Error("a command with an unknown service name started something")
	}
}

// TestGlobalFlagsAnywhere: --driver, -f/--file and -C work before and after
// the command, and a command's own flag before it too; each spelling gives
// the same answer as the others.
func TestGlobalFlagsAnywhere(t *testing.T) {
	p := newSvcProject(t, "services:\n  web:\n    command: 'exec sleep 1000'\n")
	elsewhere := t.TempDir()
	file := filepath.Join(p.dir, "cgdev.yaml")
	for _, args := range [][]string{
		{"-f", file, "status", "--json"},
		{"status", "-f", file, "--json"},
		{"--file=" + file, "--json", "status"},
		{"-C", p.dir, "status", "--json"},
		{"status", "--json", "-C", p.dir},
		{"-C" + p.dir, "--json", "status"},
		{"--directory", p.dir, "--json", "status"},
		{"-C", filepath.Dir(p.dir), "-f", filepath.Base(p.dir) + "/cgdev.yaml", "status", "--json"}, // -f relative to -C, as make does
	} {
		code, out, stderr := cgdevIn(t, elsewhere, nil, args...)
		if code != 3 || !strings.Contains(out, `"project": "`+p.id+`"`) || !strings.Contains(out, `"name": "web"`) {
			t.Errorf("cgdev %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, stderr)
		}
	}
	for _, args := range [][]string{
		{"--driver", "fallback", "status", "--json"},
		{"status", "--driver", "fallback", "--json"},
		{"--driver=fallback", "--json", "status"},
		{"--json", "status", "--driver=fallback"},
	} {
		code, out, stderr := p.cgdev(args...)
		if code != 3 || !strings.Contains(out, `"driver": "fallback"`) {
			t.Errorf("cgdev %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, stderr)
		}
	}
	if code, out, stderr := cgdevIn(t, elsewhere, nil, "-C", p.dir, "run", "--", "pwd"); code != 0 || strings.TrimSpace(out) != p.dir {
		t.Errorf("-C DIR run -- pwd: exit %d, %q %q; want %s", code, out, stderr, p.dir)
	}
	if code, _, stderr := cgdevIn(t, elsewhere, nil, "-C", filepath.Join(elsewhere, "nowhere"), "status"); code != 1 || !strings.Contains(stderr, "-C "+filepath.Join(elsewhere, "nowhere")+": no such file or directory") {
		t.Errorf("-C to a missing directory: exit %d, %q", code, stderr)
	}
	if code, _, stderr := cgdevIn(t, elsewhere, nil, "status"); code != 1 || !strings.Contains(stderr, "or any parent directory") {
		t.Errorf("status outside any project: exit %d, %q", code, stderr)
	}
}

// TestLogsFollowAndFile: before the command -f is the project file, after
// logs it is --follow; --file after logs names the file.
func TestLogsFollowAndFile(t *testing.T) {
	p := newSvcProject(t, "services:\n  web:\n    command: 'echo hello-from-web; exec sleep 1000'\n")
	p.mustCgdev("start")
	elsewhere := t.TempDir()
	file := filepath.Join(p.dir, "cgdev.yaml")
	for _, args := range [][]string{{"-f", file, "logs"}, {"logs", "--file", file}, {"-f", file, "logs", "-n", "1"}} {
		if code, out, stderr := cgdevIn(t, elsewhere, nil, args...); code != 0 || !strings.Contains(out, "web | hello-from-web") {
			t.Errorf("cgdev %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
		}
	}
	// -f after logs follows: it keeps running until interrupted.
	cmd := exec.Command(testenv.Binary(t), "-f", file, "logs", "-f")
	cmd.Dir = elsewhere
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	if !testenv.Eventually(10*time.Second, func() bool { return strings.Contains(out.String(), "web | hello-from-web") }) {
		t.Fatalf("logs -f printed %q", out.String())
	}
	f, err := os.OpenFile(filepath.Join(p.dir, ".cgdev/logs/web.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("a-later-line\n")
	f.Close()
	if !testenv.Eventually(10*time.Second, func() bool { return strings.Contains(out.String(), "web | a-later-line") }) {
		t.Fatalf("logs -f did not follow: %q", out.String())
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("logs -f after Ctrl-C: %v\n%s", err, out.String())
	}
	p.mustCgdev("stop")
	p.assertNothingLeft()
}

// TestFromSubdirectory: every command finds the project from a
// subdirectory, as git does; with the config deleted, the project is still
// found by its .cgdev/ directory and stop stops what runs.
func TestFromSubdirectory(t *testing.T) {
	p := newSvcProject(t, "services:\n  web:\n    command: 'echo $$ >> p/web; exec sleep 1000'\n")
	sub := filepath.Join(p.dir, "src", "deep")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) { return cgdevIn(t, sub, nil, args...) }
	if code, out, stderr := run("start"); code != 0 {
		t.Fatalf("start from %s: exit %d\n%s%s", sub, code, out, stderr)
	}
	pid := p.waitPids("web", 1)[0]
	if code, out, _ := run("status"); code != 0 || !strings.Contains(out, "running") {
		t.Errorf("status from a subdirectory: exit %d\n%s", code, out)
	}
	if code, out, _ := run("ps", "web"); code != 0 || !strings.Contains(out, "sleep 1000") {
		t.Errorf("ps from a subdirectory: exit %d\n%s", code, out)
	}
	if err := os.Rename(filepath.Join(p.dir, "cgdev.yaml"), filepath.Join(p.dir, "cgdev.yaml.moved")); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run("start"); code != 1 || !strings.Contains(stderr, "no cgdev.yaml or Procfile any more") {
		t.Errorf("start without the config: exit %d, %q", code, stderr)
	}
	if code, out, _ := run("status"); code != 0 || !strings.Contains(out, "web") {
		t.Errorf("status without the config: exit %d\n%s", code, out)
	}
	if code, out, stderr := run("stop"); code != 0 {
		t.Errorf("stop without the config: exit %d\n%s%s", code, out, stderr)
	}
	if p.ours(pid) {
		t.Errorf("web (PID %d) survived the stop", pid)
	}
	p.assertNothingLeft("web")
}

// TestStatusExitCodes: 0 when every configured service it reports on
// runs, 3 when one does not, with or without --json; a group running for a
// service no longer in the config does not count.
func TestStatusExitCodes(t *testing.T) {
	p := newSvcProject(t, `services:
  a:
    command: 'exec sleep 1000'
  b:
    command: 'exec sleep 1000'
`)
	expect := func(want int, args ...string) {
		t.Helper()
		if code, out, stderr := p.cgdev(append([]string{"status"}, args...)...); code != want {
			t.Errorf("status %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, stderr)
		}
	}
	expect(3)
	expect(3, "--json")
	p.mustCgdev("start")
	expect(0)
	expect(0, "--json")
	p.mustCgdev("stop", "b")
	expect(3)
	expect(3, "--json")
	expect(0, "a")
	expect(3, "b")
	expect(2, "c")
	p.mustCgdev("start", "b")
	os.WriteFile(filepath.Join(p.dir, "cgdev.yaml"), []byte("services:\n  a:\n    command: 'exec sleep 1000'\n"), 0o644)
	expect(0) // b runs on, no longer configured
	if st := p.statusJSON(); st["b"].Configured || !st["a"].Configured || st["b"].State != "running" {
		t.Errorf("status after b left the config: %+v", st)
	}
	p.mustCgdev("stop")
	expect(3)
	p.assertNothingLeft()
}

// TestRestartWithoutNames restarts every configured service.
func TestRestartWithoutNames(t *testing.T) {
	p := newSvcProject(t, `services:
  a:
    command: 'echo $$ >> p/a; exec sleep 1000'
  b:
    command: 'echo $$ >> p/b; exec sleep 1000'
`)
	p.mustCgdev("start")
	a1, b1 := p.waitPids("a", 1)[0], p.waitPids("b", 1)[0]
	out := p.mustCgdev("restart")
	a2, b2 := p.waitPids("a", 2)[1], p.waitPids("b", 2)[1]
	if p.ours(a1) || p.ours(b1) || !p.ours(a2) || !p.ours(b2) {
		t.Errorf("restart: old %d %d, new %d %d\n%s", a1, b1, a2, b2, out)
	}
	if code, _, _ := p.cgdev("status"); code != 0 {
		t.Errorf("status after restart: exit %d", code)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("a", "b")
}

// TestOneServiceOrder: start's summary, status and ps list the services in
// the config's order, whatever the dependency order or the names' order.
func TestOneServiceOrder(t *testing.T) {
	p := newSvcProject(t, `services:
  zeta:
    command: 'exec sleep 1000'
    depends_on: [mu]
  alpha:
    command: 'exec sleep 1000'
  mu:
    command: 'exec sleep 1000'
`)
	order := func(what, out string) {
		t.Helper()
		z, a, m := strings.Index(out, "zeta"), strings.Index(out, "alpha"), strings.Index(out, "mu ")
		if z < 0 || a < 0 || m < 0 || !(z < a && a < m) {
			t.Errorf("%s does not list zeta, alpha, mu in the config's order:\n%s", what, out)
		}
	}
	out := p.mustCgdev("start")
	order("start's summary", out[strings.Index(out, "SERVICE"):])
	order("status", p.mustCgdev("status"))
	order("ps", p.mustCgdev("ps"))
	p.mustCgdev("stop")
	p.assertNothingLeft()
}

// humanDuration is the one format every duration is printed in
// (internal/human.Duration): under a second always in ms, never "0s".
var (
	anyDuration   = regexp.MustCompile(`\b[0-9][0-9.]*(ms|s|m[0-9]+s|h[0-9]+m|d[0-9]+h|µs|ns|m|h)\b`)
	humanDuration = regexp.MustCompile(`^([0-9]+ms|[1-9][0-9]*(\.[0-9]{1,3})?s|[0-9]+m[0-9]{2}s|[0-9]+h[0-9]{2}m|[0-9]+d[0-9]{2}h)$`)
)

// TestOneDurationFormat: start, status and stop print durations in one
// format: a fresh service's uptime reads "412ms", not "0s".
func TestOneDurationFormat(t *testing.T) {
	p := newSvcProject(t, `grace: 300ms
services:
  web:
    command: 'sleep 0.2; echo up; exec sleep 1000'
    ready: {log: "^up$"}
  stubborn:
    command: 'trap "" TERM; while :; do sleep 0.05; done'
`)
	outs := []string{p.mustCgdev("start"), p.mustCgdev("status"), p.mustCgdev("stop")}
	seen := 0
	for _, out := range outs {
		for _, d := range anyDuration.FindAllString(out, -1) {
			seen++
			if !humanDuration.MatchString(d) {
				t.Errorf("duration %q is not in the one format, in:\n%s", d, out)
			}
		}
	}
	if seen < 5 {
		t.Errorf("found only %d durations in:\n%s", seen, strings.Join(outs, "\n"))
	}
	p.assertNothingLeft()
}

// TestNoColorOffTerminal: colour only on a terminal, never with NO_COLOR
// or TERM=dumb:
// piped output of every service command has no ESC byte; logs on a
// terminal is coloured unless NO_COLOR is set.
func TestNoColorOffTerminal(t *testing.T) {
	p := newSvcProject(t, "services:\n  web:\n    command: 'echo hello; exec sleep 1000'\n")
	for _, args := range [][]string{{"start"}, {"status"}, {"ps"}, {"logs"}, {"status", "--json"}, {"doctor"}} {
		if code, out, stderr := p.cgdev(args...); code != 0 || strings.ContainsRune(out+stderr, 0x1b) {
			t.Errorf("cgdev %s (piped): exit %d, ESC in %q", strings.Join(args, " "), code, out+stderr)
		}
	}
	onTerminal := func(env ...string) string {
		master, slave := openPTY(t)
		cmd := exec.Command(testenv.Binary(t), "logs")
		cmd.Dir, cmd.Env = p.dir, append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = slave, slave
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		r := &ptyReader{f: master}
		if !r.waitFor("hello", 5*time.Second) {
			t.Fatalf("logs on a terminal printed %q", r.buf.String())
		}
		return r.buf.String()
	}
	if out := onTerminal("NO_COLOR=", "TERM=xterm"); !strings.ContainsRune(out, 0x1b) {
		t.Errorf("logs on a terminal is not coloured: %q", out)
	}
	if out := onTerminal("NO_COLOR=1", "TERM=xterm"); strings.ContainsRune(out, 0x1b) {
		t.Errorf("logs with NO_COLOR=1 on a terminal is coloured: %q", out)
	}
	if out := onTerminal("NO_COLOR=", "TERM=dumb"); strings.ContainsRune(out, 0x1b) {
		t.Errorf("logs with TERM=dumb is coloured: %q", out)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft()
}

// TestExitStatusTable: each row of docs/cli.md's exit status table, as the
// commands give it.
func TestExitStatusTable(t *testing.T) {
	p := newSvcProject(t, "services:\n  web:\n    command: 'exec sleep 1000'\n  broken:\n    command: 'exit 1'\n")
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		row  string
		code int
		args []string
	}{
		{"| 0 |", 0, []string{"version"}},
		{"| 1 |", 1, []string{"start", "broken"}},
		{"| 1 |", 1, []string{"-f", "missing.yaml", "status"}},
		{"| 2 |", 2, []string{"status", "--bogus"}},
		{"| 3 |", 3, []string{"status"}},
		{"| N |", 7, []string{"run", "--", "sh", "-c", "exit 7"}},
		// | 128+n |: TestLockWaitNamesHolder and TestRestartInterruptedStops.
	} {
		if !strings.Contains(string(doc), c.row) {
			t.Errorf("docs/cli.md has no exit status row %q", c.row)
		}
		if code, out, stderr := p.cgdev(c.args...); code != c.code {
			t.Errorf("cgdev %s: exit %d, want %d\n%s%s", strings.Join(c.args, " "), code, c.code, out, stderr)
		}
	}
	p.mustCgdev("stop")
}
