package faults

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/test/testenv"
	"golang.org/x/sys/unix"
)

// SIGINT, SIGTERM or SIGHUP (Ctrl-C, a kill's default, a closed terminal)
// at a random point of start, stop, restart, up, run and run --with: cgdev
// ends (it does not hang), leaves no readiness check half-way, and the next
// `cgdev stop` leaves 0 processes, 0 groups and every user file as it was.
// The point and the signal are drawn from the seeded RNG of the SIGKILL
// suite ($CGDEV_FAULT_SEED, $CGDEV_FAULT_ITERATIONS).

// signalCases are killCases, and the runs: one alone, its leftovers in
// the background and in a session of their own, and one with the slow
// service (a start, the command, a stop: each a window).
var signalCases = append(killCases[:len(killCases):len(killCases)],
	killCase{[]string{"run", "--", "sh", "-c", "sleep %[1]d & setsid sleep %[1]d & exec sleep %[1]d"}, time.Second, false},
	killCase{[]string{"run", "--with", "after", "--", "sh", "-c", "sleep %[1]d & setsid sleep %[1]d & exec sleep %[1]d"}, 2500 * time.Millisecond, false},
)

var interrupts = []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

func TestInterrupt(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string, seed uint64, iterations int) {
		for _, c := range signalCases {
			t.Run(strings.Join(c.args[:min(len(c.args), 3)], "_"), func(t *testing.T) {
				for i := range iterations {
					delay := killPoint(seed, i, c.within)
					sig := interrupts[int(killPoint(seed+1, i, 3))]
					t.Run(strconv.Itoa(i)+"_"+unix.SignalName(sig), func(t *testing.T) {
						t.Cleanup(func() {
							if t.Failed() {
								t.Logf("replay: CGDEV_FAULT_SEED=%d CGDEV_FAULT_ITERATIONS=%d go test -run 'TestInterrupt/%s' ./test/faults  (%v after %s)", seed, iterations, t.Name()[len("TestInterrupt/"):], sig, delay)
							}
						})
						faultAt(t, driver, c, delay, sig)
					})
				}
			})
		}
	})
}

// assertNoHelperLeft fails for a process of the project that runs in a
// helper group (its service marker SVC.KIND.PID.N): once cgdev has ended,
// no readiness check of it may run on.
func assertNoHelperLeft(t *testing.T, p *testenv.Project) {
	t.Helper()
	for _, pid := range p.Marked() {
		if m := proc.ReadMarker(pid); strings.Contains(m.Service, ".") {
			t.Errorf("PID %d (%s) of helper group %s runs on after cgdev ended", pid, testenv.Cmdline(pid), m.Service)
		}
	}
}
