package launcher

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// logIndex is <svc>.log.idx, kept beside each log. Offsets in it are
// logical: a byte's position in everything the service ever wrote to the
// log, which rotation does not change (the live file's byte 0 is logical
// offset base). Seen records when cgdev saw the log how long: every byte
// before Off was written at or before At. They are what timestamps of
// stored lines and --since are built from.
type logIndex struct {
	base int64
	seen []checkpoint // by Off, then At, both increasing
}

type checkpoint struct {
	Off int64
	At  time.Time
}

// maxCheckpoints bounds the index: past it, every other one of the older
// half is dropped (old lines get coarser times, the index stays small).
const (
	maxCheckpoints = 2000
	maxIndexSize   = 128 << 10
	logIndexMagic  = "cgdev-log-index 1"
)

// parseLogIndex reads an index leniently: it is a record cgdev keeps for
// itself, so a line it cannot read is skipped rather than refused, and
// checkpoints out of order (a hand-edited file) are dropped.
func parseLogIndex(b []byte) logIndex {
	var idx logIndex
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxIndexSize)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "base":
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil && n >= 0 {
				idx.base = n
			}
		case len(f) == 3 && f[0] == "seen":
			off, err1 := strconv.ParseInt(f[1], 10, 64)
			ns, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil || off < 0 || ns <= 0 {
				continue
			}
			c := checkpoint{Off: off, At: time.Unix(0, ns)}
			if n := len(idx.seen); n > 0 && (c.Off < idx.seen[n-1].Off || c.At.Before(idx.seen[n-1].At)) {
				continue
			}
			idx.seen = append(idx.seen, c)
		}
	}
	return idx
}

// format writes the index back.
func (idx *logIndex) format() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nbase %d\n", logIndexMagic, idx.base)
	for _, c := range idx.seen {
		fmt.Fprintf(&b, "seen %d %d\n", c.Off, c.At.UnixNano())
	}
	return b.Bytes()
}

// record notes that the log was end bytes long at time at. It reports
// whether that added anything.
func (idx *logIndex) record(end int64, at time.Time) bool {
	if n := len(idx.seen); n > 0 && (end <= idx.seen[n-1].Off || at.Before(idx.seen[n-1].At)) {
		return false
	}
	idx.seen = append(idx.seen, checkpoint{Off: end, At: at})
	if len(idx.seen) > maxCheckpoints {
		half := len(idx.seen) / 2
		var kept []checkpoint
		for i := 0; i < half; i += 2 {
			kept = append(kept, idx.seen[i])
		}
		idx.seen = append(kept, idx.seen[half:]...)
	}
	return true
}

// forget drops checkpoints of bytes no longer kept (before oldest).
func (idx *logIndex) forget(oldest int64) {
	i := sort.Search(len(idx.seen), func(i int) bool { return idx.seen[i].Off > oldest })
	if i > 0 {
		i-- // the last one at or before oldest still bounds what follows from below
	}
	idx.seen = idx.seen[i:]
}

// stamp bounds when the bytes [start, end) were written: after lower (zero
// when unknown) and at or before upper (ok false when no checkpoint covers
// end: the caller falls back on the file's modification time).
func (idx *logIndex) stamp(start, end int64) (lower, upper time.Time, ok bool) {
	i := sort.Search(len(idx.seen), func(i int) bool { return idx.seen[i].Off >= end })
	if i < len(idx.seen) {
		upper, ok = idx.seen[i].At, true
	}
	j := sort.Search(len(idx.seen), func(j int) bool { return idx.seen[j].Off > start })
	if j > 0 {
		lower = idx.seen[j-1].At
	}
	return lower, upper, ok
}

// since returns the logical offset from which lines may have been written
// at or after t: every byte before it was written before t.
func (idx *logIndex) since(t time.Time) int64 {
	i := sort.Search(len(idx.seen), func(i int) bool { return !idx.seen[i].At.Before(t) })
	if i == 0 {
		return 0
	}
	return idx.seen[i-1].Off
}
