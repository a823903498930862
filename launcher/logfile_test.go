package launcher

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// logProject is a project in a temporary directory with one service, w,
// whose log rotates past maxSize into maxFiles files.
func logProject(t testing.TB, maxSize int64, maxFiles int) (*Project, string) {
	dir := t.TempDir()
	svc := &Service{Name: "w", Logs: logSettings{maxSize: &maxSize, maxFiles: &maxFiles}}
	p := &Project{ID: "t-1", Dir: dir, Config: &Config{Dir: dir, Services: []*Service{svc}}}
	logs := filepath.Join(dir, ".cgdev", "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	return p, logs
}

// stream is every byte kept of w's log, oldest first.
func stream(t *testing.T, logs string, files int) []byte {
	var all []byte
	for k := files - 1; k >= 0; k-- {
		name := filepath.Join(logs, "w.log")
		if k > 0 {
			name += "." + strconv.Itoa(k)
		}
		b, err := os.ReadFile(name)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestRotationWhileWriting: a writer appends numbered lines (O_APPEND, as a
// service does) while rotations run; on a file system with collapse-range
// (ext4 here) the kept files hold an unbroken run of lines ending with the
// last one written, each file within the cap. Elsewhere (TMPDIR on a tmpfs)
// it measures what copy-then-truncate loses.
func TestRotationWhileWriting(t *testing.T) {
	const cap, files, lines = 64 << 10, 4, 100000
	p, logs := logProject(t, cap, files)
	f, err := os.OpenFile(filepath.Join(logs, "w.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= lines; i++ {
			fmt.Fprintf(f, "%08d\n", i)
		}
	}()
	log := p.serviceLog("w")
	rotations := 0
	for done := false; !done; {
		done = waitTimeout(&wg)
		if err := log.touch(); err != nil {
			t.Fatal(err)
		}
		rotations++
	}
	all := stream(t, logs, files)
	got := strings.Split(strings.TrimSuffix(string(all), "\n"), "\n")
	if got[len(got)-1] != fmt.Sprintf("%08d", lines) {
		t.Fatalf("last line %q", got[len(got)-1])
	}
	var st unix.Statfs_t
	unix.Statfs(logs, &st)
	exact := collapsible(st.Type) // elsewhere copy-then-truncate may lose lines
	lost := 0
	for i := 2; i < len(got); i++ { // the first may be cut by the oldest drop
		a, _ := strconv.Atoi(got[i-1])
		b, _ := strconv.Atoi(got[i])
		if b <= a {
			t.Fatalf("line %d: %q after %q (repeated lines)", i, got[i], got[i-1])
		}
		if b != a+1 && exact {
			t.Fatalf("line %d: %q after %q (lost lines)", i, got[i], got[i-1])
		}
		lost += b - a - 1
	}
	for k := 1; k < files; k++ {
		if fi, err := os.Stat(filepath.Join(logs, "w.log."+strconv.Itoa(k))); err == nil && fi.Size() > cap && exact {
			t.Errorf("w.log.%d: %d bytes, over the cap", k, fi.Size())
		}
	}
	t.Logf("%d touches, %d lines kept, %d lost between them (collapse-range: %v)", rotations, len(got), lost, exact)
	// logical offsets: the stream read through the view is the same bytes
	v, err := log.view()
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	viewed := make([]byte, v.end()-v.oldest())
	if n, err := v.readFull(viewed, v.oldest()); err != nil || n != len(viewed) || !bytes.Equal(viewed, all) {
		t.Errorf("view: %d bytes (%v), equal to the files: %v", n, err, bytes.Equal(viewed[:n], all))
	}
}

func waitTimeout(wg *sync.WaitGroup) bool {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestTailAcrossFiles: the last N lines are found across the rotated
// files, and scanLines hands on a line longer than maxLogPiece in pieces.
func TestTailAcrossFiles(t *testing.T) {
	p, logs := logProject(t, 64<<10, 5)
	var b strings.Builder
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	b.WriteString(strings.Repeat("z", 3*maxLogPiece+5)) // unfinished
	if err := os.WriteFile(filepath.Join(logs, "w.log"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	log := p.serviceLog("w")
	if err := log.touch(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(logs, "w.log.4")); err != nil {
		t.Fatalf("no rotation into 4 files: %v", err)
	}
	start, err := log.tailStart(3, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	log.scanLines(start, true, func(line []byte, _ int64, _ *logView) bool {
		if len(line) > maxLogPiece {
			t.Errorf("a piece of %d bytes", len(line))
		}
		got = append(got, string(line[:min(len(line), 8)]))
		return true
	})
	want := []string{"4999\n", "5000\n", "zzzzzzzz", "zzzzzzzz", "zzzzzzzz", "zzzzz"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("last 3 lines, in pieces: %q, want %q", got, want)
	}
}

// BenchmarkRotate20M: the cost of one rotation of a 20 MiB + 1 byte live
// file into .1 (copy, then collapse-range where supported).
func BenchmarkRotate20M(b *testing.B) {
	p, logs := logProject(b, DefaultLogMaxSize, DefaultLogMaxFiles)
	data := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), (DefaultLogMaxSize/64)+1)
	log := p.serviceLog("w")
	for b.Loop() {
		b.StopTimer()
		if err := os.WriteFile(filepath.Join(logs, "w.log"), data, 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := log.touch(); err != nil {
			b.Fatal(err)
		}
	}
}
