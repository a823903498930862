package cgroup

// Offer returns the manager's cgroup and the controllers it can give its
// units ("" and nil when the manager does not say), as doctor reports them.
func (d *Systemd) Offer() (cgroup string, controllers []string) { return d.offered() }
