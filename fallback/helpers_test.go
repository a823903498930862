package fallback_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cgdev/cgdev/fallback"
	"github.com/cgdev/cgdev/internal/proc"
)

func newDriver(t testing.TB) *fallback.Driver {
	t.Helper()
	d, err := fallback.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// project returns a project id no other test or engineer uses, and kills
// every process carrying its marker when the test ends, whatever happened.
func project(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	id := "fbtest-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		d := newDriver(t)
		groups, err := d.Groups(id)
		if err != nil {
			t.Error(err)
		}
		runs, _ := d.Groups("")
		for _, g := range runs {
			if strings.Contains(g.Name(), id) { // runs the test named after its project
				groups = append(groups, g)
			}
		}
		for _, g := range groups {
			if pids, _ := g.Procs(); len(pids) > 0 {
				t.Errorf("processes of %s/%s left after the test: %v (killing them)", id, g.Name(), pids)
				g.Kill()
			}
		}
	})
	return id
}

// identity reads pid's identity, failing the test if it is gone.
func identity(t testing.TB, pid int) proc.Identity {
	t.Helper()
	p, err := proc.ReadProc(pid)
	if err != nil {
		t.Fatalf("PID %d: %v", pid, err)
	}
	return p.Identity()
}

// killOnCleanup SIGKILLs the process pid names now, when the test ends, if
// it is still the same process (never a recycled PID).
func killOnCleanup(t testing.TB, pid int) {
	t.Helper()
	id, err := proc.ReadProc(pid)
	if err != nil {
		return
	}
	t.Cleanup(func() { id.Identity().Signal(syscall.SIGKILL) })
}

func contains(pids []int, pid int) bool { return slices.Contains(pids, pid) }

// readPids returns the PIDs written one a line to file.
func readPids(file string) []int {
	b, _ := os.ReadFile(file)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}
