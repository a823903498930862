package cleanup_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/launcher"
)

// TestOrphanCommand: the command the patterns see is the program's base
// name and its arguments, past any interpreter and its options.
func TestOrphanCommand(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"npm run dev", "", "", ""}, "npm run dev"}, // npm's process title, NUL-padded
		{[]string{"/usr/bin/node", "/x/node_modules/.bin/vitest", "run"}, "vitest run"},
		{[]string{"node", "--max-old-space-size=4096", "/x/node_modules/.bin/tsx", "watch", "src"}, "tsx watch src"},
		{[]string{"/x/node_modules/@esbuild/linux-x64/bin/esbuild", "--service=0.19", "--ping"}, "esbuild --service=0.19 --ping"},
		{[]string{"python3", "-u", "-m", "http.server"}, "http.server"},
		{[]string{"sh", "-c", "node /x/node_modules/.bin/vitest"}, "vitest"},
		{[]string{"bash", "-c", "tail -f /x/esbuild.log"}, "tail -f /x/esbuild.log"},
		{[]string{"node"}, "node"},
		{[]string{"node", "--inspect"}, "node --inspect"},
		{[]string{"vim", "vitest.config.ts"}, "vim vitest.config.ts"},
		{nil, ""},
		{[]string{""}, ""},
	} {
		if got := cleanup.Command(c.argv); got != c.want {
			t.Errorf("command(%q) = %q, want %q", c.argv, got, c.want)
		}
	}
}

// TestDefaultPatternsMatchCommands: each default pattern matches the real
// form of the tool it names, and none matches a command that merely mentions
// one of those tools in an argument.
func TestDefaultPatternsMatchCommands(t *testing.T) {
	var patterns []*regexp.Regexp
	for _, p := range launcher.DefaultOrphanPatterns {
		patterns = append(patterns, regexp.MustCompile(p))
	}
	matches := func(argv ...string) string {
		cmd := cleanup.Command(argv)
		for _, re := range patterns {
			if cleanup.MatchesCommand(re, cmd) {
				return re.String()
			}
		}
		return ""
	}
	for _, argv := range [][]string{
		{"npm run dev"}, {"npm run start"}, {"npm start"}, {"npm run test"}, {"npm test"},
		{"node", "/x/node_modules/.bin/vitest", "run"},
		{"node", "/x/node_modules/vitest/vitest.mjs"},
		{"node", "/x/node_modules/.bin/tsx", "watch", "src"},
		{"node", "/x/node_modules/.bin/tsx", "src/run-agent.ts"},
		{"/x/node_modules/@esbuild/linux-x64/bin/esbuild", "--service=0.19", "--ping"},
		{"turbo", "run", "test"},
		{"/x/node_modules/.bin/turbo", "run", "test", "--filter=web"},
		{"pnpm", "run", "test"},
		{"node", "/usr/lib/node_modules/pnpm/bin/pnpm.cjs", "run", "test"},
	} {
		if matches(argv...) == "" {
			t.Errorf("no default pattern matches %q (command %q)", argv, cleanup.Command(argv))
		}
	}
	for _, argv := range [][]string{
		{"vim", "vitest.config.ts"},
		{"tail", "-f", "esbuild.log"},
		{"bash", "-c", "tail -f esbuild.log"},
		{"less", "npm test output"},
		{"grep", "-r", "tsx watch", "."},
		{"node", "/x/scripts/build-with-esbuild.js"},
		{"code", "/x/turbo run test"},
	} {
		if re := matches(argv...); re != "" {
			t.Errorf("%q (command %q) matches %q: it only mentions the tool", strings.Join(argv, " "), cleanup.Command(argv), re)
		}
	}
}

// TestForgettable: a service whose group still holds processes after the
// stop keeps its tracking entries.
func TestForgettable(t *testing.T) {
	gone, left := cleanup.Forgettable([]string{"web", "db", "worker"}, map[string]bool{"db": true})
	if strings.Join(gone, ",") != "web,worker" || strings.Join(left, ",") != "db" {
		t.Errorf("forgettable: gone %v, left %v; want [web worker], [db]", gone, left)
	}
}
