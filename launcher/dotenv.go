package launcher

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// envFiles reads dotenv files (KEY=VALUE lines, # comments, optional
// "export ", optional quotes), relative to the project directory. Each must
// be a regular file of at most maxEnvFile bytes.
func (c *loader) envFiles(files []string, n *yaml.Node, field string) ([]string, error) {
	var out []string
	for _, f := range files {
		path := c.abs(f)
		b, err := readBounded(path, maxEnvFile)
		if err != nil {
			return nil, c.errAt(n, field, "%v", err)
		}
		env, err := parseDotenv(displayPath(path), b)
		if err != nil {
			return nil, err
		}
		out = append(out, env...)
	}
	return out, nil
}

// parseDotenv parses the dotenv file named file (for errors) with content b.
func parseDotenv(file string, b []byte) ([]string, error) { return parseDotenvSkipping(file, b, nil) }

// parseDotenvSkipping is parseDotenv, but a line that is not KEY=VALUE
// goes to skip, when it is not nil, instead of refusing the file.
func parseDotenvSkipping(file string, b []byte, skip func(*configError)) ([]string, error) {
	var out []string
	err := eachLine(file, b, func(line int, t string) error {
		t = strings.TrimSpace(t)
		if t == "" || strings.HasPrefix(t, "#") {
			return nil
		}
		t = strings.TrimPrefix(t, "export ")
		name, val, ok := strings.Cut(t, "=")
		name = strings.TrimSpace(name)
		if !ok || !envName.MatchString(name) {
			bad := &configError{File: file, Line: line, Msg: fmt.Sprintf("%.80q is not KEY=VALUE", t)}
			if skip == nil {
				return bad
			}
			skip(bad)
			return nil
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		}
		if err := checkArg(name + "=" + val); err != nil {
			return &configError{File: file, Line: line, Field: name, Msg: err.Error()}
		}
		out = append(out, name+"="+val)
		return nil
	})
	return out, err
}
