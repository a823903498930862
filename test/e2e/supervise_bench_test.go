package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
)

// Figures: docs/services.md. Run with
//
//	go test ./test/e2e -run '^$' -bench 'Supervisor' -benchtime 1x
//
// (the third line of make bench). CGDEV_BENCH_IDLE sets the idle window
// (default 60s).

// BenchmarkSupervisorIdle measures the supervisor of 10 services at rest:
// its resident memory (VmRSS, and the high-water mark VmHWM) and the CPU
// time it uses over the idle window, with restart: always alone and with a
// liveness check every 10 s on each service as well.
func BenchmarkSupervisorIdle(b *testing.B) {
	window := 60 * time.Second
	if v := os.Getenv("CGDEV_BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		window = d
	}
	for _, c := range []struct{ name, extra string }{
		{"restart", ""},
		{"restart+healthcheck", "\n    healthcheck: {exec: 'true', interval: 10s}"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var conf strings.Builder
			conf.WriteString("services:\n")
			for i := range 10 {
				fmt.Fprintf(&conf, "  s%d:\n    command: 'exec sleep 100000'\n    restart: always%s\n", i, c.extra)
			}
			p := newSvcProject(b, conf.String())
			for b.Loop() {
				p.mustCgdev("start")
				pid := p.supervisor().PID
				time.Sleep(time.Second) // past the start's own work
				cpu0 := cpuTime(b, pid)
				time.Sleep(window)
				cpu := cpuTime(b, pid) - cpu0
				rss, hwm := memKiB(b, pid, "VmRSS:"), memKiB(b, pid, "VmHWM:")
				b.ReportMetric(float64(rss)/1024, "rss-MiB")
				b.ReportMetric(float64(hwm)/1024, "hwm-MiB")
				b.ReportMetric(float64(cpu.Microseconds())/1000, "cpu-ms/window")
				b.ReportMetric(100*cpu.Seconds()/window.Seconds(), "cpu-%")
				p.mustCgdev("stop")
			}
		})
	}
}

// BenchmarkSupervisorCrashToReady times, for a service with restart:
// always, no delay and a log readiness check, the delay from a kill -9 of
// its main process to the restarted service being ready (the event line
// the supervisor writes once the readiness check passed).
func BenchmarkSupervisorCrashToReady(b *testing.B) {
	p := newSvcProject(b, `services:
  svc:
    command: 'echo $$ >> p/svc; echo up; exec sleep 100000'
    ready: {log: "^up$"}
    restart: always
    restart_delay: 0s
    max_restarts: 0
`)
	p.mustCgdev("start")
	events := filepath.Join(p.dir, ".cgdev", "events.log")
	n := 0
	for b.Loop() {
		n++
		pids := p.waitPids("svc", n)
		want := fmt.Sprintf("svc: restarted (restart %d), ready in", n)
		syscall.Kill(pids[n-1], syscall.SIGKILL)
		if !testenv.Eventually(30*time.Second, func() bool {
			b, _ := os.ReadFile(events)
			return strings.Contains(string(b), want)
		}) {
			b.Fatalf("no %q in the events", want)
		}
	}
	p.mustCgdev("stop")
}

// cpuTime is the user and system time of pid.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	pr, err := proc.ReadProc(pid)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(pr.UTime+pr.STime) * time.Second / proc.ClockTicks
}

// memKiB reads a "VmRSS:"-style line of /proc/PID/status, in KiB.
func memKiB(b *testing.B, pid int, field string) int {
	b.Helper()
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
