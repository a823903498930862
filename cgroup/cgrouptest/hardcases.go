package cgrouptest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A HardCase is one way a process tries to get out of its group. Its Script,
// run by sh, starts the case in the background and appends a line "Name PID"
// to the file named by $HARDCASE_PIDS for each process of the case, once it
// runs. The same cases serve the drivers' conformance test (TestDriver) and
// the end-to-end stop tests over --driver.
type HardCase struct {
	Name   string
	Script string
	// IgnoresTERM: the case outlives the stop signal and needs the kill.
	IgnoresTERM bool
	// Untracked: the case clears its environment (no marker) and leaves the
	// process tree, group and session. Only a cgroup follows it: without one
	// (the fallback driver) it is invisible, the documented exception.
	Untracked bool
}

// PIDsEnv names the file the hard cases write their PIDs to.
const PIDsEnv = "HARDCASE_PIDS"

// HardCases are the ways out of a group cgdev is tested against.
var HardCases = []HardCase{
	{Name: "background", Script: `sleep 1000 & echo "background $!" >> "$HARDCASE_PIDS"`},
	{Name: "setsid", Script: `setsid sleep 1000 & echo "setsid $!" >> "$HARDCASE_PIDS"`},
	// A double fork: the sleep is re-parented to init (or a subreaper).
	{Name: "daemon", Script: `(sleep 1000 & echo "daemon $!" >> "$HARDCASE_PIDS") &`},
	// A double fork that also leaves the session: outside the leader's tree,
	// process group and session, only its marker (or a cgroup) finds it.
	{Name: "session-daemon", Script: `(setsid sh -c 'echo "session-daemon $$" >> "$HARDCASE_PIDS"; exec sleep 1000' &) &`},
	// argv[0] renamed: what a process title looks like.
	{Name: "renamed", Script: `bash -c 'exec -a vitest sleep 1000' & echo "renamed $!" >> "$HARDCASE_PIDS"`},
	// The kernel's name (comm) changed: a copy of sleep called esbuild.
	{Name: "esbuild", Script: `cp "$(command -v sleep)" "${HARDCASE_PIDS%/*}/esbuild"
"${HARDCASE_PIDS%/*}/esbuild" 1000 & echo "esbuild $!" >> "$HARDCASE_PIDS"`},
	// Stopped (SIGSTOP, Ctrl-Z): a stop signal stays pending until SIGCONT.
	{Name: "stopped", Script: `sleep 1000 & kill -STOP $!; echo "stopped $!" >> "$HARDCASE_PIDS"`},
	// Ignores SIGTERM, and so do the sleeps it runs.
	{Name: "stubborn", IgnoresTERM: true, Script: `sh -c 'trap "" TERM; echo "stubborn $$" >> "$HARDCASE_PIDS"; while :; do sleep 0.05; done' &`},
	// Forks all the time, also while it is being killed.
	{Name: "forker", IgnoresTERM: true, Script: `sh -c 'trap "" TERM; while :; do sleep 1000 & echo "forker $!" >> "$HARDCASE_PIDS"; sleep 0.02; done' &`},
	// Exec'd with an empty environment, so without the marker, but a child
	// of the leader.
	{Name: "envless", Script: `env -i sleep 1000 & echo "envless $!" >> "$HARDCASE_PIDS"`},
	{Name: "envless-escapee", Untracked: true, Script: `(setsid env -i /bin/sh -c 'echo "envless-escapee $$" >> "$0"; exec sleep 1000' "$HARDCASE_PIDS" &) &`},
}

// TreeScript is the hard cases as one process tree: sh runs every case,
// then becomes a sleep (exec) that leads them.
func TreeScript(cases []HardCase) string {
	var b strings.Builder
	for _, c := range cases {
		b.WriteString(c.Script + "\n")
	}
	b.WriteString("exec sleep 1000\n")
	return b.String()
}

// Config is a cgdev.yaml with one service per case, each writing its PIDs
// to pidsFile (relative to the project directory) and then waiting for its
// children (a double fork's service exits at once, leaving its daemon: a
// daemonizing command). The end-to-end and systemd VM suites start it.
func Config(cases []HardCase, pidsFile string) string {
	var b strings.Builder
	b.WriteString("grace: 400ms\nservices:\n")
	for _, c := range cases {
		fmt.Fprintf(&b, "  %s:\n    env: {%s: %s}\n    command: |\n", c.Name, PIDsEnv, pidsFile)
		for _, line := range strings.Split(c.Script+"\nwait", "\n") {
			fmt.Fprintf(&b, "      %s\n", line)
		}
	}
	return b.String()
}

// ReadPIDs reads what the hard cases wrote to file: each case's PIDs, in
// the order written.
func ReadPIDs(file string) map[string][]int {
	b, _ := os.ReadFile(file)
	pids := map[string][]int{}
	for _, line := range strings.Split(string(b), "\n") {
		name, n, ok := strings.Cut(line, " ")
		if pid, err := strconv.Atoi(n); ok && err == nil {
			pids[name] = append(pids[name], pid)
		}
	}
	return pids
}

// Started reports whether every case in cases has written its PID.
func Started(cases []HardCase, pids map[string][]int) bool {
	for _, c := range cases {
		if len(pids[c.Name]) == 0 {
			return false
		}
	}
	return true
}
