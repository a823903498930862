package launcher

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// docs/cgdev.schema.json is the JSON Schema of cgdev.yaml for editors. These
// tests hold it to the loader: the same keys at every level (found by
// asking the loader itself, so a key added to the loader and not to the
// schema fails here), and every cgdev.yaml the project shows (examples,
// docs' YAML snippets) valid against it.

const schemaPath = "../docs/cgdev.schema.json"

// loaderKeys returns the keys the loader accepts in the mapping at path
// (a list of keys from the top; "services" is followed by a service name),
// read from its refusal of an unknown key, which lists them; nil when the
// value at path is not a mapping of known keys (free-form, or a scalar).
func loaderKeys(t *testing.T, path []string) []string {
	t.Helper()
	const probe = "zz_not_a_key"
	var b strings.Builder
	for i, k := range path {
		b.WriteString(strings.Repeat("  ", i) + k + ":\n")
	}
	b.WriteString(strings.Repeat("  ", len(path)) + probe + ": 1\n")
	_, err := loadConfig(writeConfig(t, "cgdev.yaml", b.String()))
	field := strings.Join(append(slices.Clone(path), probe), ".")
	m := regexp.MustCompile(regexp.QuoteMeta(field) + `: unknown key \(known here: ([^)]*)\)`).FindStringSubmatch(errText(err))
	if m == nil {
		return nil
	}
	return strings.Split(m[1], ", ")
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// schemaNode is the JSON Schema as a tree, with $ref resolved.
type schemaNode map[string]any

func loadSchemaTree(t *testing.T) schemaNode {
	t.Helper()
	b, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var root schemaNode
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	return root
}

// resolve follows $ref (#/definitions/NAME) from root, and, for a value
// that is one of several forms (a duration or a mapping), the mapping's.
func (root schemaNode) resolve(n any) schemaNode {
	m, _ := n.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/definitions/")
		return root.resolve(root["definitions"].(map[string]any)[name])
	}
	if forms, ok := m["oneOf"].([]any); ok && m["properties"] == nil {
		for _, f := range forms {
			if r := root.resolve(f); r["properties"] != nil {
				return r
			}
		}
	}
	return m
}

// at returns the schema of the mapping at path (as loaderKeys's path).
func (root schemaNode) at(path []string) schemaNode {
	n := root
	for i := 0; i < len(path); i++ {
		props, _ := n["properties"].(map[string]any)
		n = root.resolve(props[path[i]])
		if path[i] == "services" && i+1 < len(path) {
			n = root.resolve(n["additionalProperties"])
			i++ // the service's name
		}
	}
	return n
}

func (n schemaNode) propertyNames() []string {
	props, _ := n["properties"].(map[string]any)
	var names []string
	for k := range props {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// TestSchemaHasEveryLoaderKey: at each level of cgdev.yaml the schema's
// properties are exactly the keys the loader accepts, nested mappings
// included (found by trying each key with a mapping value).
func TestSchemaHasEveryLoaderKey(t *testing.T) {
	root := loadSchemaTree(t)
	levels := [][]string{{}, {"services", "web"}}
	for len(levels) > 0 {
		path := levels[0]
		levels = levels[1:]
		keys := loaderKeys(t, path)
		if keys == nil {
			t.Fatalf("the loader names no keys at %q", path)
		}
		slices.Sort(keys)
		if got := root.at(path).propertyNames(); !slices.Equal(got, keys) {
			t.Errorf("%s: at %q the schema has %v, the loader accepts %v", schemaPath, strings.Join(path, "."), got, keys)
		}
		for _, k := range keys {
			if k == "services" && len(path) == 0 {
				continue // a mapping of names: {"services", "web"} is its level
			}
			next := append(slices.Clone(path), k)
			if loaderKeys(t, next) != nil {
				levels = append(levels, next)
			}
		}
	}
}

// compileSchema compiles docs/cgdev.schema.json.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	s, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	return s
}

// validateYAML validates one YAML document against the schema.
func validateYAML(s *jsonschema.Schema, doc string) error {
	var v any
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// yamlBlock finds ```yaml blocks in Markdown.
var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// cgdevSnippets returns the cgdev.yaml snippets of the Markdown files: the
// ```yaml blocks with a top-level services: (a process-compose example has
// processes: instead).
func cgdevSnippets(t *testing.T) map[string]string {
	t.Helper()
	files, _ := filepath.Glob("../docs/*.md")
	files = append(files, "../README.md")
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range yamlBlock.FindAllStringSubmatch(string(b), -1) {
			if regexp.MustCompile(`(?m)^services:`).MatchString(m[1]) {
				out[filepath.Base(f)+" block "+string(rune('1'+i))] = m[1]
			}
		}
	}
	return out
}

// TestSchemaValidatesExamples: the examples' cgdev.yaml files (which carry
// the yaml-language-server modeline naming the schema) and the docs'
// cgdev.yaml snippets are valid against the schema and, for the examples,
// loaded by cgdev.
func TestSchemaValidatesExamples(t *testing.T) {
	s := compileSchema(t)
	examples, _ := filepath.Glob("../examples/*/cgdev.yaml")
	if len(examples) == 0 {
		t.Fatal("no examples/*/cgdev.yaml found")
	}
	modeline := regexp.MustCompile(`(?m)^# yaml-language-server: \$schema=(\S+)$`)
	for _, f := range examples {
		b, _ := os.ReadFile(f)
		if err := validateYAML(s, string(b)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if _, err := loadConfig(f); err != nil {
			t.Errorf("cgdev refuses the example %s: %v", f, err)
		}
		m := modeline.FindStringSubmatch(string(b))
		if m == nil {
			t.Errorf("%s has no yaml-language-server modeline", f)
			continue
		}
		if target, _ := filepath.Abs(filepath.Join(filepath.Dir(f), m[1])); target != mustAbs(t, schemaPath) {
			t.Errorf("%s: the modeline names %s, not docs/cgdev.schema.json", f, m[1])
		}
	}
	snippets := cgdevSnippets(t)
	if len(snippets) < 2 {
		t.Fatalf("found %d cgdev.yaml snippets in the docs, want the services.md example and more", len(snippets))
	}
	for name, doc := range snippets {
		if err := validateYAML(s, doc); err != nil {
			t.Errorf("%s: %v\n%s", name, err, doc)
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSchemaRefuses: what the loader refuses by key, name or kind, the
// schema refuses too (so the validation above can fail).
func TestSchemaRefuses(t *testing.T) {
	s := compileSchema(t)
	for _, doc := range []string{
		"services:\n  web:\n    comand: x\n",
		"services:\n  web:\n    dir: x\n",
		"services:\n  web:\n    command: x\n    ready: {tcp: '127.0.0.1:1', http: 'http://x/'}\n",
		"services:\n  web:\n    command: x\n    ready: {timeout: 3s}\n",
		"services:\n  web:\n    command: x\n    grace: 3 seconds\n",
		"services:\n  web:\n    command: x\n    ports: [70000]\n",
		"services:\n  -web:\n    command: x\n",
		"driver: docker\n",
		"servics: {}\n",
	} {
		if validateYAML(s, doc) == nil {
			t.Errorf("the schema accepts:\n%s", doc)
		}
		if _, err := loadConfig(writeConfig(t, "cgdev.yaml", doc)); err == nil {
			t.Errorf("the loader accepts what the schema refuses:\n%s", doc)
		}
	}
}
