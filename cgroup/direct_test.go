package cgroup_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cgroup/cgrouptest"
	"github.com/cgdev/cgdev/test/testenv"
)

// directHarness runs the conformance test on the direct driver in a private
// cgroup base per subtest, starting commands with clone3 or, when gated, at
// the gate (as kernels before 5.7 and seccomp'd containers do).
func directHarness(gated bool) cgrouptest.Harness {
	return cgrouptest.Harness{
		Setup: func(t *testing.T) { testenv.CgroupBase(t) },
		Open: func(t *testing.T) cgroup.Driver {
			d, _ := newDirect(t)
			if gated {
				return cgroup.Gated(d)
			}
			return d
		},
	}
}

func TestDirectDriver(t *testing.T)      { cgrouptest.TestDriver(t, directHarness(false)) }
func TestDirectDriverGated(t *testing.T) { cgrouptest.TestDriver(t, directHarness(true)) }

// newDirect opens the direct driver on the base the test has set up.
func newDirect(t *testing.T) (*cgroup.Direct, *cgroup.Host) {
	t.Helper()
	h := testenv.Cgroup2(t)
	d, err := cgroup.NewDirect(h)
	if err != nil {
		t.Fatal(err)
	}
	return d, h
}

// TestEmptyBaseRemoved: no trace of cgdev stays in cgroupfs once the last
// group is removed, or when a start fails.
func TestEmptyBaseRemoved(t *testing.T) {
	testenv.CgroupBase(t)
	d, h := newDirect(t)
	base := filepath.Join(h.Cgroup2Mount, h.Base)
	cmd := exec.Command("true")
	g, err := d.Start(context.Background(), cgroup.Spec{Project: "p", Name: "first"}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := g.WaitEmpty(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty base %s was not removed with its last group", h.Base)
	}
	if _, err := d.Start(context.Background(), cgroup.Spec{Name: "bad"}, exec.Command(filepath.Join(t.TempDir(), "missing"))); err == nil {
		t.Fatal("Start of a missing program succeeded")
	}
	if _, err := os.Stat(base); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed start left %s behind", h.Base)
	}
}

// TestUnsupportedLimitRefused: where the host lacks a controller (the memory
// controller is bound to v1 here), the limit is refused before anything starts.
func TestUnsupportedLimitRefused(t *testing.T) {
	testenv.CgroupBase(t)
	d, h := newDirect(t)
	if h.Has("memory") {
		t.Skip("this machine can enforce MemoryMax; the refusal is tested in the VM suite (test/vm)")
	}
	var l cgroup.Limits
	l.Set("MemoryMax=64M")
	cmd := exec.Command("true")
	_, err := d.Start(context.Background(), cgroup.Spec{Name: "capped", Limits: l}, cmd)
	var u *cgroup.UnsupportedError
	if !errors.As(err, &u) || u.Missing[0].Property != "MemoryMax" || u.Missing[0].Controller != "memory" {
		t.Fatalf("Start with MemoryMax = %v; want an UnsupportedError naming MemoryMax and memory", err)
	}
	if cmd.Process != nil {
		t.Error("the command was started despite the refused limit")
	}
	if _, err := os.Stat(filepath.Join(h.Cgroup2Mount, h.Base)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start left %s behind", h.Base)
	}
}
