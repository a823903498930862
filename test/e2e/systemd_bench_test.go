package e2e_test

import (
	"os/exec"
	"testing"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/test/testenv"
)

// BenchmarkScopeRunTrue compares the cost of one `true` run four ways: bare,
// `cgdev --driver direct run`, `cgdev --driver systemd run` (a transient
// scope of the user manager) and `systemd-run --user --scope`. Each op is a
// whole process invocation, connection set-up included. Figures: docs/systemd.md.
func BenchmarkScopeRunTrue(b *testing.B) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, argv ...string) {
		for b.Loop() {
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				b.Fatalf("%v: %v %s", argv, err, out)
			}
		}
	}
	b.Run("true", func(b *testing.B) { run(b, truePath) })
	b.Run("cgdev-direct", func(b *testing.B) {
		testenv.CgroupBase(b)
		run(b, testenv.Binary(b), "--driver", "direct", "run", "--", truePath)
	})
	needManager := func(b *testing.B) {
		h, err := cgroup.Detect()
		if err != nil {
			b.Fatal(err)
		}
		if !h.Systemd.UserBus {
			b.Skip("no systemd user manager reachable; run under test/systemd/with-manager.sh")
		}
	}
	b.Run("cgdev-systemd", func(b *testing.B) {
		needManager(b)
		run(b, testenv.Binary(b), "--driver", "systemd", "run", "--", truePath)
	})
	b.Run("systemd-run-scope", func(b *testing.B) {
		needManager(b)
		sr, err := exec.LookPath("systemd-run")
		if err != nil {
			b.Skip("systemd-run not installed")
		}
		run(b, sr, "--user", "--scope", "-q", truePath)
	})
}
