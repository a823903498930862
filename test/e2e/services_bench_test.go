package e2e_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// Figures: docs/services.md. Run with
//
//	go test ./test/e2e -run '^$' -bench 'StopOnSIGTERM|StopForce1000|Status1000' -benchtime 10x
//
// Each iteration of the stop benchmarks starts its processes anew (1,000 of
// them for StopForce1000: seconds on a busy machine), so keep -benchtime low.

// BenchmarkStopOnSIGTERM times `cgdev stop` of three services of ten
// processes each that all exit on SIGTERM: the whole command, from exec to
// exit, all five phases. The shell script it replaces slept a fixed 3 s.
func BenchmarkStopOnSIGTERM(b *testing.B) {
	var phase2 waitTimes
	p := newSvcProject(b, `services:
  a:
    command: 'for i in 1 2 3 4 5 6 7 8 9; do sleep 1000 & done; exec sleep 1000'
  b:
    command: 'for i in 1 2 3 4 5 6 7 8 9; do sleep 1000 & done; exec sleep 1000'
  c:
    command: 'for i in 1 2 3 4 5 6 7 8 9; do sleep 1000 & done; exec sleep 1000'
`)
	for b.Loop() {
		b.StopTimer()
		p.mustCgdev("start")
		for _, s := range []string{"a", "b", "c"} {
			p.waitProcs(s, 10)
		}
		b.StartTimer()
		phase2.add(p.mustCgdev("stop"))
	}
	phase2.report(b)
}

// BenchmarkStopForce1000 times `cgdev stop --force` of one service of 1,000
// processes. Target: under 100 ms.
func BenchmarkStopForce1000(b *testing.B) {
	var phase2 waitTimes
	p := newSvcProject(b, thousand)
	for b.Loop() {
		b.StopTimer()
		p.mustCgdev("start")
		p.waitProcs("many", 1001)
		b.StartTimer()
		phase2.add(p.mustCgdev("stop", "--force"))
	}
	phase2.report(b)
}

// BenchmarkStatus1000 times `cgdev status` of a service of 1,000 processes.
// Target: under 50 ms.
func BenchmarkStatus1000(b *testing.B) {
	p := newSvcProject(b, thousand)
	p.mustCgdev("start")
	p.waitProcs("many", 1001)
	for b.Loop() {
		p.mustCgdev("status")
	}
	b.StopTimer()
	p.mustCgdev("stop", "--force")
}

// BenchmarkStatus1000JSON is the same with --json.
func BenchmarkStatus1000JSON(b *testing.B) {
	p := newSvcProject(b, thousand)
	p.mustCgdev("start")
	p.waitProcs("many", 1001)
	for b.Loop() {
		p.mustCgdev("status", "--json")
	}
	b.StopTimer()
	p.mustCgdev("stop", "--force")
}

const thousand = `services:
  many:
    command: 'i=0; while [ $i -lt 1000 ]; do sleep 1000 & i=$((i+1)); done; exec sleep 1000'
`

// waitProcs waits until the service's cgroup holds at least n processes.
func (p *svcProject) waitProcs(service string, n int) {
	p.t.Helper()
	d := cgroup.Dir(filepath.Join(p.groupDir(), service))
	var have int
	ok := testenv.Eventually(60*time.Second, func() bool {
		pids, _ := d.Procs()
		have = len(pids)
		return have >= n
	})
	if !ok {
		p.t.Fatal(fmt.Sprintf("%s: %d processes, want %d", service, have, n))
	}
}

// waitTimes collects the longest per-service time of phase 2 that stop
// reports ("a in 12ms"): from the stop signal (or cgroup.kill) to an empty
// group, the kernel's share of a stop. The rest of ns/op is cgdev's.
type waitTimes struct {
	total time.Duration
	n     int
}

var phase2Took = regexp.MustCompile(` in ([0-9.]+[µm]?s)`)

func (w *waitTimes) add(out string) {
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "[2/5]") {
			line = l
		}
	}
	var longest time.Duration
	for _, m := range phase2Took.FindAllStringSubmatch(line, -1) {
		if d, err := time.ParseDuration(m[1]); err == nil && d > longest {
			longest = d
		}
	}
	w.total += longest
	w.n++
}

// report adds the mean as the metric wait-ms/op.
func (w *waitTimes) report(b *testing.B) {
	if w.n > 0 {
		b.ReportMetric(float64(w.total.Microseconds())/float64(w.n)/1000, "wait-ms/op")
	}
}

// BenchmarkExecCheck times `cgdev start` of one service whose readiness
// check is `exec: true`, per driver: each attempt of an exec check runs
// in a helper group of its own, created and removed around it (docs/
// services.md, Helper groups). The stop after each start is not timed.
//
//	go test ./test/e2e -run '^$' -bench ExecCheck -benchtime 10x
func BenchmarkExecCheck(b *testing.B) {
	testenv.Binary(b) // built before the first timed start
	for _, driver := range drivers {
		b.Run(driver, func(b *testing.B) {
			if h, err := cgroup.Detect(); driver == "systemd" && (err != nil || !h.Systemd.UserBus) {
				b.Skip("no systemd user manager reachable; run under test/systemd/with-manager.sh")
			}
			b.Setenv(launcher.DriverEnv, driver)
			p := newSvcProject(b, `services:
  web:
    command: exec sleep 1000
    ready: {exec: "true"}
`)
			for b.Loop() {
				p.mustCgdev("start")
				b.StopTimer()
				p.mustCgdev("stop")
				b.StartTimer()
			}
		})
	}
}
