package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stoppedLine is the last "--- cgdev: stopped" line of service's log.
func (p *svcProject) stoppedLine(service string) string {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, ".cgdev", "logs", service+".log"))
	if err != nil {
		p.t.Fatal(err)
	}
	line := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "--- cgdev: stopped "+service+" at ") {
			line = l
		}
	}
	if line == "" {
		p.t.Fatalf("no stopped line in the log of %s: %q", service, tail(string(b), 300))
	}
	return line
}

// TestStoppedLineSaysForced, with each driver: the stopped line a stop
// writes in a service's log says how the service was stopped: a kill forced
// by stop --force or by a second signal is said to be forced, never "after
// its grace", which is what a kill after a grace that ran out says.
func TestStoppedLineSaysForced(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		cases := []struct {
			name, grace string
			stop        func(p *svcProject)
			want        string
		}{
			{"force", "60s", func(p *svcProject) { p.mustCgdev("stop", "--force") }, "(forced: killed at once by stop --force in "},
			{"second-signal", "60s", func(p *svcProject) {
				stop := p.startCgdev(t, "stop")
				stop.forceStop(syscall.SIGINT, syscall.SIGINT)
				if code := stop.wait(30 * time.Second); code != 0 {
					t.Errorf("stop after two signals: exit %d:\n%s", code, stop.output())
				}
			}, "(forced: killed during its grace by a second signal in "},
			{"grace", "1s", func(p *svcProject) { p.mustCgdev("stop") }, "(killed after its grace in "},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p := newDriverProject(t, driver, stubbornConfig(c.grace))
				p.startStubborn()
				c.stop(p)
				if line := p.stoppedLine("stubborn"); !strings.Contains(line, c.want) {
					t.Errorf("stopped line %q, want it to say %q", line, c.want)
				}
				p.assertNothingLeft("stubborn")
			})
		}
	})
}
