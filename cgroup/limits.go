package cgroup

import (
	"fmt"
	"maps"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Limits are resource limits named and valued as systemd names them
// (systemd.resource-control(5)). The zero value sets no limit. Limits is a
// value: copies never share what Set changes.
type Limits struct {
	values map[string]int64 // by property name, in the property's own unit
}

// Infinity is the value of a limit set to "infinity".
const Infinity int64 = -1

// cpuPeriodUsec is the cpu.max period cgdev writes, the kernel's default.
const cpuPeriodUsec = 100000

// property is one settable limit. Everything cgdev knows about a limit is
// here: the table below is the only list of them. Parsing (-p and cgdev.yaml),
// the controller check, the cgroupfs values the direct driver writes, the
// OCI resources handed to containerd, the D-Bus properties of a systemd
// scope, doctor's list and the config keys are all derived from it.
type property struct {
	name       string    // systemd's name, as given to -p: MemoryMax
	key        string    // the cgdev.yaml key: memory_max
	controller string    // the cgroup2 controller that enforces it
	file       string    // the cgroup2 interface file it is written to
	value      valueKind // its syntax and valid range; values are stored in the kind's unit
	sample     string    // a valid value, for asking a driver about the property (doctor)

	// cgroupfs renders the file's content for v; nil: "max" for infinity, else v.
	cgroupfs func(v int64) string
	// dbus names the scope property and its uint64 value for v; nil: the
	// systemd name, infinity as UINT64_MAX.
	dbus func(v int64) (string, uint64)
	// oci sets v in the OCI resources and reports whether it did; nil or false:
	// the value travels in Unified[file], as the runtime spec prescribes for
	// cgroup2 files without a field of their own.
	oci func(r *specs.LinuxResources, v int64) bool
}

// properties is the table of every limit cgdev supports, in display order.
// Adding a limit is adding an entry (see docs/architecture.md).
var properties = []property{
	{
		name: "MemoryMax", key: "memory_max", controller: "memory", file: "memory.max",
		value: size{min: 1}, sample: "1G",
		oci: func(r *specs.LinuxResources, v int64) bool {
			if v == Infinity {
				return false // containerd would skip a negative limit; "max" goes in Unified
			}
			r.Memory = &specs.LinuxMemory{Limit: &v}
			return true
		},
	},
	{
		name: "MemoryHigh", key: "memory_high", controller: "memory", file: "memory.high",
		value: size{min: 1}, sample: "1G",
	},
	{
		name: "MemorySwapMax", key: "memory_swap_max", controller: "memory", file: "memory.swap.max",
		value: size{min: 0}, sample: "0",
	},
	{
		name: "TasksMax", key: "tasks_max", controller: "pids", file: "pids.max",
		// The kernel refuses a pids.max above PID_MAX_LIMIT (4194304).
		value: count{min: 1, max: 1 << 22, infinity: true}, sample: "100",
		oci: func(r *specs.LinuxResources, v int64) bool {
			r.Pids = &specs.LinuxPids{Limit: &v} // -1: containerd writes "max"
			return true
		},
	},
	{
		name: "CPUQuota", key: "cpu_quota", controller: "cpu", file: "cpu.max",
		value: cpuQuota{}, sample: "100%",
		cgroupfs: func(v int64) string { return fmt.Sprintf("%d %d", quotaUsec(v), cpuPeriodUsec) },
		// CPUQuota=150% is 1.5 s of CPU time per second of wall time.
		dbus: func(v int64) (string, uint64) { return "CPUQuotaPerSecUSec", uint64(v) * 100 },
		oci: func(r *specs.LinuxResources, v int64) bool {
			quota, period := quotaUsec(v), uint64(cpuPeriodUsec)
			r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
			return true
		},
	},
	{
		name: "CPUWeight", key: "cpu_weight", controller: "cpu", file: "cpu.weight",
		value: count{min: 1, max: 10000}, sample: "100",
	},
	{
		name: "IOWeight", key: "io_weight", controller: "io", file: "io.weight",
		value: count{min: 1, max: 10000}, sample: "100",
		cgroupfs: func(v int64) string { return "default " + strconv.FormatInt(v, 10) },
	},
}

// quotaUsec is the cpu.max quota, per cpuPeriodUsec, of a quota in
// hundredths of a percent of one CPU.
func quotaUsec(permyriad int64) int64 { return permyriad * cpuPeriodUsec / 10000 }

func (p *property) cgroupfsValue(v int64) string {
	if p.cgroupfs != nil {
		return p.cgroupfs(v)
	}
	if v == Infinity {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

func (p *property) dbusValue(v int64) (string, uint64) {
	if p.dbus != nil {
		return p.dbus(v)
	}
	if v == Infinity {
		return p.name, math.MaxUint64
	}
	return p.name, uint64(v)
}

// PropertyNames lists the properties cgdev accepts, in a stable order.
func PropertyNames() []string {
	names := make([]string, len(properties))
	for i, p := range properties {
		names[i] = p.name
	}
	return names
}

// ConfigKeys maps each cgdev.yaml limit key (memory_max) to its property (MemoryMax).
func ConfigKeys() map[string]string {
	keys := make(map[string]string, len(properties))
	for _, p := range properties {
		keys[p.key] = p.name
	}
	return keys
}

// Sample returns Limits with only the property name set, to a valid value:
// what to hand a driver's Check to learn whether it can enforce name.
func Sample(name string) (Limits, error) {
	var l Limits
	p, ok := lookupProperty(name)
	if !ok {
		return l, unknownProperty(name)
	}
	return l, l.SetProperty(p.name, p.sample)
}

func lookupProperty(name string) (*property, bool) {
	for i := range properties {
		if strings.EqualFold(properties[i].name, name) {
			return &properties[i], true
		}
	}
	return nil, false
}

func unknownProperty(name string) error {
	return fmt.Errorf("unknown property %q (known: %s)", name, strings.Join(PropertyNames(), ", "))
}

// Set parses "Name=Value" (systemd syntax) and stores it in l.
func (l *Limits) Set(assignment string) error {
	name, value, ok := strings.Cut(assignment, "=")
	if !ok {
		return fmt.Errorf("property %q: expected NAME=VALUE", assignment)
	}
	return l.SetProperty(strings.TrimSpace(name), strings.TrimSpace(value))
}

// SetProperty parses value for the property name (any case) and stores it in
// l. A value outside the property's range is refused, naming the range.
func (l *Limits) SetProperty(name, value string) error {
	p, ok := lookupProperty(name)
	if !ok {
		return unknownProperty(name)
	}
	v, err := p.value.parse(value)
	if err != nil {
		return fmt.Errorf("property %s: %w", p.name, err)
	}
	l.values = maps.Clone(l.values) // a copy of l keeps its own values
	if l.values == nil {
		l.values = map[string]int64{}
	}
	l.values[p.name] = v
	return nil
}

// Get returns the value of the property name in systemd syntax ("64M"), and
// whether it is set.
func (l *Limits) Get(name string) (string, bool) {
	p, ok := lookupProperty(name)
	if !ok {
		return "", false
	}
	v, ok := l.values[p.name]
	if !ok {
		return "", false
	}
	return p.value.format(v), true
}

// each calls f for every set property, in table order.
func (l *Limits) each(f func(p *property, v int64)) {
	for i := range properties {
		if v, ok := l.values[properties[i].name]; ok {
			f(&properties[i], v)
		}
	}
}

// Without returns a copy of l with the named properties unset.
func (l Limits) Without(names ...string) Limits {
	out := Limits{values: maps.Clone(l.values)}
	for _, n := range names {
		if p, ok := lookupProperty(n); ok {
			delete(out.values, p.name)
		}
	}
	return out
}

// Requirement is one limit that is set, with what enforces it.
type Requirement struct {
	Property   string // systemd name, e.g. MemoryMax
	Controller string // cgroup2 controller, e.g. memory
	File       string // cgroup2 interface file, e.g. memory.max
}

// Requirements lists the limits set in l with the controller each needs.
func (l *Limits) Requirements() []Requirement {
	var reqs []Requirement
	l.each(func(p *property, _ int64) {
		reqs = append(reqs, Requirement{p.name, p.controller, p.file})
	})
	return reqs
}

// Controllers returns the sorted, distinct controllers l needs.
func (l *Limits) Controllers() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range l.Requirements() {
		if !seen[r.Controller] {
			seen[r.Controller] = true
			out = append(out, r.Controller)
		}
	}
	sort.Strings(out)
	return out
}

// Empty reports whether no limit is set.
func (l *Limits) Empty() bool { return len(l.values) == 0 }

// String renders the set limits in systemd syntax, e.g. "MemoryMax=64M TasksMax=50".
func (l *Limits) String() string {
	var parts []string
	l.each(func(p *property, v int64) { parts = append(parts, p.name+"="+p.value.format(v)) })
	return strings.Join(parts, " ")
}

// Spec maps l onto the OCI runtime-spec resources. Values with no OCI field of
// their own (memory.high, memory.swap.max, cpu.weight, io.weight) travel in
// Unified under their cgroup2 file names, as the runtime spec prescribes.
func (l *Limits) Spec() *specs.LinuxResources {
	r := &specs.LinuxResources{Unified: map[string]string{}}
	l.each(func(p *property, v int64) {
		if p.oci == nil || !p.oci(r, v) {
			r.Unified[p.file] = p.cgroupfsValue(v)
		}
	})
	return r
}

// Cgroup2 converts l to containerd's cgroup2 resources plus the unified file
// values that package does not model.
func (l *Limits) Cgroup2() (*cgroup2.Resources, map[string]string) {
	spec := l.Spec()
	return cgroup2.ToResources(spec), spec.Unified
}

// busProperty is one limit as a systemd unit property: every limit cgdev
// supports is a uint64 ("t") on the bus.
type busProperty struct {
	Name  string
	Value uint64
}

// busProperties returns each set limit as the systemd unit property that
// carries it (org.freedesktop.systemd1(5)).
func (l *Limits) busProperties() []busProperty {
	var out []busProperty
	l.each(func(p *property, v int64) {
		name, value := p.dbusValue(v)
		out = append(out, busProperty{name, value})
	})
	return out
}
