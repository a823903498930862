package cgroup

import (
	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// scopeProperties returns the properties of a transient scope, but for its
// PIDs: Description, Delegate=yes (the command may make sub-cgroups),
// OOMPolicy=stop and a failed scope kept until cgdev resets it (so that an
// OOM kill stays known: systemd_ended.go), and each limit of l in the D-Bus
// type systemd expects (systemd.resource-control(5), org.freedesktop.systemd1(5)).
// A limit without a mapping is an error, never dropped.
func scopeProperties(description string, l *Limits) ([]sd.Property, error) {
	props := []sd.Property{
		sd.PropDescription(description),
		{Name: "Delegate", Value: dbus.MakeVariant(true)},
		{Name: "OOMPolicy", Value: dbus.MakeVariant("stop")},
		{Name: "CollectMode", Value: dbus.MakeVariant("inactive")},
	}
	limits, err := limitProperties(l)
	if err != nil {
		return nil, err
	}
	return append(props, limits...), nil
}

// limitProperties returns each limit of l as the scope property that carries
// it, in the D-Bus type systemd expects (every one a uint64). The mapping is
// the limits table's (limits.go), so no limit can lack one.
func limitProperties(l *Limits) ([]sd.Property, error) {
	var props []sd.Property
	for _, p := range l.busProperties() {
		props = append(props, sd.Property{Name: p.Name, Value: dbus.MakeVariant(p.Value)})
	}
	return props, nil
}
