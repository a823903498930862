package e2e_test

import (
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/test/testenv"
)

// BenchmarkScopeRunTrue compares the cost of one `true` run four ways: bare,
// `cgdev --driver direct run`, `cgdev --driver systemd run` (a transient
// scope of the user manager) and `systemd-run --user --scope`. Each op runs
// the four once, interleaved, so that a busy shared machine slows them
// alike; the reported metrics are each variant's median wall time per
// invocation (process start, connection set-up and clean-up included).
// Figures: docs/systemd.md.
func BenchmarkScopeRunTrue(b *testing.B) {
	h, err := cgroup.Detect()
	if err != nil {
		b.Fatal(err)
	}
	if !h.Systemd.UserBus {
		b.Skip("no systemd user manager reachable; run under test/systemd/with-manager.sh")
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	systemdRun, err := exec.LookPath("systemd-run")
	if err != nil {
		b.Skip("systemd-run not installed")
	}
	testenv.CgroupBase(b)
	bin := testenv.Binary(b)
	variants := []struct {
		metric string
		argv   []string
	}{
		{"true-ms", []string{truePath}},
		{"cgdev-direct-ms", []string{bin, "--driver", "direct", "run", "--", truePath}},
		{"cgdev-systemd-ms", []string{bin, "--driver", "systemd", "run", "--", truePath}},
		{"systemd-run-scope-ms", []string{systemdRun, "--user", "--scope", "-q", truePath}},
	}
	took := make([][]time.Duration, len(variants))
	for b.Loop() {
		for i, v := range variants {
			start := time.Now()
			if out, err := exec.Command(v.argv[0], v.argv[1:]...).CombinedOutput(); err != nil {
				b.Fatalf("%v: %v %s", v.argv, err, out)
			}
			took[i] = append(took[i], time.Since(start))
		}
	}
	for i, v := range variants {
		slices.Sort(took[i])
		b.ReportMetric(float64(took[i][len(took[i])/2])/float64(time.Millisecond), v.metric)
	}
}
