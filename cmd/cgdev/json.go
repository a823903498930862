package main

import "github.com/cgdev/cgdev/launcher"

// processJSON is one process of tree --json (docs/json.md).
type processJSON struct {
	PID        int     `json:"pid"`
	PPID       int     `json:"ppid"`
	PGID       int     `json:"pgid"`
	SID        int     `json:"sid"`
	UID        int     `json:"uid"`
	Depth      int     `json:"depth"`
	Comm       string  `json:"comm"`
	State      string  `json:"state"`
	StartTicks uint64  `json:"start_ticks"`
	Threads    int     `json:"threads"`
	Service    string  `json:"service"`
	CPUPercent float64 `json:"cpu_percent"`
	RSS        uint64  `json:"rss"`
	Command    string  `json:"command"`
}

// treeJSON is tree's nodes in their documented JSON form.
func treeJSON(nodes []launcher.Node) []processJSON {
	out := make([]processJSON, len(nodes))
	for i, n := range nodes {
		out[i] = processJSON{
			PID: n.PID, PPID: n.PPID, PGID: n.PGID, SID: n.SID, UID: n.UID, Depth: n.Depth,
			Comm: n.Comm, State: string(rune(n.State)), StartTicks: n.StartTicks, Threads: n.Threads,
			Service: n.Service, CPUPercent: n.CPU, RSS: n.RSS, Command: n.Command,
		}
	}
	return out
}

// withEmptyLists is r for JSON: a list with nothing in it is [], never
// null, as docs/json.md promises.
func (r report) withEmptyLists() report {
	r.Controllers, r.V1Controllers = nonNil(r.Controllers), nonNil(r.V1Controllers)
	r.Limits, r.Advice, r.Checks = nonNil(r.Limits), nonNil(r.Advice), nonNil(r.Checks)
	return r
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
