package proc

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The /proc parsers read what any process can put there: a command name
// (in stat) of parentheses and spaces, an environment or arguments of any
// bytes. Fuzzed, none may panic, and what they return must hold together.

func FuzzParseStat(f *testing.F) {
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"1 (init) S 0 1 1 0 -1 4194560 1 2 0 0 3 4 0 0 20 0 1 0 5 6 7",
		"42 (a) b) (c) R 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0",
		"7 () Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0\n",
		"9 (x", "(", ")", "", "1 (x) S", "-1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseStat(b)
		if err != nil {
			return
		}
		open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if p.Comm != string(b[open+1:close]) {
			t.Errorf("comm %q, want the text between the first ( and the last )", p.Comm)
		}
		if n, _ := strconv.Atoi(strings.TrimSpace(string(b[:open]))); n != p.PID {
			t.Errorf("pid %d from %q", p.PID, b[:open])
		}
		if p.State == 0 {
			t.Errorf("no state from %q", b)
		}
	})
}

func FuzzParseEnviron(f *testing.F) {
	if b, err := os.ReadFile("/proc/self/environ"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("CGDEV_PROJECT=app-1234\x00CGDEV_SERVICE=web\x00"))
	f.Add([]byte("CGDEV_PROJECT=\x00CGDEV_PROJECT=second\x00CGDEV_RUN=x"))
	f.Add([]byte("=\x00\x00CGDEV_SERVICE\x00CGDEV_SERVICE==\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := parseEnviron(b)
		for _, v := range []struct{ key, val string }{{ProjectEnv, m.Project}, {ServiceEnv, m.Service}, {RunEnv, m.Run}} {
			if v.val != "" && !bytes.Contains(b, []byte(v.key+"="+v.val)) {
				t.Errorf("%s=%q is not in %q", v.key, v.val, b)
			}
			if strings.ContainsRune(v.val, 0) {
				t.Errorf("%s holds a NUL: %q", v.key, v.val)
			}
		}
	})
}

func FuzzJoinCmdline(f *testing.F) {
	if b, err := os.ReadFile("/proc/self/cmdline"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("node\x00/x/node_modules/.bin/vitest\x00run\x00"))
	f.Add([]byte("\x00\x00"))
	f.Add([]byte("sh\x00-c\x00echo a  b\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := joinCmdline(b)
		if strings.ContainsRune(s, 0) {
			t.Errorf("NUL left in %q", s)
		}
		if s != strings.TrimSpace(s) {
			t.Errorf("untrimmed %q", s)
		}
		if len(s) > len(b) {
			t.Errorf("%q longer than its input", s)
		}
	})
}
