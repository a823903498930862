package cgroup

// StartThenMove exposes the start-at-gate-then-move path, which this kernel
// (with clone3 CLONE_INTO_CGROUP) never takes by itself, to the tests.
var StartThenMove = startThenMove

// Gated makes d start commands at a gate and move them in, as it does on
// kernels without CLONE_INTO_CGROUP or under a seccomp filter.
func Gated(d *Direct) *Direct {
	g := *d
	g.cloneInto = false
	return &g
}
