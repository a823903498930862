package proc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestParseStat: the command name may hold spaces and parentheses; fields
// are counted from the last ')'.
func TestParseStat(t *testing.T) {
	line := "4711 (a) b (c)) S 1 4711 4711 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 2 0 123456 5000000 300 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	p, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := Proc{PID: 4711, PPID: 1, PGID: 4711, SID: 4711, Comm: "a) b (c)", State: 'S', StartTicks: 123456, UTime: 7, STime: 3, Threads: 2, RSSPages: 300}
	if p != want {
		t.Errorf("parseStat = %+v\nwant %+v", p, want)
	}
	for _, bad := range []string{"", "4711 no parens", "4711 (x) S 1 2"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

// TestMarkerApply: a service's markers replace every inherited one, a run's
// only an inherited CGDEV_RUN; StripMarkers removes all three.
func TestMarkerApply(t *testing.T) {
	inherited := []string{"HOME=/h", "CGDEV_RUN=outer", "CGDEV_PROJECT=p0", "CGDEV_SERVICE=s0", "CGDEV_DRIVER=direct"}
	for _, c := range []struct {
		m    Marker
		want []string
	}{
		{Marker{Project: "p", Service: "web"}, []string{"HOME=/h", "CGDEV_DRIVER=direct", "CGDEV_PROJECT=p", "CGDEV_SERVICE=web"}},
		{Marker{Run: "r"}, []string{"HOME=/h", "CGDEV_PROJECT=p0", "CGDEV_SERVICE=s0", "CGDEV_DRIVER=direct", "CGDEV_RUN=r"}},
	} {
		if got := c.m.Apply(inherited); !slices.Equal(got, c.want) {
			t.Errorf("%+v.Apply = %q\nwant %q", c.m, got, c.want)
		}
	}
	if got := StripMarkers(inherited); !slices.Equal(got, []string{"HOME=/h", "CGDEV_DRIVER=direct"}) {
		t.Errorf("StripMarkers = %q", got)
	}
	if inherited[1] != "CGDEV_RUN=outer" {
		t.Error("Apply changed its argument")
	}
}

// start starts argv with env added to this process's environment, waits
// until it runs as argv (its environment is set up with its arguments), and
// kills it when the test ends.
func start(t *testing.T, env []string, argv ...string) Identity {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for Cmdline(cmd.Process.Pid) != strings.Join(argv, " ") {
		if time.Now().After(deadline) {
			t.Fatalf("PID %d did not exec %q", cmd.Process.Pid, argv)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p, err := ReadProc(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return p.Identity()
}

// TestReadMarker: the markers are read from the environment the process was
// started with.
func TestReadMarker(t *testing.T) {
	id := start(t, []string{"CGDEV_PROJECT=p1", "CGDEV_SERVICE=web"}, "sleep", "1000")
	if m := ReadMarker(id.PID); m != (Marker{Project: "p1", Service: "web"}) || m.Label() != "web" {
		t.Errorf("ReadMarker = %+v (label %q)", m, m.Label())
	}
	if m := ReadMarker(1 << 30); m != (Marker{}) {
		t.Errorf("ReadMarker of no process = %+v", m)
	}
}

// TestMarkerOfAcrossExec: a process caught while it execs, as it is right
// after exec.Cmd.Start returns, still shows its markers to MarkerOf: the
// kernel sets the new program's command line and then its environment, and
// a command line read after an empty environment does not make that
// environment empty.
func TestMarkerOfAcrossExec(t *testing.T) {
	want := Marker{Project: "p1", Service: "web"}
	for i := range 300 {
		cmd := exec.Command("sleep", "1000")
		cmd.Env = append(os.Environ(), ProjectEnv+"="+want.Project, ServiceEnv+"="+want.Service)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p, err := ReadProc(cmd.Process.Pid) // our unreaped child: it exists
		m := MarkerOf(p)
		cmd.Process.Kill()
		cmd.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if m != want {
			t.Fatalf("start %d: MarkerOf = %+v, want %+v", i, m, want)
		}
	}
}

// TestSignalAndWaitExited: WaitExited returns when the processes exit, or
// with ctx's error while one lives; a stale identity (what a recycled PID
// looks like) is never signalled and counts as exited.
func TestSignalAndWaitExited(t *testing.T) {
	a := start(t, nil, "sleep", "1000")
	b := start(t, nil, "sleep", "1000")
	stale := Identity{PID: b.PID, StartTicks: b.StartTicks - 1}
	if ok, err := stale.Signal(syscall.SIGKILL); ok || err != nil {
		t.Errorf("Signal through a stale identity = %v, %v; want false, nil", ok, err)
	}
	if !b.Alive() {
		t.Fatal("a stale identity's signal reached the live process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := WaitExited(ctx, []Identity{a, b, stale}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitExited with live processes = %v; want the deadline", err)
	}
	for _, id := range []Identity{a, b} {
		if ok, err := id.Signal(syscall.SIGTERM); !ok || err != nil {
			t.Fatalf("Signal(%d) = %v, %v", id.PID, ok, err)
		}
	}
	if err := WaitExited(context.Background(), []Identity{a, b, stale}); err != nil {
		t.Fatal(err)
	}
	if a.Alive() || b.Alive() {
		t.Error("WaitExited returned while a process lives")
	}
	if ok, err := (Identity{PID: 1}).Signal(0); ok || err == nil {
		t.Error("Signal to PID 1 was not refused")
	}
}

// TestProtected: cgdev's own PID, its parent and PID 1 are protected.
func TestProtected(t *testing.T) {
	p := Protected()
	for _, pid := range []int{0, 1, os.Getpid(), os.Getppid()} {
		if !p[pid] {
			t.Errorf("PID %d is not protected", pid)
		}
	}
}

// TestTableSubtree: the children of a root, then theirs, once each.
func TestTableSubtree(t *testing.T) {
	tab := &Table{Procs: map[int]Proc{}, children: map[int][]int{10: {11, 12}, 11: {13}, 12: {13}, 13: {14}}}
	if got := tab.Subtree(10); !slices.Equal(got, []int{11, 12, 13, 14}) {
		t.Errorf("Subtree(10) = %v", got)
	}
	if got := tab.Subtree(11, 12); !slices.Equal(got, []int{13, 14}) {
		t.Errorf("Subtree(11, 12) = %v", got)
	}
}
