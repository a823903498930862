package safefile_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cgdev/cgdev/internal/safefile"
)

// TestRefusesWhatIsNotOurs: each kind of thing a user can leave at one of
// cgdev's paths is refused with a *NotOursError naming it, and unchanged.
func TestRefusesWhatIsNotOurs(t *testing.T) {
	dir := t.TempDir()
	elsewhere := filepath.Join(t.TempDir(), "target")
	os.WriteFile(elsewhere, []byte("user's\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "file"), []byte("user's\n"), 0o644)
	os.Symlink(elsewhere, filepath.Join(dir, "link"))
	os.Symlink(t.TempDir(), filepath.Join(dir, "dirlink"))
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644)
	os.Mkdir(filepath.Join(dir, "dir"), 0o755)
	os.WriteFile(filepath.Join(dir, "linked"), []byte("user's\n"), 0o644)
	os.Link(filepath.Join(dir, "linked"), filepath.Join(t.TempDir(), "second-name"))
	root, err := safefile.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, c := range []struct {
		what string
		err  error
		want string
	}{
		{"Sub(file)", sub(root, "file"), "is a regular file, not a directory"},
		{"Sub(dirlink)", sub(root, "dirlink"), "is a symbolic link to "},
		{"Sub(fifo)", sub(root, "fifo"), "is a named pipe (FIFO)"},
		{"Open(link)", open(root, "link", os.O_WRONLY|os.O_APPEND), "is a symbolic link to " + elsewhere},
		{"Open(fifo) for writing", open(root, "fifo", os.O_WRONLY|os.O_APPEND), "is a named pipe (FIFO)"},
		{"Open(fifo) for reading", open(root, "fifo", os.O_RDONLY), "is a named pipe (FIFO)"},
		{"Open(dir)", open(root, "dir", os.O_RDONLY), "is a directory"},
		{"Open(linked) for writing", open(root, "linked", os.O_WRONLY|os.O_APPEND), "with 2 names"},
		{"WriteFile(link)", root.WriteFile("link", []byte("x")), "is a symbolic link"},
		{"WriteFile(fifo)", root.WriteFile("fifo", []byte("x")), "is a named pipe (FIFO)"},
		{"Remove(link)", root.Remove("link"), "is a symbolic link"},
		{"Remove(dir)", root.Remove("dir"), "is a directory"},
	} {
		if !safefile.IsNotOurs(c.err) || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %v; want a NotOursError saying %q", c.what, c.err, c.want)
		}
	}
	for _, f := range []string{elsewhere, filepath.Join(dir, "file"), filepath.Join(dir, "linked")} {
		if b, _ := os.ReadFile(f); string(b) != "user's\n" {
			t.Errorf("%s changed: %q", f, b)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, "link")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link removed or replaced")
	}
}

// TestReadFileBound: a file over the bound is refused without being read.
func TestReadFileBound(t *testing.T) {
	dir := t.TempDir()
	os.Truncate(filepath.Join(dir, "big"), 0)
	f, _ := os.Create(filepath.Join(dir, "big"))
	f.Truncate(1 << 30) // sparse
	f.Close()
	root, _ := safefile.OpenRoot(dir)
	defer root.Close()
	_, err := root.ReadFile("big", 1<<20)
	var tb *safefile.TooBigError
	if !errors.As(err, &tb) || tb.Size != 1<<30 {
		t.Errorf("ReadFile of 1 GiB with a 1 MiB bound: %v", err)
	}
	if err := root.WriteFile("small", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if b, err := root.ReadFile("small", 2); err != nil || string(b) != "ok" {
		t.Errorf("ReadFile(small): %q, %v", b, err)
	}
}

func sub(d *safefile.Dir, name string) error {
	s, err := d.Sub(name, true)
	if err == nil {
		s.Close()
	}
	return err
}

func open(d *safefile.Dir, name string, flags int) error {
	f, err := d.Open(name, flags, 0o644)
	if err == nil {
		f.Close()
	}
	return err
}

// TestNames: the entries of a directory, without "." and "..", a symlink
// named as itself (never followed).
func TestNames(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.json"), nil, 0o644)
	os.Symlink("/etc", filepath.Join(dir, "link"))
	d, err := safefile.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names, err := d.Names()
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{"a.json", "link"}) {
		t.Errorf("Names = %q, %v", names, err)
	}
}
