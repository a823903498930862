package e2e_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/test/testenv"
)

// Issue 9 item 12 and issue 13 point 7: logs are read in bounded pieces,
// whatever their size, and kept within a cap.

// TestLogReadinessAfterLotsOfOutput: a service that prints 70 MB before
// its ready line is seen ready (the check once read only the first 64 MiB).
func TestLogReadinessAfterLotsOfOutput(t *testing.T) {
	p := newSvcProject(t, `services:
  chatty:
    command: 'echo $$ >> p/chatty; head -c 70000000 /dev/zero | tr "\0" x; echo; echo READY; exec sleep 1000'
    ready: {log: "^READY$", timeout: 60s}
`)
	code, out, errs := p.cgdev("start")
	if code != 0 || !strings.Contains(out, "chatty … ready") {
		t.Errorf("start: exit %d\nstdout:\n%.2000s\nstderr:\n%.2000s", code, out, errs)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("chatty")
}

// TestLogsManyLines: logs -n 100000 prints 100,000 lines (it once printed
// what fitted in 64 KiB: 649 of them), in order.
func TestLogsManyLines(t *testing.T) {
	p := newSvcProject(t, `services:
  counter:
    command: 'echo $$ >> p/counter; seq 1 150000; exec sleep 1000'
    ready: {log: "^150000$"}
`)
	p.mustCgdev("start")
	out := p.mustCgdev("logs", "-n", "100000")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 100000 {
		t.Fatalf("logs -n 100000: %d lines, want 100000", len(lines))
	}
	for i, l := range lines {
		if want := "counter | " + strconv.Itoa(50001+i); l != want {
			t.Fatalf("line %d: %q, want %q", i, l, want)
		}
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("counter")
}

// TestLogsFollowLongLineBounded: logs -f over a service writing a 200 MB
// line without a newline prints it in pieces and stays small (it held the
// line whole: 775 MB of RSS). The follower also rotates the log past the
// default 20M cap meanwhile, and follows on across the rotations.
func TestLogsFollowLongLineBounded(t *testing.T) {
	p := newSvcProject(t, `services:
  blob:
    command: 'echo $$ >> p/blob; while [ ! -e p/go ]; do sleep 0.05; done; head -c 200000000 /dev/zero | tr "\0" y; echo; exec sleep 1000'
`)
	p.mustCgdev("start")
	cmd := exec.Command(testenv.Binary(t), "logs", "-f", "-n", "1")
	cmd.Dir = p.dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.KillOnCleanup(t, cmd.Process.Pid)
	// The service begins its line only once logs -f follows the log, which
	// it shows by printing the last line (start's marker): had it started
	// later, it would follow from the middle of the line, never printing
	// what came before.
	r := bufio.NewReaderSize(stdout, 1<<20)
	first := make(chan string, 1)
	go func() { line, _ := r.ReadString('\n'); first <- line }()
	select {
	case line := <-first:
		if !strings.Contains(line, "--- cgdev: starting blob") {
			t.Fatalf("logs -f -n 1 printed %q first, not start's marker line", line)
		}
	case <-time.After(time.Minute):
		t.Fatal("logs -f -n 1 printed nothing in a minute")
	}
	writeFile(t, filepath.Join(p.dir, "p", "go"), "")
	var got int64
	longest := 0
	done := make(chan error, 1)
	go func() { // reads until the whole line is through, or logs -f is killed
		for got < 200000000 {
			line, err := r.ReadSlice('\n')
			if err != nil {
				done <- fmt.Errorf("after %d bytes: %w (a line over 1 MiB?)", got, err)
				return
			}
			longest = max(longest, len(line))
			if !bytes.HasPrefix(line, []byte("blob | y")) {
				done <- fmt.Errorf("after %d bytes: unexpected line %.200q", got, line)
				return
			}
			got += int64(len(bytes.TrimPrefix(bytes.TrimSuffix(line, []byte("\n")), []byte("blob | "))))
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("reading logs -f: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Errorf("logs -f printed %d bytes of the 200 MB line in 2 minutes", got)
	}
	hwm := vmHWM(t, cmd.Process.Pid)
	cmd.Process.Kill()
	cmd.Wait()
	if hwm > 100<<20 {
		t.Errorf("logs -f peaked at %d MiB of RSS following a 200 MB line", hwm>>20)
	}
	t.Logf("logs -f: RSS peak %.1f MiB, longest line printed %d bytes", float64(hwm)/(1<<20), longest)
	p.mustCgdev("stop")
	p.assertNothingLeft("blob")
}

// vmHWM is a process's peak RSS in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestLogRotationKeepsEverythingWithinTheCap: a service that writes 3 MB
// with a 256K × 3 cap: a status rotates; the files stay within the cap,
// and logs shows the newest lines intact and in order. A stop leaves the
// "stopped" line.
func TestLogRotationKeepsEverythingWithinTheCap(t *testing.T) {
	p := newSvcProject(t, `services:
  counter:
    command: 'echo $$ >> p/counter; seq 1 400000; exec sleep 1000'
    ready: {log: "^400000$"}
    logs: {max_size: 256K, max_files: 3}
`)
	p.mustCgdev("start")
	p.mustCgdev("status")
	logs := filepath.Join(p.dir, ".cgdev", "logs")
	var total int64
	for _, name := range []string{"counter.log", "counter.log.1", "counter.log.2"} {
		fi, err := os.Stat(filepath.Join(logs, name))
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
		if fi.Size() > 256<<10 {
			t.Errorf("%s: %d bytes, over the 256K cap", name, fi.Size())
		}
	}
	if _, err := os.Stat(filepath.Join(logs, "counter.log.3")); err == nil {
		t.Errorf("counter.log.3 kept with max_files: 3")
	}
	out := p.mustCgdev("logs", "-n", "-1")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	last, _ := strconv.Atoi(strings.TrimPrefix(lines[len(lines)-1], "counter | "))
	if last != 400000 {
		t.Fatalf("last line %q", lines[len(lines)-1])
	}
	// every line after the first (possibly cut by the rotation) follows its predecessor
	for i := 2; i < len(lines); i++ {
		a, _ := strconv.Atoi(strings.TrimPrefix(lines[i-1], "counter | "))
		b, _ := strconv.Atoi(strings.TrimPrefix(lines[i], "counter | "))
		if b != a+1 {
			t.Fatalf("line %d %q after %q: a gap or a duplicate", i, lines[i], lines[i-1])
		}
	}
	t.Logf("kept %d bytes in 3 files, %d lines", total, len(lines))
	p.mustCgdev("stop")
	b, _ := os.ReadFile(filepath.Join(logs, "counter.log"))
	if !strings.Contains(string(b), "--- cgdev: stopped counter at ") {
		t.Errorf("no stopped line at the end of counter.log: %q", tail(string(b), 200))
	}
	p.assertNothingLeft("counter")
}

// TestLogsTimestampsAndSince: lines read as they come are stamped exactly;
// --since leaves out what a checkpoint proves older; the start and stop
// lines are there.
func TestLogsTimestampsAndSince(t *testing.T) {
	p := newSvcProject(t, `services:
  tick:
    command: 'echo $$ >> p/tick; echo early; while [ ! -e p/go ]; do sleep 0.05; done; echo late; exec sleep 1000'
    ready: {log: "^early$"}
`)
	p.mustCgdev("start")
	p.mustCgdev("status") // a checkpoint: "early" was written by now
	time.Sleep(1100 * time.Millisecond)
	mid := time.Now()
	writeFile(t, filepath.Join(p.dir, "p", "go"), "")
	if !testenv.Eventually(10*time.Second, func() bool {
		_, out, _ := p.cgdev("logs")
		return strings.Contains(out, "late")
	}) {
		t.Fatal("no late line")
	}
	out := p.mustCgdev("logs", "--since", mid.Format("2006-01-02T15:04:05.000Z07:00"), "--timestamps")
	if strings.Contains(out, "early") || !strings.Contains(out, "late") {
		t.Errorf("logs --since %s:\n%s", mid, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		stamp, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(l, "tick | "), "~"), " ")
		at, err := time.Parse("2006-01-02T15:04:05.000Z07:00", stamp)
		if err != nil || at.Before(mid.Add(-time.Millisecond)) || at.After(time.Now()) {
			t.Errorf("line %q: stamp %v (%v) outside [%s, now]", l, at, err, mid)
		}
	}
	out = p.mustCgdev("logs", "-n", "-1", "-t")
	if !strings.Contains(out, "--- cgdev: starting tick at") || !strings.Contains(out, "early") {
		t.Errorf("logs -n -1 -t:\n%s", out)
	}
	p.mustCgdev("stop")
	p.assertNothingLeft("tick")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
