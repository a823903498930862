package launcher_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// TestCollectRunsTouchesOnlyClaimedRuns: a populated run group whose name
// nobody holds is killed and removed only when a `cgdev run` made it
// (ownedMark); one made through the driver by other code is left alone,
// and an empty unclaimed group is removed.
func TestCollectRunsTouchesOnlyClaimedRuns(t *testing.T) {
	drv, err := cgroup.NewDirect(testenv.CgroupBase(t))
	if err != nil {
		t.Skip(err)
	}
	start := func(name string) (cgroup.Group, *exec.Cmd) {
		cmd := exec.Command("sleep", "300")
		g, err := drv.Start(context.Background(), cgroup.Spec{Name: name}, cmd)
		if err != nil {
			t.Fatal(err)
		}
		testenv.KillOnCleanup(t, cmd.Process.Pid)
		go cmd.Wait()
		return g, cmd
	}
	foreign, foreignCmd := start("foreign-" + t.Name()[:8])
	stale, staleCmd := start("stale-" + t.Name()[:8])
	launcher.MarkOwned(stale)
	empty, emptyCmd := start("empty-" + t.Name()[:8])
	emptyCmd.Process.Kill()
	if err := empty.WaitEmpty(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := launcher.CollectRuns(drv, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !testenv.Alive(foreignCmd.Process.Pid) {
		t.Error("CollectRuns killed a run group no claiming cgdev run made")
	}
	if !testenv.Eventually(10*time.Second, func() bool { return !testenv.Alive(staleCmd.Process.Pid) }) {
		t.Error("CollectRuns left a stale run's process running")
	}
	for _, g := range []cgroup.Group{stale, empty} {
		if _, err := os.Stat(g.Path()); err == nil {
			t.Errorf("CollectRuns left %s", g.Path())
		}
	}
	foreignCmd.Process.Kill()
	foreign.WaitEmpty(context.Background())
	foreign.Remove()
}
