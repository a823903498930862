package cgroup

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Limits are resource limits named and valued as systemd names them
// (systemd.resource-control(5)). A nil field means "not set".
type Limits struct {
	MemoryMax     *int64 // bytes; -1 = infinity
	MemoryHigh    *int64 // bytes; -1 = infinity
	MemorySwapMax *int64 // bytes; -1 = infinity
	TasksMax      *int64 // count; -1 = infinity
	CPUQuota      *int64 // percent of one CPU, e.g. 150
	CPUWeight     *uint64
	IOWeight      *uint64
}

// Infinity is the value of a limit set to "infinity".
const Infinity int64 = -1

// cpuPeriodUsec is the cpu.max period cgdev writes, the kernel's default.
const cpuPeriodUsec = 100000

// property describes one settable property: its systemd name, the cgroup2
// controller and file that enforce it, and how to parse and store a value.
type property struct {
	name       string
	controller string
	file       string
	set        func(l *Limits, value string) error
	isSet      func(l *Limits) bool
}

var properties = []property{
	{"MemoryMax", "memory", "memory.max", setBytes(func(l *Limits) **int64 { return &l.MemoryMax }), func(l *Limits) bool { return l.MemoryMax != nil }},
	{"MemoryHigh", "memory", "memory.high", setBytes(func(l *Limits) **int64 { return &l.MemoryHigh }), func(l *Limits) bool { return l.MemoryHigh != nil }},
	{"MemorySwapMax", "memory", "memory.swap.max", setBytes(func(l *Limits) **int64 { return &l.MemorySwapMax }), func(l *Limits) bool { return l.MemorySwapMax != nil }},
	{"TasksMax", "pids", "pids.max", setTasks, func(l *Limits) bool { return l.TasksMax != nil }},
	{"CPUQuota", "cpu", "cpu.max", setCPUQuota, func(l *Limits) bool { return l.CPUQuota != nil }},
	{"CPUWeight", "cpu", "cpu.weight", setWeight(func(l *Limits) **uint64 { return &l.CPUWeight }), func(l *Limits) bool { return l.CPUWeight != nil }},
	{"IOWeight", "io", "io.weight", setWeight(func(l *Limits) **uint64 { return &l.IOWeight }), func(l *Limits) bool { return l.IOWeight != nil }},
}

// PropertyNames lists the properties cgdev accepts, in a stable order.
func PropertyNames() []string {
	names := make([]string, len(properties))
	for i, p := range properties {
		names[i] = p.name
	}
	return names
}

func lookupProperty(name string) (property, bool) {
	for _, p := range properties {
		if strings.EqualFold(p.name, name) {
			return p, true
		}
	}
	return property{}, false
}

// Set parses "Name=Value" (systemd syntax) and stores it in l.
func (l *Limits) Set(assignment string) error {
	name, value, ok := strings.Cut(assignment, "=")
	if !ok {
		return fmt.Errorf("property %q: expected NAME=VALUE", assignment)
	}
	return l.SetProperty(strings.TrimSpace(name), strings.TrimSpace(value))
}

