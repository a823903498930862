package launcher

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// errAt builds a configError at node n.
func (c *loader) errAt(n *yaml.Node, field, format string, a ...any) *configError {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &configError{File: c.File, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)}
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// yamlSyntaxError turns "yaml: line 3: mapping values are not allowed" into
// a configError at that line.
func (c *loader) yamlSyntaxError(err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	return &configError{File: c.File, Line: line, Msg: "invalid YAML: " + msg}
}

// eachKey calls the handler of each key of the mapping n, refusing keys that
// have none, duplicates, and a node that is not a mapping.
func (c *loader) eachKey(n *yaml.Node, prefix string, handlers map[string]func(k, v *yaml.Node, field string) error) error {
	if n.Kind != yaml.MappingNode {
		return c.errAt(n, strings.TrimSuffix(prefix, "."), "expected a mapping of keys to values, found %s", kindName(n))
	}
	pairs, err := c.pairs(n, prefix)
	if err != nil {
		return err
	}
	for _, kv := range pairs {
		k, v := kv[0], kv[1]
		field := prefix + k.Value
		if prefix == "" && strings.HasPrefix(k.Value, "x-") {
			continue // an extension field, as in compose files: a place for anchors
		}
		h, ok := handlers[k.Value]
		if !ok {
			return c.errAt(k, field, "unknown key (known here: %s)", strings.Join(slices.Sorted(maps.Keys(handlers)), ", "))
		}
		if err := h(k, resolveAlias(v), field); err != nil {
			return err
		}
	}
	return nil
}

// maxMergedPairs bounds the key/value pairs that YAML merge keys may add to
// the mappings of one file, all told. Each merged mapping is expanded once
// and then reused, so an honest file stays far below; a file of nested
// merges built to multiply (a "billion laughs" of merge keys) is refused
// instead of being expanded for minutes.
const maxMergedPairs = 100000

// mergeState remembers, while one file is read, each mapping's pairs with
// its merge keys expanded, and how many pairs merging has added so far.
type mergeState struct {
	done   map[*yaml.Node][][2]*yaml.Node
	active map[*yaml.Node]bool // being expanded: met again, the merge refers to itself
	added  int
}

// pairs returns the key/value pairs of the mapping n, refusing a key given
// twice, with YAML merge keys (<<: *anchor, or a list of anchors) expanded:
// a key given in n itself wins over a merged one, as YAML specifies.
func (c *loader) pairs(n *yaml.Node, prefix string) ([][2]*yaml.Node, error) {
	m := &c.merges
	if done, ok := m.done[n]; ok {
		return done, nil
	}
	if m.active[n] {
		return nil, c.errAt(n, strings.TrimSuffix(prefix, "."), "a merge key refers to the mapping it is in")
	}
	if m.done == nil {
		m.done, m.active = map[*yaml.Node][][2]*yaml.Node{}, map[*yaml.Node]bool{}
	}
	m.active[n] = true
	defer delete(m.active, n)
	var own, merged [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if k.Tag == "!!merge" {
			sources := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				sources = v.Content
			}
			for _, src := range sources {
				src = resolveAlias(src)
				if src.Kind != yaml.MappingNode {
					return nil, c.errAt(k, prefix+"<<", "a merge key takes a mapping or a list of mappings, found %s", kindName(src))
				}
				more, err := c.pairs(src, prefix)
				if err != nil {
					return nil, err
				}
				if m.added += len(more); m.added > maxMergedPairs {
					return nil, c.errAt(k, prefix+"<<", "merge keys expand to more than %d entries in this file; cgdev refuses it rather than expand them", maxMergedPairs)
				}
				merged = append(merged, more...)
			}
			continue
		}
		if seen[k.Value] {
			return nil, c.errAt(k, prefix+k.Value, "given twice")
		}
		seen[k.Value] = true
		own = append(own, [2]*yaml.Node{k, v})
	}
	for _, kv := range merged {
		if !seen[kv[0].Value] {
			seen[kv[0].Value] = true
			own = append(own, kv)
		}
	}
	m.done[n] = own
	return own, nil
}

// refuseNUL refuses a NUL byte in any key or value of the tree under n, at
// its line, naming its field: no command, environment string or path can
// carry one. Aliases are not followed; what they name is checked where it
// is defined.
func (c *loader) refuseNUL(n *yaml.Node, field string) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if strings.IndexByte(n.Value, 0) >= 0 {
			return c.errAt(n, field, "contains a NUL byte, which no command line, environment or path can carry")
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if strings.IndexByte(k.Value, 0) >= 0 {
				return c.errAt(k, field, "a key contains a NUL byte")
			}
			if err := c.refuseNUL(n.Content[i+1], joinField(field, k.Value)); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			if err := c.refuseNUL(e, fmt.Sprintf("%s[%d]", field, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func joinField(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "something else"
}

// scalar returns the text of a scalar node.
func (c *loader) scalar(v *yaml.Node, field string) (string, error) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		return "", c.errAt(v, field, "expected a value, found %s", kindName(v))
	}
	return v.Value, nil
}

// strings returns a list of scalars; a single scalar counts as a list of one.
func (c *loader) strings(v *yaml.Node, field string) ([]string, error) {
	if v.Kind == yaml.ScalarNode {
		s, err := c.scalar(v, field)
		return []string{s}, err
	}
	if v.Kind != yaml.SequenceNode {
		return nil, c.errAt(v, field, "expected a list, found %s", kindName(v))
	}
	out := []string{}
	for i, e := range v.Content {
		s, err := c.scalar(resolveAlias(e), fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (c *loader) duration(v *yaml.Node, field string) (time.Duration, error) {
	s, err := c.scalar(v, field)
	if err != nil {
		return 0, err
	}
	d, err := parseDuration(s)
	if err != nil {
		return 0, c.errAt(v, field, "%v", err)
	}
	return d, nil
}

// parseDuration parses a Go duration that is not negative.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (examples: 500ms, 3s, 1m30s)", s)
	}
	return d, nil
}
