package cleanup

import (
	"fmt"
	"io"
)

// reporter writes the [k/5] lines.
type reporter struct {
	out io.Writer
}

func (r *reporter) phase(k int, format string, a ...any) {
	fmt.Fprintf(r.out, "[%d/5] %s\n", k, fmt.Sprintf(format, a...))
}

// detail writes an indented line under the current phase.
func (r *reporter) detail(format string, a ...any) {
	fmt.Fprintf(r.out, "      %s\n", fmt.Sprintf(format, a...))
}
