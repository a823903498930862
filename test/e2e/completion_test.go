package e2e_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cgdev/cgdev/test/testenv"
)

// completionProject is a project with two services, and a subdirectory to
// complete from.
func completionProject(t *testing.T) (dir, sub string) {
	t.Helper()
	dir = t.TempDir()
	sub = filepath.Join(dir, "src")
	must(t, os.Mkdir(sub, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "cgdev.yaml"), []byte("services:\n  web:\n    command: sleep 1\n  worker:\n    command: sleep 1\n"), 0o644))
	return dir, sub
}

// inShell runs script in shell with cgdev on PATH, in dir.
func inShell(t *testing.T, dir, shell string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(shell)
	if err != nil {
		t.Skipf("%s is not installed (make setup installs it)", shell)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(testenv.Binary(t))+":"+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s%s", shell, args, err, out.String(), errb.String())
	}
	return out.String()
}

// TestCompletionProtocol: what every script asks the binary (cobra's
// __complete): commands, flags, --driver values, and the service names of
// the project the line finds, without those already given.
func TestCompletionProtocol(t *testing.T) {
	dir, sub := completionProject(t)
	elsewhere := t.TempDir()
	for _, c := range []struct {
		in   string
		args []string
		want []string
	}{
		{sub, []string{"stop", ""}, []string{"web", "worker"}},
		{sub, []string{"stop", "web", ""}, []string{"worker"}},
		{sub, []string{"logs", "-f", "w"}, []string{"web", "worker"}},
		{elsewhere, []string{"-C", dir, "status", ""}, []string{"web", "worker"}},
		{elsewhere, []string{"-f", filepath.Join(dir, "cgdev.yaml"), "logs", "-f", ""}, []string{"web", "worker"}},
		{elsewhere, []string{"status", ""}, nil},
		{sub, []string{"sta"}, []string{"start", "status"}},
		{sub, []string{"--driver", ""}, []string{"auto", "direct", "systemd", "fallback"}},
		{sub, []string{"status", "--j"}, []string{"--json"}},
		{sub, []string{"run", "-p", "Mem"}, []string{"MemoryMax=", "MemoryHigh=", "MemorySwapMax="}},
		{sub, []string{"run", "--with", ""}, []string{"web", "worker"}},
		{sub, []string{"run", "--with", "web,"}, []string{"web,worker"}},
	} {
		_, out, _ := cgdevIn(t, c.in, nil, append([]string{"__complete"}, c.args...)...)
		var got []string
		for _, line := range strings.Split(out, "\n") {
			if line != "" && !strings.HasPrefix(line, ":") {
				got = append(got, strings.SplitN(line, "\t", 2)[0])
			}
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("cgdev __complete %s (in %s): %q, want %q", strings.Join(c.args, " "), c.in, got, c.want)
		}
	}
}

// TestCompletionBash: the bash script loads in a real bash with
// bash-completion, registers itself, and completes service names.
func TestCompletionBash(t *testing.T) {
	const lib = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(lib); err != nil {
		t.Skipf("%s missing: the bash-completion package is not installed (make setup installs it)", lib)
	}
	_, sub := completionProject(t)
	complete := func(line string) string {
		return `COMP_LINE="` + line + `"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< "$COMP_LINE"; ` +
			`[[ $COMP_LINE == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); ` +
			`__start_cgdev cgdev "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}" 2>/dev/null; echo "$COMP_LINE=> ${COMPREPLY[*]}"; `
	}
	out := inShell(t, sub, "bash", "-c", `source `+lib+`; source <(cgdev completion bash); complete -p cgdev; `+
		complete("cgdev stop ")+complete("cgdev stop web ")+complete("cgdev resta"))
	for _, want := range []string{"complete -o default -F __start_cgdev cgdev", "cgdev stop => web worker", "cgdev stop web => worker", "cgdev resta=> restart"} {
		if !strings.Contains(out, want) {
			t.Errorf("bash completion: no %q in\n%s", want, out)
		}
	}
}

