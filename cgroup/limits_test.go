package cgroup

import (
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "512": 512, "1K": 1024, "64M": 64 << 20, "2G": 2 << 30, "1.5G": 3 << 29,
		"1T": 1 << 40, "64m": 64 << 20, "infinity": Infinity,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "12Q", "G", "-1M", "abc", "1e400", "150%", "0%"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) succeeded; want an error", bad)
		}
	}
}

func TestParseBytesPercentOfRAM(t *testing.T) {
	total, err := physicalMemory()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBytes("50%")
	if err != nil || got != total/2 {
		t.Fatalf("ParseBytes(50%%) = %d, %v; want %d", got, err, total/2)
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
	if w.MemoryMax != nil || w.TasksMax == nil || l.MemoryMax == nil {
		t.Errorf("Without(MemoryMax) = %s (original %s)", w.String(), l.String())
	}
}
