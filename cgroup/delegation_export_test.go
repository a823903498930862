package cgroup

// AskDelegation exposes the manager query of the delegation lookup.
func (h *Host) AskDelegation(unitCgroup string) Delegation { return h.askDelegation(unitCgroup) }