// SetProperty parses value for the property name and stores it in l.
func (l *Limits) SetProperty(name, value string) error {
	p, ok := lookupProperty(name)
	if !ok {
		return fmt.Errorf("unknown property %q (known: %s)", name, strings.Join(PropertyNames(), ", "))
	}
	if err := p.set(l, value); err != nil {
		return fmt.Errorf("property %s: %w", p.name, err)
	}
	return nil
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
	for _, p := range properties {
		if p.isSet(l) {
			reqs = append(reqs, Requirement{p.name, p.controller, p.file})
		}
	}
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
func (l *Limits) Empty() bool { return len(l.Requirements()) == 0 }

// String renders the set limits in systemd syntax, e.g. "MemoryMax=64M TasksMax=50".
func (l *Limits) String() string {
	var parts []string
	for _, kv := range l.Properties() {
		parts = append(parts, kv[0]+"="+kv[1])
	}
	return strings.Join(parts, " ")
}

// Properties returns each set limit as {systemd name, systemd value}.
func (l *Limits) Properties() [][2]string {
	var out [][2]string
	add := func(name string, v string) { out = append(out, [2]string{name, v}) }
	if l.MemoryMax != nil {
		add("MemoryMax", FormatBytes(*l.MemoryMax))
	}
	if l.MemoryHigh != nil {
		add("MemoryHigh", FormatBytes(*l.MemoryHigh))
	}
	if l.MemorySwapMax != nil {
		add("MemorySwapMax", FormatBytes(*l.MemorySwapMax))
	}
	if l.TasksMax != nil {
		add("TasksMax", formatCount(*l.TasksMax))
	}
	if l.CPUQuota != nil {
		add("CPUQuota", strconv.FormatInt(*l.CPUQuota, 10)+"%")
	}
	if l.CPUWeight != nil {
		add("CPUWeight", strconv.FormatUint(*l.CPUWeight, 10))
	}
	if l.IOWeight != nil {
		add("IOWeight", strconv.FormatUint(*l.IOWeight, 10))
	}
	return out
}

// Spec maps l onto the OCI runtime-spec resources. Values with no OCI field of
// their own (memory.high, memory.swap.max, cpu.weight, io.weight) travel in
// Unified under their cgroup2 file names, as the runtime spec prescribes.
func (l *Limits) Spec() *specs.LinuxResources {
	r := &specs.LinuxResources{Unified: map[string]string{}}
	if l.MemoryMax != nil {
		r.Memory = &specs.LinuxMemory{Limit: l.MemoryMax}
	}
	if l.MemoryHigh != nil {
		r.Unified["memory.high"] = cgroupBytes(*l.MemoryHigh)
	}
	if l.MemorySwapMax != nil {
		r.Unified["memory.swap.max"] = cgroupBytes(*l.MemorySwapMax)
	}
	if l.TasksMax != nil {
		r.Pids = &specs.LinuxPids{Limit: l.TasksMax}
	}
	if l.CPUQuota != nil {
		quota := *l.CPUQuota * cpuPeriodUsec / 100
		period := uint64(cpuPeriodUsec)
		r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if l.CPUWeight != nil {
		r.Unified["cpu.weight"] = strconv.FormatUint(*l.CPUWeight, 10)
	}
	if l.IOWeight != nil {
		r.Unified["io.weight"] = "default " + strconv.FormatUint(*l.IOWeight, 10)
	}
	return r
}

// Cgroup2 converts l to containerd's cgroup2 resources plus the unified file
// values that package does not model.
func (l *Limits) Cgroup2() (*cgroup2.Resources, map[string]string) {
	spec := l.Spec()
	res := cgroup2.ToResources(spec) // TasksMax=infinity (-1): cgroup2.Pids writes "max"
	if res.Memory != nil && res.Memory.Max != nil && *res.Memory.Max == Infinity {
		res.Memory.Max = nil
		spec.Unified["memory.max"] = "max"
	}
	return res, spec.Unified
}

func setBytes(field func(*Limits) **int64) func(*Limits, string) error {
	return func(l *Limits, v string) error {
		n, err := ParseBytes(v)
		if err != nil {
			return err
		}
		*field(l) = &n
		return nil
	}
}

func setTasks(l *Limits, v string) error {
	if v == "infinity" {
		n := Infinity
		l.TasksMax = &n
		return nil
	}
	if strings.HasSuffix(v, "%") {
		return fmt.Errorf("%q: percentages of the kernel's pid limit are not supported; give a count", v)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("%q is not a positive count or \"infinity\"", v)
	}
	l.TasksMax = &n
	return nil
}

func setCPUQuota(l *Limits, v string) error {
	num, ok := strings.CutSuffix(v, "%")
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || n <= 0 {
		return fmt.Errorf("%q is not a percentage such as 50%% or 150%%", v)
	}
	l.CPUQuota = &n
	return nil
}

func setWeight(field func(*Limits) **uint64) func(*Limits, string) error {
	return func(l *Limits, v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 || n > 10000 {
			return fmt.Errorf("%q is not a weight between 1 and 10000", v)
		}
		*field(l) = &n
		return nil
	}
}

// ParseBytes parses a systemd byte size: a number with an optional K, M, G or T
// suffix (base 1024), "infinity", or a percentage of physical memory.
func ParseBytes(v string) (int64, error) {
	if v == "infinity" {
		return Infinity, nil
	}
	if pct, ok := strings.CutSuffix(v, "%"); ok {
		return percentOfRAM(pct)
	}
	num, mult := v, float64(1)
	if num != "" {
		switch strings.ToUpper(num[len(num)-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		case "T":
			mult = 1 << 40
		}
		if mult != 1 {
			num = num[:len(num)-1]
		} else if strings.EqualFold(num[len(num)-1:], "B") {
			num = num[:len(num)-1]
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*mult > math.MaxInt64 {
		return 0, fmt.Errorf("%q is not a size (examples: 512M, 2G, 1.5G, 50%%, infinity)", v)
	}
	return int64(f * mult), nil
}

func percentOfRAM(pct string) (int64, error) {
	p, err := strconv.ParseFloat(pct, 64)
	if err != nil || p <= 0 || p > 100 {
		return 0, fmt.Errorf("%q is not a percentage between 0 and 100", pct+"%")
	}
	total, err := physicalMemory()
	if err != nil {
		return 0, err
	}
	return int64(float64(total) * p / 100), nil
}

func physicalMemory() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("reading physical memory size: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				break
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no MemTotal in /proc/meminfo")
}

// FormatBytes renders n in the largest exact binary unit (64M, 2G), or "infinity".
func FormatBytes(n int64) string {
	if n == Infinity {
		return "infinity"
	}
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// HumanBytes renders n approximately, e.g. "66.2M".
func HumanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%c", float64(n)/float64(div), "KMGT"[exp])
}

func formatCount(n int64) string {
	if n == Infinity {
		return "infinity"
	}
	return strconv.FormatInt(n, 10)
}

func cgroupBytes(n int64) string {
	if n == Infinity {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}
