package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cgdev/cgdev/test/testenv"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The --json outputs are checked against docs/json.schema.json with a JSON
// Schema validator rather than decoded into Go structs: encoding/json
// matches keys case-insensitively, so a strict decode would take "PID" for
// "pid", and "State": 83 would only fail by luck of the type. The schema
// says, for each key, its exact name, its type, whether it is required and
// that no other key may appear.
var (
	schemaOnce sync.Once
	schemas    map[string]*jsonschema.Schema
	schemaErr  error
)

const schemaFile = "docs/json.schema.json"

// schemaFor compiles the schema of one command's output ($defs/<name>).
func schemaFor(t testing.TB, name string) *jsonschema.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		path := filepath.Join(testenv.RepoRoot(), schemaFile)
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		schemas = map[string]*jsonschema.Schema{}
		for _, n := range []string{"status", "doctor", "tree", "who"} {
			var s *jsonschema.Schema
			if s, schemaErr = c.Compile(path + "#/$defs/" + n); schemaErr != nil {
				return
			}
			schemas[n] = s
		}
	})
	if schemaErr != nil {
		t.Fatalf("%s: %v", schemaFile, schemaErr)
	}
	return schemas[name]
}

// checkJSON fails the test unless out is one JSON document valid against
// the schema of command's output.
func checkJSON(t testing.TB, command, out string) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Errorf("%s --json is not JSON: %v\n%s", command, err, out)
		return
	}
	if err := schemaFor(t, command).Validate(v); err != nil {
		t.Errorf("%s --json does not match %s:\n%v\n%s", command, schemaFile, err, out)
	}
}

// TestJSONContract: each command's --json output, in several states,
// matches the schema, and docs/json.md documents every key the schema has.
func TestJSONContract(t *testing.T) {
	p := newSvcProject(t, `services:
  web:
    command: 'sleep 1000 & exec sleep 1000'
    ready: {exec: "true"}
  idle:
    command: 'exec sleep 1000'
`)
	p.statusJSON() // nothing running: checked inside
	p.mustCgdev("start")
	st := p.statusJSON()
	for _, d := range []string{"direct", "fallback"} {
		_, out, _ := p.cgdev("--driver", d, "doctor", "--json")
		checkJSON(t, "doctor", out)
	}
	code, out, stderr := p.cgdev("tree", "--json", strconv.Itoa(st["web"].PID))
	if code != 0 {
		t.Fatalf("tree --json: exit %d, %s", code, stderr)
	}
	checkJSON(t, "tree", out)
	var tree []map[string]any
	json.Unmarshal([]byte(out), &tree)
	if len(tree) != 2 || tree[0]["service"] != "web" || tree[0]["state"] != "S" {
		t.Errorf("tree --json of web's main process: %v", tree)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft()

	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "json.md"))
	if err != nil {
		t.Fatal(err)
	}
	schema, _ := os.ReadFile(filepath.Join(testenv.RepoRoot(), schemaFile))
	for _, m := range regexp.MustCompile(`"([a-z0-9_]+)": \{`).FindAllStringSubmatch(string(schema), -1) {
		key := m[1]
		switch key {
		case "properties", "items", "duration", "service", "status", "doctor", "tree", "who", "holders", "exit":
			continue // the schema's structure and its $defs, not keys of the output
		}
		if !strings.Contains(string(doc), "`"+key+"`") {
			t.Errorf("docs/json.md does not document the key %q", key)
		}
	}
}

// TestJSONSchemaCatchesCase: the check this contract rests on fails on the
// old spellings ("PID", "State": 83), so it can fail.
func TestJSONSchemaCatchesCase(t *testing.T) {
	ok := `[{"pid":1,"ppid":0,"pgid":1,"sid":1,"uid":0,"depth":0,"comm":"init","state":"S","start_ticks":1,"threads":1,"service":"","cpu_percent":0,"rss":1,"command":"init"}]`
	if err := schemaFor(t, "tree").Validate(mustJSON(t, ok)); err != nil {
		t.Fatalf("a valid tree is refused: %v", err)
	}
	for _, bad := range []string{
		strings.Replace(ok, `"pid"`, `"PID"`, 1),
		strings.Replace(ok, `"state":"S"`, `"state":83`, 1),
		strings.Replace(ok, `"rss":1,`, ``, 1),
	} {
		if schemaFor(t, "tree").Validate(mustJSON(t, bad)) == nil {
			t.Errorf("the schema accepts %s", bad)
		}
	}
}

func mustJSON(t *testing.T, s string) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
