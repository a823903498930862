package launcher

import (
	"encoding/json"
	"testing"
	"time"
)

// state.json and the log index are read from a directory anyone with write
// access to the project can fill: fuzzed, their readers must not panic,
// and what they accept must hold together.

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"project":"p-1","dir":"/x","driver":"direct","services":{"web":{"pid":42,"start_ticks":7,"pgid":42,"started":"2024-05-01T10:00:00Z","ready_after":"1.5s","log":"/x/.cgdev/logs/web.log"}}}`))
	f.Add([]byte(`{"project":"p-1","services":{"web":null}}`))
	f.Add([]byte(`{"project":"p-1","services":{"web":{"ready_after":"forever"}}}`))
	f.Add([]byte(`{"project":"other"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseState(b, "p-1")
		if err != nil {
			return
		}
		if st.Project != "p-1" || st.Services == nil {
			t.Fatalf("accepted %q as %+v", b, st)
		}
		for name, s := range st.Services {
			if s == nil {
				t.Fatalf("service %q: nil record accepted", name)
			}
			s.Identity() // must not panic
		}
		if _, err := json.Marshal(st); err != nil {
			t.Fatalf("cannot write back what was read: %v", err)
		}
	})
}

func FuzzParseLogIndex(f *testing.F) {
	f.Add([]byte("cgdev-log-index 1\nbase 4096\nseen 4096 1714557600000000000\nseen 8000 1714557601000000000\n"))
	f.Add([]byte("base -1\nseen 1 0\nseen 5 3\nseen 4 9\n"))
	f.Add([]byte("base 9223372036854775807\nseen 9223372036854775807 9223372036854775807\n"))
	f.Add([]byte("\n\n\x00 base"))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx := parseLogIndex(b)
		if idx.base < 0 {
			t.Fatalf("negative base %d", idx.base)
		}
		for i := 1; i < len(idx.seen); i++ {
			if idx.seen[i].Off < idx.seen[i-1].Off || idx.seen[i].At.Before(idx.seen[i-1].At) {
				t.Fatalf("checkpoints out of order: %v", idx.seen)
			}
		}
		again := parseLogIndex(idx.format())
		if again.base != idx.base || len(again.seen) != len(idx.seen) {
			t.Fatalf("format/parse round trip: %+v, then %+v", idx, again)
		}
		// what readers ask of it must not panic, whatever it holds
		idx.stamp(0, 100)
		idx.since(time.Unix(0, 1))
		idx.record(idx.base+1, time.Now())
		idx.forget(idx.base)
	})
}
