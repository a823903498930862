package cgroup

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/containerd/cgroups/v3/cgroup2"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "512": 512, "1K": 1024, "64M": 64 << 20, "2G": 2 << 30, "1.5G": 3 << 29,
		"1T": 1 << 40, "64m": 64 << 20, "1P": 1 << 50, "7E": 7 << 60, "100B": 100,
		"1G 512M": 3 << 29, "1 G": 1 << 30, "1.5": 1, "0.0": 0, "010K": 10 << 10,
		"9223372036854775807": math.MaxInt64, "8191P 1023T": (8191 << 50) + (1023 << 40),
		"0.000000000000000001E": 1, "1.": 1, " 1G ": 1 << 30, "1g": 1 << 30, "1k": 1024, "1t": 1 << 40,
	} {
		got, err := size{}.parse(in)
		if err != nil || got != want {
			t.Errorf("size.parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{
		"", "12Q", "G", "-1M", "abc", "1e400", "1e3", "0x10", "0x1p63", "+1", ".5", "1e", "1p", "1b", "1E3", "1G512M", "1..5",
		"150%", "1M 1G", "1M 2M", "1 2", "1.0000000000000000000001K",
		"9223372036854775808", "8388608T", "8E", "18446744073709551616", "99999999999999999999",
		"NaN", "Inf", "infinite", "1_000",
	} {
		if v, err := (size{}).parse(bad); err == nil {
			t.Errorf("size.parse(%q) = %d; want an error", bad, v)
		}
	}
}

func TestParseSizePercentOfRAM(t *testing.T) {
	total, err := physicalMemory()
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]int64{"50%": total / 2, "100%": total, "12.5%": total / 8, "0%": 0} {
		got, err := size{}.parse(in)
		if err != nil || got != want {
			t.Errorf("size.parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"100.01%", "150%", "1e-300%", "0.001%", "-1%", "%", "1.%", "50 %"} {
		if v, err := (size{}).parse(bad); err == nil {
			t.Errorf("size.parse(%q) = %d; want an error", bad, v)
		}
	}
}

// TestOverflowingValuesRefused: sizes and quotas that used to wrap around
// (a negative MemoryMax, CPUQuota of a fraction of a percent) or round to
// nothing (MemoryMax 0) are refused, each naming the valid range (issue 9,
// item 11).
func TestOverflowingValuesRefused(t *testing.T) {
	for in, want := range map[string]string{
		"MemoryMax=9223372036854775808":     "give 1 to 9223372036854775807 bytes",
		"MemoryMax=8388608T":                "give 1 to 9223372036854775807 bytes",
		"MemoryMax=0x1p63":                  "is not a size",
		"MemoryMax=1e3":                     "is not a size",
		"MemoryMax=0.5":                     "less than one byte",
		"MemoryMax=1e-300%":                 "is not a percentage of physical memory",
		"MemoryMax=0":                       "give 1 to",
		"MemoryHigh=0":                      "give 1 to",
		"MemorySwapMax=0.1":                 "less than one byte",
		"CPUQuota=184467440737096%":         "give 1% (the kernel's smallest quota, 1 ms per 100 ms) to 21474836.47%",
		"CPUQuota=21474836.48%":             "to 21474836.47%",
		"CPUQuota=0.5%":                     "give 1%",
		"CPUQuota=0%":                       "give 1%",
		"CPUQuota=1e2%":                     "is not a percentage",
		"CPUQuota=50":                       "is not a percentage",
		"TasksMax=0":                        "give 1 to 4194304, or infinity",
		"TasksMax=4194305":                  "give 1 to 4194304, or infinity",
		"TasksMax=99999999999999999999":     "give 1 to 4194304, or infinity",
		"TasksMax=-3":                       "is not a whole number",
		"TasksMax=50%":                      "percentages are not supported",
		"CPUWeight=0":                       "give 1 to 10000",
		"CPUWeight=infinity":                "is not a whole number: give 1 to 10000",
		"IOWeight=10001":                    "give 1 to 10000",
		"IOWeight=0x10":                     "is not a whole number",
		"MemoryMax=18446744073709551615":    "give 1 to 9223372036854775807 bytes",
		"MemorySwapMax=9223372036854775808": "give 0 to 9223372036854775807 bytes",
	} {
		var l Limits
		err := l.Set(in)
		name, _, _ := strings.Cut(in, "=")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "property "+name+": ") {
			t.Errorf("Set(%q) = %v (limits now %s); want an error of property %s containing %q", in, err, l.String(), name, want)
		}
	}
	var l Limits
	if err := l.Set("MemoryMax=9223372036854775807"); err != nil || l.String() != "MemoryMax=9223372036854775807" {
		t.Errorf("the largest MemoryMax: %v, %s", err, l.String())
	}
}

func TestCPUQuotaDecimals(t *testing.T) {
	for in, want := range map[string]string{
		"CPUQuota=150%": "150%", "CPUQuota=12.5%": "12.5%", "CPUQuota=12.34%": "12.34%", "CPUQuota=1%": "1%",
		"CPUQuota=1.05%": "1.05%", "CPUQuota=21474836.47%": "21474836.47%",
	} {
		var l Limits
		if err := l.Set(in); err != nil {
			t.Errorf("Set(%q): %v", in, err)
			continue
		}
		if got, _ := l.Get("CPUQuota"); got != want {
			t.Errorf("Set(%q): Get = %q; want %q", in, got, want)
		}
	}
	var l Limits
	l.Set("CPUQuota=12.5%")
	if res, _ := l.Cgroup2(); string(res.CPU.Max) != "12500 100000" {
		t.Errorf("CPUQuota=12.5%%: cpu.max %q", res.CPU.Max)
	}
}

func TestLimitsSetAndRender(t *testing.T) {
	var l Limits
	for _, p := range []string{"MemoryMax=64M", "memoryhigh=48M", "TasksMax=50", "CPUQuota=150%", "CPUWeight=200", "IOWeight=10", "MemorySwapMax=0"} {
		if err := l.Set(p); err != nil {
			t.Fatalf("Set(%q): %v", p, err)
		}
	}
	want := "MemoryMax=64M MemoryHigh=48M MemorySwapMax=0 TasksMax=50 CPUQuota=150% CPUWeight=200 IOWeight=10"
	if got := l.String(); got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	if got := strings.Join(l.Controllers(), " "); got != "cpu io memory pids" {
		t.Errorf("Controllers() = %q", got)
	}
	spec := l.Spec()
	if *spec.Memory.Limit != 64<<20 || *spec.Pids.Limit != 50 || *spec.CPU.Quota != 150000 || *spec.CPU.Period != 100000 {
		t.Errorf("Spec() = %+v", spec)
	}
	if spec.Unified["memory.high"] != "50331648" || spec.Unified["cpu.weight"] != "200" || spec.Unified["memory.swap.max"] != "0" {
		t.Errorf("Spec().Unified = %v", spec.Unified)
	}
	res, unified := l.Cgroup2()
	if res.CPU == nil || string(res.CPU.Max) != "150000 100000" {
		t.Errorf("Cgroup2() cpu.max = %+v", res.CPU)
	}
	if unified["io.weight"] != "default 10" {
		t.Errorf("Cgroup2() io.weight = %q", unified["io.weight"])
	}
}

func TestLimitsInfinity(t *testing.T) {
	var l Limits
	if err := l.Set("MemoryMax=infinity"); err != nil {
		t.Fatal(err)
	}
	if err := l.Set("TasksMax=infinity"); err != nil {
		t.Fatal(err)
	}
	res, unified := l.Cgroup2()
	if unified["memory.max"] != "max" || (res.Memory != nil && res.Memory.Max != nil) {
		t.Errorf("MemoryMax=infinity must write memory.max=max, got %v / %+v", unified, res.Memory)
	}
	if res.Pids == nil || res.Pids.Max >= 0 {
		t.Errorf("TasksMax=infinity must write pids.max=max, got %+v", res.Pids)
	}
	if l.String() != "MemoryMax=infinity TasksMax=infinity" {
		t.Errorf("String() = %s", l.String())
	}
}

func TestLimitsErrorsNameTheProperty(t *testing.T) {
	for in, want := range map[string]string{
		"Foo=1":           `unknown property "Foo"`,
		"MemoryMax":       "expected NAME=VALUE",
		"MemoryMax=12Q":   "property MemoryMax:",
		"TasksMax=-3":     "property TasksMax:",
		"CPUQuota=50":     "property CPUQuota:",
		"CPUWeight=0":     "property CPUWeight:",
		"IOWeight=10001":  "property IOWeight:",
		"MemoryHigh=lots": "property MemoryHigh:",
	} {
		var l Limits
		err := l.Set(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Set(%q) = %v; want an error containing %q", in, err, want)
		}
	}
}

func TestWithout(t *testing.T) {
	var l Limits
	l.Set("MemoryMax=1G")
	l.Set("TasksMax=10")
	w := l.Without("MemoryMax")
	_, wMem := w.Get("MemoryMax")
	_, wTasks := w.Get("TasksMax")
	_, lMem := l.Get("MemoryMax")
	if wMem || !wTasks || !lMem {
		t.Errorf("Without(MemoryMax) = %s (original %s)", w.String(), l.String())
	}
}

// TestLimitsAreValues: a copy of Limits never sees what Set does to another.
func TestLimitsAreValues(t *testing.T) {
	var a Limits
	a.Set("MemoryMax=1G")
	b := a
	b.Set("MemoryMax=2G")
	b.Set("TasksMax=5")
	if a.String() != "MemoryMax=1G" || b.String() != "MemoryMax=2G TasksMax=5" {
		t.Errorf("a = %s, b = %s", a.String(), b.String())
	}
}

// TestPropertyTable checks every entry of the table on its own, so that a
// new limit is held to the same contract as the seven before it: a unique
// name and key, a sample that parses and renders back, a controller and file
// that agree, a cgroupfs value that containerd writes the same way when the
// property travels in a typed OCI field, and a D-Bus property.
func TestPropertyTable(t *testing.T) {
	if got := strings.Join(PropertyNames(), " "); got != "MemoryMax MemoryHigh MemorySwapMax TasksMax CPUQuota CPUWeight IOWeight" {
		t.Errorf("PropertyNames() = %s", got)
	}
	wantKeys := map[string]string{
		"memory_max": "MemoryMax", "memory_high": "MemoryHigh", "memory_swap_max": "MemorySwapMax",
		"tasks_max": "TasksMax", "cpu_quota": "CPUQuota", "cpu_weight": "CPUWeight", "io_weight": "IOWeight",
	}
	if got := ConfigKeys(); fmt.Sprint(got) != fmt.Sprint(wantKeys) {
		t.Errorf("ConfigKeys() = %v; want %v", got, wantKeys)
	}
	names, files := map[string]bool{}, map[string]bool{}
	for _, p := range properties {
		t.Run(p.name, func(t *testing.T) {
			if names[strings.ToLower(p.name)] || files[p.file] {
				t.Errorf("name or file given twice")
			}
			names[strings.ToLower(p.name)], files[p.file] = true, true
			if !strings.HasPrefix(p.file, p.controller+".") {
				t.Errorf("file %s is not a file of controller %s", p.file, p.controller)
			}
			l, err := Sample(p.name)
			if err != nil {
				t.Fatalf("sample %q: %v", p.sample, err)
			}
			if l.String() != p.name+"="+p.sample {
				t.Errorf("sample renders as %s", l.String())
			}
			req := l.Requirements()
			if len(req) != 1 || req[0] != (Requirement{p.name, p.controller, p.file}) {
				t.Errorf("Requirements() = %v", req)
			}
			v := l.values[p.name]
			for _, value := range []int64{v, Infinity} {
				if value == Infinity {
					if _, err := p.value.parse("infinity"); err != nil {
						continue
					}
				}
				one := Limits{values: map[string]int64{p.name: value}}
				res, unified := one.Cgroup2()
				files := containerdFiles(res)
				for f, s := range unified {
					files[f] = s
				}
				if len(files) != 1 || files[p.file] != p.cgroupfsValue(value) {
					t.Errorf("value %d: cgroupfs files %v; want only %s=%q", value, files, p.file, p.cgroupfsValue(value))
				}
				bus := one.busProperties()
				if len(bus) != 1 || bus[0].Name == "" {
					t.Errorf("value %d: D-Bus properties %v", value, bus)
				}
			}
		})
	}
}

// containerdFiles renders what containerd's cgroup2 manager would write for
// res, file by file. cgroup2.Value keeps its fields to itself, so they are
// read through fmt's rendering of the struct: "{memory.max 67108864}".
func containerdFiles(res *cgroup2.Resources) map[string]string {
	out := map[string]string{}
	for _, v := range res.Values() {
		s := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprint(v), "{"), "}")
		file, value, _ := strings.Cut(s, " ")
		out[file] = value
	}
	return out
}

func TestSampleUnknown(t *testing.T) {
	if _, err := Sample("Foo"); err == nil {
		t.Error("Sample(Foo) succeeded")
	}
	keys := make([]string, 0)
	for k := range ConfigKeys() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) != len(properties) {
		t.Errorf("config keys %v", keys)
	}
}
