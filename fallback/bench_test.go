package fallback_test

import (
	"context"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/fallback"
	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
)

// startSleepers starts a service whose shell forks n sleeps, and waits until
// all are members.
func startSleepers(b testing.TB, d *fallback.Driver, proj string, n int) cgroup.Group {
	b.Helper()
	cmd := exec.Command("sh", "-c", `i=0; while [ $i -lt `+strconv.Itoa(n)+` ]; do sleep 1000 & i=$((i+1)); done; wait`)
	g, err := d.Start(context.Background(), cgroup.Spec{Project: proj, Name: "bench"}, cmd)
	if err != nil {
		b.Fatal(err)
	}
	killOnCleanup(b, cmd.Process.Pid)
	go cmd.Wait()
	if !testenv.Eventually(30*time.Second, func() bool {
		pids, _ := g.Procs()
		return len(pids) == n+1
	}) {
		g.Kill()
		b.Fatalf("the %d sleeps did not all start", n)
	}
	return g
}

// BenchmarkMembers is the cost of one membership scan of /proc (stat of
// every process, environ of those in scope) on this machine.
func BenchmarkMembers(b *testing.B) {
	d := newDriver(b)
	g := startSleepers(b, d, project(b), 10)
	b.Cleanup(func() { g.Kill() })
	tab, _ := proc.Snapshot()
	b.ReportMetric(float64(len(tab.Procs)), "host-procs")
	b.ResetTimer()
	for b.Loop() {
		if _, err := g.Procs(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStopOnSigterm is the time from SIGTERM to an empty group for a
// service of 20 sleeps that all exit on SIGTERM: the event-driven wait
// against the fixed sleep of a shell script.
func BenchmarkStopOnSigterm(b *testing.B) {
	d := newDriver(b)
	for b.Loop() {
		b.StopTimer()
		g := startSleepers(b, d, project(b), 20)
		b.StartTimer()
		if _, err := g.Signal(syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := g.WaitEmpty(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}

// BenchmarkKill200 is Kill plus WaitEmpty on a service of 200 processes.
func BenchmarkKill200(b *testing.B) {
	d := newDriver(b)
	for b.Loop() {
		b.StopTimer()
		g := startSleepers(b, d, project(b), 200)
		b.StartTimer()
		if err := g.Kill(); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := g.WaitEmpty(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}