// TestCompletionZshFish: the zsh script registers _cgdev with compinit;
// fish completes the service names.
func TestCompletionZshFish(t *testing.T) {
	_, sub := completionProject(t)
	t.Run("zsh", func(t *testing.T) {
		out := inShell(t, sub, "zsh", "-c", `autoload -U compinit; compinit -u -D; source <(cgdev completion zsh); print -r -- ${_comps[cgdev]}`)
		if strings.TrimSpace(out) != "_cgdev" {
			t.Errorf("zsh: cgdev completes with %q, want _cgdev", out)
		}
	})
	t.Run("fish", func(t *testing.T) {
		out := inShell(t, sub, "fish", "-c", `cgdev completion fish | source; complete -C "cgdev stop "`)
		if got := strings.Fields(out); strings.Join(got, " ") != "web worker" {
			t.Errorf("fish: cgdev stop <TAB> offers %q", got)
		}
	})
}

// TestManPage: the man page renders without a warning and documents every
// command and every option --help shows, and the exit statuses.
func TestManPage(t *testing.T) {
	dir := t.TempDir()
	code, page, stderr := cgdevIn(t, dir, nil, "__man")
	if code != 0 || !strings.HasPrefix(page, `.TH "CGDEV" "1"`) {
		t.Fatalf("cgdev __man: exit %d, %.80q %s", code, page, stderr)
	}
	file := filepath.Join(dir, "cgdev.1")
	must(t, os.WriteFile(file, []byte(page), 0o644))
	if groff, err := exec.LookPath("groff"); err == nil {
		out, err := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", file).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff warns about the man page: %v\n%s", err, out)
		}
	}
	man, err := exec.LookPath("man")
	if err != nil {
		t.Skip("man is not installed: the roff was checked only by groff")
	}
	cmd := exec.Command(man, "-P", "cat", "-l", file)
	cmd.Env = append(os.Environ(), "MANWIDTH=100", "MAN_KEEP_FORMATTING=")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("man -l: %v", err)
	}
	text := string(b)
	for _, want := range []string{"NAME", "SYNOPSIS", "GLOBAL OPTIONS", "COMMANDS", "EXIT STATUS", "ENVIRONMENT", "FILES", "NO_COLOR", "cgdev [-C DIR] [-f FILE]"} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered man page has no %q", want)
		}
	}
	longFlag := regexp.MustCompile(`^\s+(?:-\w, )?(--[a-z-]+)`)
	for _, c := range commandNames(t) {
		if c == "help" {
			continue
		}
		if !strings.Contains(text, "cgdev "+c) {
			t.Errorf("the man page does not describe %s", c)
		}
		_, help, _ := cgdevIn(t, dir, nil, c, "--help")
		for _, line := range strings.Split(help, "\n") {
			if m := longFlag.FindStringSubmatch(line); m != nil && !strings.Contains(text, m[1]) {
				t.Errorf("the man page does not document %s's %s", c, m[1])
			}
		}
	}
}

// TestMakeInstall: make install PREFIX=DIR installs the binary, the man
// page and the three completion scripts, and make uninstall removes them.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	prefix := t.TempDir()
	make := func(target string) {
		t.Helper()
		out, err := exec.Command("make", "-C", testenv.RepoRoot(), target, "PREFIX="+prefix).CombinedOutput()
		if err != nil {
			t.Fatalf("make %s PREFIX=%s: %v\n%s", target, prefix, err, out)
		}
	}
	make("install")
	files := map[string]string{
		"bin/cgdev":              "",
		"share/man/man1/cgdev.1": `.TH "CGDEV" "1"`,
		"share/bash-completion/completions/cgdev":    "__start_cgdev",
		"share/zsh/site-functions/_cgdev":            "#compdef cgdev",
		"share/fish/vendor_completions.d/cgdev.fish": "complete -c cgdev",
	}
	for f, want := range files {
		b, err := os.ReadFile(filepath.Join(prefix, f))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s after make install: %v, %.60q; want it to hold %q", f, err, b, want)
		}
	}
	if out, err := exec.Command(filepath.Join(prefix, "bin/cgdev"), "--version").Output(); err != nil || !strings.HasPrefix(string(out), "cgdev ") {
		t.Errorf("installed cgdev --version: %v %q", err, out)
	}
	make("uninstall")
	for f := range files {
		if _, err := os.Stat(filepath.Join(prefix, f)); err == nil {
			t.Errorf("%s left after make uninstall", f)
		}
	}
}
