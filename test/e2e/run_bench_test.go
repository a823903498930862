package e2e_test

import (
	"os/exec"
	"testing"

	"github.com/cgdev/cgdev/test/testenv"
)

// BenchmarkRunTrue measures what `cgdev run -- true` costs over running
// `true` directly. The cgdev-version sub-benchmark starts the same binary to
// do nothing, so the overhead splits into the start of the Go binary and the
// work of run itself: detection, a new cgroup, clone3 into it, the leftover
// check and the removal. Target: under 5 ms. Figures: docs/run.md.
func BenchmarkRunTrue(b *testing.B) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("true", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command(truePath).Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cgdev-version", func(b *testing.B) {
		bin := testenv.Binary(b)
		for b.Loop() {
			if err := exec.Command(bin, "version").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cgdev-run-true", func(b *testing.B) {
		testenv.CgroupBase(b)
		bin := testenv.Binary(b)
		for b.Loop() {
			if err := exec.Command(bin, "run", "--", truePath).Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
