package cleanup

import (
	"context"
	"io"
	"time"
)

// ComposeDown exposes phase 4 with a timeout of the test's choosing.
func ComposeDown(ctx context.Context, file, dir string, timeout time.Duration, out io.Writer) error {
	return composeDown(ctx, file, dir, timeout, &reporter{out: out})
}
