package launcher

import (
	"fmt"
	"strings"
)

// expandVars substitutes variables in the text of a process-compose.yaml
// before it is parsed, as process-compose does: $NAME and ${NAME} take the
// variable's value (lookup; "" when unset), ${NAME:-WORD} takes WORD when
// NAME is unset or empty, ${NAME-WORD} when it is unset, and $$ is a
// literal $ (for the shell to expand when the command runs). A $ followed
// by anything else is left as it is. Other ${...} forms (bash's ${NAME^^},
// ${NAME/a/b}, ${#NAME}, ...) are refused, naming the line: process-compose
// would expand them, and cgdev does not guess.
func expandVars(file, text string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	line := 1
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '\n' {
			line++
		}
		if c != '$' || i+1 == len(text) {
			b.WriteByte(c)
			continue
		}
		next := text[i+1]
		switch {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '{':
			end := strings.IndexByte(text[i+2:], '}')
			if end < 0 {
				return "", &configError{File: file, Line: line, Msg: "an unclosed ${ (write $${ for a literal one)"}
			}
			val, err := expandBraced(text[i+2:i+2+end], lookup)
			if err != nil {
				return "", &configError{File: file, Line: line, Msg: err.Error()}
			}
			b.WriteString(val)
			i += 2 + end
		case isNameStart(next):
			j := i + 1
			for j < len(text) && isNameChar(text[j]) {
				j++
			}
			val, _ := lookup(text[i+1 : j])
			b.WriteString(val)
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// expandBraced expands what stands between ${ and }.
func expandBraced(expr string, lookup func(string) (string, bool)) (string, error) {
	j := 0
	for j < len(expr) && isNameChar(expr[j]) {
		j++
	}
	name, rest := expr[:j], expr[j:]
	if name == "" || !isNameStart(name[0]) {
		return "", fmt.Errorf("${%s}: not a variable cgdev can expand (write $${%s} to leave it to the shell)", expr, expr)
	}
	val, set := lookup(name)
	switch {
	case rest == "":
		return val, nil
	case strings.HasPrefix(rest, ":-"):
		if val == "" {
			return rest[2:], nil
		}
		return val, nil
	case strings.HasPrefix(rest, "-"):
		if !set {
			return rest[1:], nil
		}
		return val, nil
	}
	return "", fmt.Errorf("${%s}: cgdev expands ${NAME}, ${NAME:-default} and ${NAME-default} only (write $${%s} to leave it to the shell)", expr, expr)
}

func isNameStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isNameChar(c byte) bool { return isNameStart(c) || '0' <= c && c <= '9' }
