package faults

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgdev/cgdev/internal/proc"
	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
)

// SIGKILL of cgdev (a CI job timeout, an OOM kill, kill -9) at a random point
// of start, stop, restart and up: whatever it was doing, the next `cgdev
// stop` stops everything, leaves no cgroup and changes no file of the user.
//
// The points are drawn from a seeded RNG. $CGDEV_FAULT_SEED replays a run
// (a failure prints it with the iteration's delay), $CGDEV_FAULT_ITERATIONS
// sets the iterations per driver and command (default 3).

// killConfig forks children and daemons (setsid), ignores SIGTERM in one
// service (stop then waits its grace: a window to be killed in) and has a
// slow readiness check with a dependency after it (a window in start). %[1]d
// is the sleep length unique to the project: any process still running it
// after the stop is a survivor, marker or not.
const killConfig = `grace: 2s
services:
  web:
    command: 'sleep %[1]d & setsid sleep %[1]d & exec sleep %[1]d'
  stubborn:
    command: 'trap "" TERM; sleep %[1]d & exec sleep %[1]d'
    grace: 400ms
  slow:
    command: 'sh -c "sleep %[1]d &"; exec sleep %[1]d'
    ready: {exec: "sleep 0.3"}
  after:
    command: 'exec sleep %[1]d'
    depends_on: [slow]
`

// killCase is a command to kill, with the range its kill point is drawn
// from and whether the services run before it starts.
type killCase struct {
	args     []string
	within   time.Duration
	startsUp bool // the project is started first
}

var killCases = []killCase{
	{[]string{"start"}, 1500 * time.Millisecond, false},
	{[]string{"stop"}, 1200 * time.Millisecond, true},
	{[]string{"restart"}, 2500 * time.Millisecond, true},
	{[]string{"up"}, 2500 * time.Millisecond, false},
}

func TestSIGKILL(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string, seed uint64, iterations int) {
		for _, c := range killCases {
			t.Run(c.args[0], func(t *testing.T) {
				for i := range iterations {
					delay := killPoint(seed, i, c.within)
					t.Run(strconv.Itoa(i), func(t *testing.T) {
						t.Cleanup(func() {
							if t.Failed() {
								t.Logf("replay: CGDEV_FAULT_SEED=%d CGDEV_FAULT_ITERATIONS=%d go test -run 'TestSIGKILL/%s/%s/%d' ./test/faults  (SIGKILL after %s)", seed, iterations, driver, c.args[0], i, delay)
							}
						})
						faultAt(t, driver, c, delay, syscall.SIGKILL)
					})
				}
			})
		}
	})
}

// forEachDriver runs test once per driver (systemd only where a user
// manager answers), in a subtest named after it with $CGDEV_DRIVER set,
// passing the seed ($CGDEV_FAULT_SEED, else the time) and the iterations
// ($CGDEV_FAULT_ITERATIONS, else 3).
func forEachDriver(t *testing.T, test func(t *testing.T, driver string, seed uint64, iterations int)) {
	seed := envUint(t, "CGDEV_FAULT_SEED", uint64(time.Now().UnixNano()))
	iterations := int(envUint(t, "CGDEV_FAULT_ITERATIONS", 3))
	for _, driver := range []string{"direct", "fallback", "systemd"} {
		t.Run(driver, func(t *testing.T) {
			if driver == "systemd" {
				testenv.NeedUserManager(t)
			}
			t.Setenv(launcher.DriverEnv, driver)
			test(t, driver, seed, iterations)
		})
	}
}

// killPoint is iteration i's delay before the SIGKILL, below within: the
// same for the same seed.
func killPoint(seed uint64, i int, within time.Duration) time.Duration {
	return time.Duration(rand.New(rand.NewPCG(seed, uint64(i))).Int64N(int64(within)))
}

