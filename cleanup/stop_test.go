package cleanup_test

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/fallback"
)

// TestStopReportsAnUnlistableProc: when the processes cannot be listed, the
// sweep says it failed and the verification fails, instead of both claiming
// that no process of the project is left.
func TestStopReportsAnUnlistableProc(t *testing.T) {
	drv, err := fallback.New(nil)
	if err != nil {
		t.Skip(err)
	}
	var out strings.Builder
	opt := cleanup.WithProcDir(cleanup.StopOptions{
		Project:     "unlistable-proc-test",
		Dir:         t.TempDir(),
		Signal:      func(string) syscall.Signal { return syscall.SIGTERM },
		Grace:       func(string) time.Duration { return 0 },
		OrphanGrace: 0,
		Out:         &out,
	}, filepath.Join(t.TempDir(), "missing"))
	groups, err := drv.Groups(opt.Project)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cleanup.Stop(context.Background(), groups, opt)
	if err == nil || !strings.Contains(err.Error(), "listing the processes") {
		t.Errorf("Stop returned %v, want the listing error", err)
	}
	if !strings.Contains(out.String(), "[3/5] orphan sweep: FAILED: listing the processes") ||
		strings.Contains(out.String(), "no process of this project") || strings.Contains(out.String(), "verify: no process left") {
		t.Errorf("Stop printed:\n%s", out.String())
	}
}
