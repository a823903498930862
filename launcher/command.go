package launcher

import (
	"os/exec"
	"strings"
)

// defaultShell runs a service's command: /bin/sh -c, as foreman and
// overmind do. A process-compose.yaml may name another (shell:).
var defaultShell = []string{"/bin/sh", "-c"}

// serviceCommand builds the (unstarted) command of svc: its shell with the
// command as the script. A simple command, a program and its arguments with
// no shell syntax, is run as "exec COMMAND", so that the shell replaces
// itself with the program: the service's main PID, the one state.json and
// .pids/ record and stop signals first, is the program's, not a shell
// waiting for it (dash, Debian's /bin/sh, does not exec a -c script's last
// command by itself). The shell still looks the program up in the
// service's PATH and reports a missing one (exit 127).
func serviceCommand(svc *Service) *exec.Cmd {
	shell := svc.Shell
	if len(shell) == 0 {
		shell = defaultShell
	}
	script := svc.Command
	if isSimpleCommand(script) {
		script = "exec " + script
	}
	return exec.Command(shell[0], append(shell[1:len(shell):len(shell)], script)...)
}

// shellOnly are the words a simple command may not start with: shell
// builtins that no program on PATH stands for (exec would fail on them),
// and the reserved words.
var shellOnly = map[string]bool{
	"exec": true, "cd": true, "export": true, "set": true, "unset": true, "alias": true,
	"read": true, "shift": true, "trap": true, "wait": true, "source": true, ".": true,
	"eval": true, "exit": true, "return": true, "ulimit": true, "umask": true,
	"times": true, "type": true, "hash": true, "getopts": true, "command": true,
	"readonly": true, "local": true, "break": true, "continue": true, "jobs": true,
	"fg": true, "bg": true, "builtin": true, "declare": true, "typeset": true,
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "for": true,
	"while": true, "until": true, "do": true, "done": true, "case": true, "esac": true,
	"function": true, "select": true, "time": true, "coproc": true,
}

// isSimpleCommand reports whether s is words only: unquoted characters
// that no shell treats specially, variables ($NAME, ${NAME}: the
// Procfile's "-p $PORT"), 'single-quoted' text and "double-quoted" text
// without `, \ or a $ other than a variable, separated by blanks; the
// first word plain text, neither an assignment (VAR=x cmd) nor a builtin
// or reserved word. Anything else (command substitutions, redirections,
// pipes, lists, globs, comments, several lines) is left to the shell as it
// is written.
func isSimpleCommand(s string) bool {
	s = strings.Trim(s, " \t")
	if s == "" {
		return false
	}
	first, inFirst := strings.Builder{}, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			inFirst = false
			continue
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return false
			}
			if inFirst {
				first.WriteString(s[i+1 : i+1+end])
			}
			i += end + 1
			continue
		case c == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 || strings.ContainsAny(s[i+1:i+1+end], "`\\") || !onlyVariables(s[i+1:i+1+end]) {
				return false
			}
			if inFirst && strings.Contains(s[i+1:i+1+end], "$") {
				return false
			}
			if inFirst {
				first.WriteString(s[i+1 : i+1+end])
			}
			i += end + 1
			continue
		case c == '$':
			n := variableLen(s[i:])
			if n == 0 || inFirst {
				return false
			}
			i += n - 1
			continue
		case !plainChar(c):
			return false
		}
		if inFirst {
			first.WriteByte(c)
		}
	}
	w := first.String()
	return w != "" && !shellOnly[w] && !strings.Contains(w, "=")
}

// plainChar reports whether c means itself to a POSIX shell wherever it
// stands in an unquoted word.
func plainChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("_-./:,+@%^=", c) >= 0
}

// variableLen is the length of the variable reference $NAME or ${NAME} at
// the start of s, 0 when s does not start with one.
func variableLen(s string) int {
	if len(s) < 2 || s[0] != '$' {
		return 0
	}
	if s[1] == '{' {
		end := strings.IndexByte(s, '}')
		if end < 3 || !isName(s[2:end]) {
			return 0
		}
		return end + 1
	}
	n := 1
	for n < len(s) && isNameChar(s[n]) {
		n++
	}
	if n == 1 || !isNameStart(s[1]) {
		return 0
	}
	return n
}

// onlyVariables reports whether every $ in s starts a variable reference.
func onlyVariables(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '$' {
			n := variableLen(s[i:])
			if n == 0 {
				return false
			}
			i += n - 1
		}
	}
	return true
}

func isName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}
