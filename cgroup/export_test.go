package cgroup

// Gated makes d start commands at a gate and move them in, as it does on
// kernels without CLONE_INTO_CGROUP or under a seccomp filter.
func Gated(d *Direct) *Direct {
	g := *d
	g.cloneInto = false
	return &g
}