// faultAt runs one iteration: c's command sent sig delay after it began,
// then `cgdev stop`, then the checks. A signal cgdev catches must end it
// (no hang: a minute's watchdog), and leave no helper group running (a
// readiness check's: a start interrupted mid-check leaves nothing it
// started half-way).
func faultAt(t *testing.T, driver string, c killCase, delay time.Duration, sig syscall.Signal) {
	tag := 200000 + rand.IntN(100000)
	p := newFaultProject(t, driver, fmt.Sprintf(killConfig, tag))
	writeUserFiles(t, p.Dir)
	if c.startsUp {
		if code, out, errs := p.Cgdev(time.Minute, "start"); code != 0 {
			t.Fatalf("start: exit %d\n%s%s", code, out, errs)
		}
	}
	before := userFiles(t, p.Dir)

	cmd := exec.Command(testenv.Binary(t), c.argv(tag)...)
	cmd.Dir = p.Dir
	var out bytes.Buffer // read once the command has exited
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	time.Sleep(delay) // the fault point itself, not a wait for a condition
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(time.Minute):
		t.Errorf("cgdev %v still running a minute after %v: hung", c.args, sig)
		cmd.Process.Kill()
		<-exited
	}
	if sig != syscall.SIGKILL {
		assertNoHelperLeft(t, p)
	}

	code, sout, serr := p.Cgdev(time.Minute, "stop")
	if code != 0 {
		t.Errorf("stop after %v to %v: exit %d\n%s%s", sig, c.args, code, sout, serr)
	}
	p.AssertNothingLeft()
	sleep := fmt.Sprintf("sleep %d", tag)
	if !testenv.Eventually(5*time.Second, func() bool { return len(running(t, sleep)) == 0 }) {
		left := running(t, sleep)
		t.Errorf("processes of the project survived without its marker: %v", left)
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL) // ours: their command line is unique to the test
		}
	}
	assertUnchanged(t, before, userFiles(t, p.Dir))
	if t.Failed() {
		t.Logf("output of %v after %v:\n%s", c.args, sig, out.String())
	}
}

// argv is the command line of c, the project's tag in place of %[1]d.
func (c killCase) argv(tag int) []string {
	out := make([]string, len(c.args))
	for i, a := range c.args {
		if strings.Contains(a, "%[1]d") {
			a = fmt.Sprintf(a, tag)
		}
		out[i] = a
	}
	return out
}

// newFaultProject is testenv.NewProject in a fresh directory; with the
// systemd driver, a scope of the project still loaded 10 s after the test
// (the manager collects stopped ones) fails it.
func newFaultProject(t *testing.T, driver, config string) *testenv.Project {
	p := testenv.NewProject(t, "", config)
	if driver == "systemd" {
		prefix := testenv.ScopePrefix(p.ID)
		t.Cleanup(func() {
			testenv.Eventually(10*time.Second, func() bool { return len(testenv.Scopes(t, prefix)) == 0 })
			testenv.AssertNoScopes(t, prefix)
		})
	}
	return p
}

// writeUserFiles puts what a project holds besides cgdev's files: sources,
// an .env, a .git directory.
func writeUserFiles(t *testing.T, dir string) {
	for name, content := range map[string]string{
		"src/app.js":  "console.log('hi')\n",
		".env":        "SECRET=1\n",
		".git/HEAD":   "ref: refs/heads/main\n",
		"README.md":   "# project\n",
		"data/db.sql": "create table t (x int);\n",
	} {
		testenv.Mkdir(t, filepath.Dir(filepath.Join(dir, name)))
		testenv.WriteFile(t, filepath.Join(dir, name), content)
	}
}

// running lists the live processes whose command line is cmdline.
func running(t *testing.T, cmdline string) []int {
	tab, err := proc.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for pid, pr := range tab.Procs {
		if pr.State != 'Z' && testenv.Cmdline(pid) == cmdline {
			out = append(out, pid)
		}
	}
	return out
}

// envUint reads a number from the environment, def when it is unset.
func envUint(t *testing.T, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("$%s=%q: %v", name, s, err)
	}
	return n
}

// TestSIGKILLRun: a SIGKILLed `cgdev run` (a CI job timeout) takes its
// command and everything it started with it, with every driver, wherever
// the kill lands. The bound here is generous for a loaded machine; the
// one-second target is BenchmarkRunKilled's (test/e2e, docs/run.md).
func TestSIGKILLRun(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string, seed uint64, iterations int) {
		testenv.CgroupBase(t)
		for i := range iterations {
			delay := killPoint(seed, i, time.Second)
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				tag := 200000 + rand.IntN(100000)
				sleep := fmt.Sprintf("sleep %d", tag)
				cmd := exec.Command(testenv.Binary(t), "run", "--", "sh", "-c", fmt.Sprintf("%[1]s & setsid %[1]s & exec %[1]s", sleep))
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(delay) // the kill point
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				if !testenv.Eventually(10*time.Second, func() bool { return len(running(t, sleep)) == 0 }) {
					t.Errorf("SIGKILL of cgdev run after %s (CGDEV_FAULT_SEED=%d): its command survived: %v", delay, seed, running(t, sleep))
					for _, pid := range running(t, sleep) {
						syscall.Kill(pid, syscall.SIGKILL) // ours: the command line is unique to the test
					}
				}
			})
		}
	})
}
