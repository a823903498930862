package cgroup

import "context"

// PretendControllers makes d.Check believe the manager offers cs, so that a
// test reaches the check that no pre-check can replace: the limit files in the
// scope's cgroup after the manager's job is done.
func (d *Systemd) PretendControllers(cs []string) {
	d.offered()
	d.offer.controllers = cs
}

// UnitState returns the manager's load and active state of a unit
// ("not-found", "inactive" once it is gone).
func (d *Systemd) UnitState(name string) (load, active string, err error) {
	st, err := d.unitStatus(context.Background(), name)
	return st.LoadState, st.ActiveState, err
}

// Manager-independent helpers, exposed for table tests.
var (
	UnitPattern  = unitPattern
	NameFromUnit = nameFromUnit
	LimitProps   = limitProperties
)
