package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
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

// BenchmarkRunKilled measures the promise that no run outlives its cgdev:
// from SIGKILL of `cgdev run -- sh -c 'setsid sleep 300 & sleep 300 & wait'`
// to the last of the command's processes gone, per driver (systemd only
// where a user manager answers). Target: under a second. Figures: docs/run.md.
func BenchmarkRunKilled(b *testing.B) {
	for _, driver := range drivers {
		b.Run(driver, func(b *testing.B) {
			if h, _ := cgroup.Detect(); driver == "systemd" && (h == nil || !h.Systemd.UserBus) {
				b.Skip("no systemd user manager reachable; run under test/systemd/with-manager.sh")
			}
			testenv.CgroupBase(b)
			b.Setenv(launcher.DriverEnv, driver)
			var worst time.Duration
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				pidFile := filepath.Join(b.TempDir(), "pids")
				cmd := exec.Command(testenv.Binary(b), "run", "--", "sh", "-c", orphanScript, pidFile)
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				var pids []int
				testenv.Eventually(10*time.Second, func() bool {
					data, _ := os.ReadFile(pidFile)
					pids = pids[:0]
					for _, f := range strings.Fields(string(data)) {
						n, _ := strconv.Atoi(f)
						pids = append(pids, n)
					}
					return len(pids) == 3
				})
				b.StartTimer()
				start := time.Now()
				cmd.Process.Kill()
				for slices.ContainsFunc(pids, func(p int) bool { return testenv.Alive(p) && testenv.State(p) != 'Z' }) {
					if time.Since(start) > 10*time.Second {
						b.Fatalf("run %v outlived its cgdev by 10 s", pids)
					}
					time.Sleep(time.Millisecond)
				}
				worst = max(worst, time.Since(start))
				b.StopTimer()
				cmd.Wait()
				b.StartTimer()
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
}
