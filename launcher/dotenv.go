package launcher

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// envFiles reads dotenv files (KEY=VALUE lines, # comments, optional
// "export ", optional quotes), relative to the project directory.
func (c *Config) envFiles(files []string, n *yaml.Node, field string) ([]string, error) {
	var out []string
	for _, f := range files {
		path := c.abs(f)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, c.errAt(n, field, "%v", err)
		}
		env, err := parseDotenv(path, b)
		if err != nil {
			return nil, err
		}
		out = append(out, env...)
	}
	return out, nil
}

func parseDotenv(path string, b []byte) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		t = strings.TrimPrefix(t, "export ")
		name, val, ok := strings.Cut(t, "=")
		name = strings.TrimSpace(name)
		if !ok || !envName.MatchString(name) {
			return nil, &configError{File: displayPath(path), Line: line, Msg: fmt.Sprintf("%q is not KEY=VALUE", t)}
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		}
		out = append(out, name+"="+val)
	}
	return out, nil
}
