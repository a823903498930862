package cleanup

import "os"

// Command and MatchesCommand expose the orphan pattern test to the external
// tests, which check it against launcher's default patterns.
var (
	Command        = command
	MatchesCommand = matchesCommand
)

// ClassifyAfterMarker classifies pid as a full stop of project without
// patterns does, calling hook between reading the marker and confirming the
// process's identity.
func ClassifyAfterMarker(project string, pid int, hook func(pid int)) (Orphan, bool) {
	c := classifier{opt: StopOptions{Project: project}, skip: map[int]bool{}, uid: os.Getuid(),
		stopping: map[string]bool{}, afterMarker: hook}
	return c.classify(pid)
}

// Forgettable exposes forgettable for a stop of services (not a full stop).
func Forgettable(services []string, running map[string]bool) (gone, left []string) {
	return forgettable(services, nil, running)
}

// WithProcDir returns opt with the sweep listing processes in dir, not /proc.
func WithProcDir(opt StopOptions, dir string) StopOptions {
	opt.procDir = dir
	return opt
}
