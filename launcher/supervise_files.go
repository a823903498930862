package launcher

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// openFileWatch watches svc's watch paths; nil when it has none, or when
// inotify refuses (an event says why). Directories are watched recursively
// (inotify watches one directory each), new ones as they appear; ignored
// names are never descended into. The watch is in place when it returns, so
// that a change made once the service is reported started is seen; it lives
// as long as the service's watcher, across restarts, so that a change saved
// while the service restarts is not lost but restarts the new instance.
func (sv *supervisor) openFileWatch(svc *Service) *fsnotify.Watcher {
	if svc.Watch == nil {
		return nil
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		sv.p.event("%s: watch: %v", svc.Name, err)
		return nil
	}
	for _, root := range svc.Watch.Paths {
		if err := addTree(fw, root, svc.Watch.Ignore); err != nil {
			sv.p.event("%s: watch %s: %v", svc.Name, root, err)
		}
	}
	return fw
}

// watchFiles ends inst through triggers once a file under the service's
// watch paths has changed (created, written, removed, renamed) and no
// further change has come for the debounce period, as fw (openFileWatch)
// reports.
func (sv *supervisor) watchFiles(ctx context.Context, inst *instance, fw *fsnotify.Watcher, triggers chan<- trigger) {
	w := inst.svc.Watch
	var debounce <-chan time.Time
	var changed string
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-fw.Errors:
			if !ok {
				return
			}
			sv.p.event("%s: watch: %v", inst.svc.Name, err)
		case ev, ok := <-fw.Events:
			if !ok {
				return
			}
			if ignored(ev.Name, w.Paths, w.Ignore) || ev.Op == fsnotify.Chmod {
				continue
			}
			if ev.Op.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					addTree(fw, ev.Name, w.Ignore)
				}
			}
			changed = ev.Name
			debounce = time.After(w.Debounce)
		case <-debounce:
			rel, err := filepath.Rel(inst.svc.Dir, changed)
			if err != nil {
				rel = changed
			}
			sv.p.event("%s: %s changed; restarting", inst.svc.Name, rel)
			triggers <- trigger{reason: reasonFileChange}
			return
		}
	}
}

// addTree watches root and, when it is a directory, every directory under
// it whose name is not ignored.
func addTree(fw *fsnotify.Watcher, root string, ignore []string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished meanwhile, or unreadable: nothing to watch there
		}
		if path != root && ignored(path, []string{root}, ignore) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || path == root {
			return fw.Add(path)
		}
		return nil
	})
}

// ignored says whether a component of path below the watched root it is
// under matches a pattern.
func ignored(path string, roots, patterns []string) bool {
	for _, root := range roots {
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		for p := rel; p != "." && p != "/"; p = filepath.Dir(p) {
			for _, pat := range patterns {
				if ok, _ := filepath.Match(pat, filepath.Base(p)); ok {
					return true
				}
			}
		}
		return false
	}
	return false
}
