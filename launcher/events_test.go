package launcher

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEventsBounded: the events stream rotates past maxEvents into one
// older file, so events.log and events.log.1 never hold much more than
// 2 MiB; its offsets are logical, so a follower that started before the
// rotation goes on with the next event, reading what moved into .1 first.
func TestEventsBounded(t *testing.T) {
	p, _ := logProject(t, 0, 1)
	p.event("first")
	from := p.EventsEnd()
	if from == 0 {
		t.Fatal("EventsEnd is 0 after an event")
	}
	pad := strings.Repeat("x", 1000)
	n := 3 * maxEvents / 1000
	for i := range n {
		p.event("e%d %s", i, pad)
	}
	dir := filepath.Join(p.Dir, ".cgdev")
	var total int64
	for _, name := range []string{"events.log", "events.log.1", "events.log.2"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if name == "events.log.2" {
			if err == nil {
				t.Errorf("%s kept: one rotated file is the bound", name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		total += fi.Size()
	}
	if total > 2*maxEvents+2*1100 {
		t.Errorf("events take %d bytes, want at most about 2 MiB", total)
	}
	if end := p.EventsEnd(); end < int64(n)*1000 {
		t.Errorf("EventsEnd %d: not a logical offset past the %d events written", end, n)
	}

	// A follower from before the rotation: the bytes it missed are said to
	// be rotated away, then it goes on with the oldest event kept, in order.
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Logs(ctx, p, []string{"w"}, LogOptions{Follow: true, Lines: 0, Events: true, EventsFrom: from, Out: &out}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if !strings.Contains(lines[0], "bytes rotated away before they could be printed") {
		t.Errorf("first line %q: want the rotated-away note", lines[0])
	}
	last := fmt.Sprintf("cgdev | e%d ", n-1)
	if !strings.HasPrefix(lines[len(lines)-1], last) {
		t.Errorf("last line %.40q, want %q…", lines[len(lines)-1], last)
	}
	prev := -1
	for k, l := range lines[1:] {
		if k == 0 && !strings.HasPrefix(l, "cgdev | e") {
			continue // the rest of a line whose start was rotated away
		}
		var i int
		if _, err := fmt.Sscanf(l, "cgdev | e%d ", &i); err != nil || i != prev+1 && prev >= 0 {
			t.Fatalf("after e%d: %.40q (not the next event, or not without its time)", prev, l)
		}
		prev = i
	}
}

// TestEventsTimestamps: with -t an event is stamped with the time written
// in it (exact), not when the follower read it, and the time is not
// printed twice.
func TestEventsTimestamps(t *testing.T) {
	p, _ := logProject(t, 0, 1)
	from := p.EventsEnd()
	p.event("web: exited (code 1); restarting in 1s (restart 1)")
	b, err := os.ReadFile(p.EventsFile())
	if err != nil {
		t.Fatal(err)
	}
	written, _, _ := strings.Cut(string(b), " ")
	at, err := time.Parse(TimestampLayout, written)
	if err != nil {
		t.Fatalf("events.log line %q: %v", b, err)
	}
	time.Sleep(20 * time.Millisecond) // read later than written
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Logs(ctx, p, []string{"w"}, LogOptions{Follow: true, Timestamps: true, Events: true, EventsFrom: from, Out: &out}); err != nil {
		t.Fatal(err)
	}
	want := "cgdev | " + at.Format(TimestampLayout) + " web: exited (code 1); restarting in 1s (restart 1)\n"
	if out.String() != want {
		t.Errorf("got %q\nwant %q", out.String(), want)
	}
}
