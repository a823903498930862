package cgroup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/test/testenv"
)

// TestGroupWhileRemoved: a cgroup removed while it is looked at (a systemd
// scope is collected by its manager the moment it empties) is empty to
// WaitEmpty, Populated and Procs, and Kill has nothing to do, whatever
// instant of the removal they meet: before, during (the files of a cgroup
// being destroyed answer ENODEV) or after.
func TestGroupWhileRemoved(t *testing.T) {
	h := testenv.CgroupBase(t)
	dir := cgroup.Dir(filepath.Join(h.Cgroup2Mount, h.Base, "removed"))
	const watchers = 4
	for i := range 2000 {
		if err := os.MkdirAll(string(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, watchers)
		for range watchers {
			go func() { errs <- lookUntilRemoved(dir) }()
		}
		if err := os.Remove(string(dir)); err != nil {
			t.Fatal(err)
		}
		for range watchers {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
	}
}

// lookUntilRemoved calls dir's methods until dir is gone, and returns the
// first error.
func lookUntilRemoved(dir cgroup.Dir) error {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := dir.WaitEmpty(ctx)
		cancel()
		if err != nil {
			return err
		}
		if populated, err := dir.Populated(); err != nil || populated {
			return cmpErr(err, "Populated: true")
		}
		if pids, err := dir.Procs(); err != nil || len(pids) > 0 {
			return cmpErr(err, "Procs: not empty")
		}
		if err := dir.Kill(); err != nil {
			return err
		}
		if _, err := os.Stat(string(dir)); err != nil {
			return nil
		}
	}
}

func cmpErr(err error, otherwise string) error {
	if err != nil {
		return err
	}
	return errors.New(otherwise)
}
