package cgroup

import (
	"fmt"
	"math"

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

// limitProperties maps each limit l.Properties() lists onto its D-Bus form.
func limitProperties(l *Limits) ([]sd.Property, error) {
	var props []sd.Property
	add := func(name string, v uint64) {
		props = append(props, sd.Property{Name: name, Value: dbus.MakeVariant(v)})
	}
	for _, kv := range l.Properties() {
		switch kv[0] {
		case "MemoryMax":
			add("MemoryMax", limitU64(*l.MemoryMax))
		case "MemoryHigh":
			add("MemoryHigh", limitU64(*l.MemoryHigh))
		case "MemorySwapMax":
			add("MemorySwapMax", limitU64(*l.MemorySwapMax))
		case "TasksMax":
			add("TasksMax", limitU64(*l.TasksMax))
		case "CPUQuota":
			// CPUQuota=150% is 1.5 s of CPU time per second of wall time.
			add("CPUQuotaPerSecUSec", uint64(*l.CPUQuota)*10000)
		case "CPUWeight":
			add("CPUWeight", *l.CPUWeight)
		case "IOWeight":
			add("IOWeight", *l.IOWeight)
		default:
			return nil, fmt.Errorf("systemd driver: property %s=%s has no D-Bus mapping", kv[0], kv[1])
		}
	}
	return props, nil
}

// limitU64 maps cgdev's Infinity onto systemd's (UINT64_MAX).
func limitU64(n int64) uint64 {
	if n == Infinity {
		return math.MaxUint64
	}
	return uint64(n)
}
