// Package faults is cgdev's fault suite: cgdev run against what goes wrong
// on real machines (hostile project files, a full or read-only disk, …).
// Every iteration checks the same three things: no process of the project
// survives, no cgroup of it is left (testenv.Project.AssertNothingLeft), and
// no file of the user changed (userFiles, assertUnchanged).
package faults

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// userFiles describes every file under the roots that cgdev may not
// change: a hash of each regular file's content, the target of each
// symlink, the type of anything else. cgdev's own files (regular files in
// a real .cgdev/ directory, services.pids* in a real .pids/ directory) are
// left out: those it may write and remove.
func userFiles(t *testing.T, roots ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range roots {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(root, path)
			fi, err := os.Lstat(path)
			if err != nil {
				return nil
			}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(path)
				out[path] = "symlink " + target
			case fi.Mode().IsRegular():
				if cgdevsOwn(root, rel) {
					return nil
				}
				out[path] = "file " + hashFile(path)
			case fi.IsDir():
				if rel == ".cgdev" || rel == ".pids" || strings.HasPrefix(rel, ".cgdev/") {
					return nil // cgdev's directories: it may create them
				}
				out[path] = "dir"
			default:
				out[path] = fmt.Sprintf("%v", fi.Mode().Type())
			}
			return nil
		})
	}
	return out
}

// cgdevsOwn says whether rel (a regular file) is one cgdev may change.
func cgdevsOwn(root, rel string) bool {
	realDir := func(name string) bool {
		fi, err := os.Lstat(filepath.Join(root, name))
		return err == nil && fi.IsDir()
	}
	switch {
	case strings.HasPrefix(rel, ".cgdev/"):
		parent := filepath.Dir(rel)
		return realDir(".cgdev") && (parent == ".cgdev" || realDir(parent))
	case strings.HasPrefix(rel, ".pids/services.pids"):
		return realDir(".pids")
	}
	return false
}

func hashFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	var st syscall.Stat_t
	syscall.Fstat(int(f.Fd()), &st)
	if st.Size > 64<<20 { // a huge sparse file: its size and times stand for it
		return fmt.Sprintf("size %d mtime %d", st.Size, st.Mtim.Nano())
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// assertUnchanged compares two userFiles snapshots.
func assertUnchanged(t *testing.T, before, after map[string]string) {
	t.Helper()
	for path, was := range before {
		if now, ok := after[path]; !ok {
			t.Errorf("%s (%s) was removed", path, was)
		} else if now != was {
			t.Errorf("%s changed: %s, was %s", path, now, was)
		}
	}
	for path, now := range after {
		if _, ok := before[path]; !ok {
			t.Errorf("%s (%s) appeared outside cgdev's own files", path, now)
		}
	}
}
