package launcher

import (
	"strings"
	"testing"
)

func TestExpandVars(t *testing.T) {
	env := map[string]string{"A": "1", "EMPTY": "", "B_2": "two"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for in, want := range map[string]string{
		"$A ${A} x$B_2.y":              "1 1 xtwo.y",
		"$$A $$ $$$A":                  "$A $ $1",
		"${UNSET:-d} ${EMPTY:-d}":      "d d",
		"${UNSET-d} ${EMPTY-d} ${A-d}": "d  1",
		"$UNSET|${UNSET}|":             "||",
		"cost $5, $(date) $ end $":     "cost $5, $(date) $ end $",
	} {
		got, err := expandVars("f", in, lookup)
		if err != nil || got != want {
			t.Errorf("expandVars(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"a\nb ${A^^}":  "f:2: ${A^^}: cgdev expands",
		"${#A}":        "f:1: ${#A}: not a variable",
		"x\n\n${A/b/c": "f:3: an unclosed ${",
		"${A:?no}":     "f:1: ${A:?no}: cgdev expands",
	} {
		if _, err := expandVars("f", in, lookup); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("expandVars(%q): %v, want %q", in, err, want)
		}
	}
}
