package e2e_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cgdev/cgdev/test/testenv"
)

// TestDocsNameRealTests keeps the docs honest: every test, benchmark or
// fuzz target that README.md or docs/*.md names must exist in the
// repository. A name in the text (`TestX`, `TestX/sub_case`,
// `TestX/{a,b}`) must be a function of that exact name, and each subtest
// must appear in the Go sources (underscores read as spaces, as
// go test prints them). A name inside a `-run '…'` or `-bench '…'` pattern
// is a prefix, as go test reads it: some function must start with it.
// No process is started; the check reads files only.
func TestDocsNameRealTests(t *testing.T) {
	root := testenv.RepoRoot()
	funcs, sources := testFunctions(t, root)

	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	exact := regexp.MustCompile(`\b((?:Test|Benchmark|Fuzz)[A-Z0-9_][A-Za-z0-9_]*)((?:/(?:\{[^}\s]*\}|[A-Za-z0-9_.\-]+))*)`)
	pattern := regexp.MustCompile(`-(?:run|bench) '([^']*)'`)
	name := regexp.MustCompile(`^\^?((?:Test|Benchmark|Fuzz)[A-Za-z0-9_]*?)(\$?)$`)
	checked := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		for i, line := range strings.Split(string(b), "\n") {
			where := rel + ":" + strconv.Itoa(i+1)
			for _, m := range exact.FindAllStringSubmatch(pattern.ReplaceAllString(line, ""), -1) {
				checked++
				if !funcs[m[1]] {
					t.Errorf("%s names `%s`, but no func %s exists in the repository", where, m[1], m[1])
					continue
				}
				for _, sub := range subtestNames(m[2]) {
					if !strings.Contains(sources, sub) && !strings.Contains(sources, strings.ReplaceAll(sub, "_", " ")) {
						t.Errorf("%s names subtest %s/%s, which no test source mentions", where, m[1], sub)
					}
				}
			}
			for _, p := range pattern.FindAllStringSubmatch(line, -1) {
				for _, alt := range strings.Split(strings.Trim(p[1], "()"), "|") {
					n := name.FindStringSubmatch(strings.Trim(alt, "()"))
					if n == nil {
						continue // '^$' and other patterns that name nothing
					}
					checked++
					if n[2] == "$" && !funcs[n[1]] || n[2] == "" && !anyWithPrefix(funcs, n[1]) {
						t.Errorf("%s runs %q, which matches no test function", where, alt)
					}
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d test names found in the docs: the check is not reading them", checked)
	}
}

// testFunctions returns every Test, Benchmark and Fuzz function in the
// repository's Go files (a shared suite such as cgrouptest.TestDriver lives
// outside _test.go files), and the text of those files.
func testFunctions(t *testing.T, root string) (map[string]bool, string) {
	t.Helper()
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)[A-Za-z0-9_]*)\(`)
	funcs := map[string]bool{}
	var text strings.Builder
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
			funcs[m[1]] = true
		}
		text.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return funcs, text.String()
}

// subtestNames splits "/a/{b,c}" into its segments, braces expanded.
func subtestNames(path string) []string {
	var out []string
	for _, seg := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		seg = strings.TrimSuffix(strings.TrimPrefix(seg, "{"), "}")
		for _, s := range strings.Split(seg, ",") {
			if s != "" {
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}

func anyWithPrefix(funcs map[string]bool, prefix string) bool {
	for f := range funcs {
		if strings.HasPrefix(f, prefix) {
			return true
		}
	}
	return false
}
