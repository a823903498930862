package cgroup

import (
	"math"
	"strings"
	"testing"
)

// The fuzz targets of the limit parsers. `make fuzz` runs each for
// $FUZZTIME; `go test` runs their seeds (f.Add and testdata/fuzz) as tests.
// Each checks what must hold for every input: no panic, a value in the
// property's range, and parse(format(v)) == v, so that what cgdev shows is
// what it enforces.

func FuzzSize(f *testing.F) {
	for _, s := range []string{"512M", "1.5G", "1G 512M", "infinity", "50%", "12.34%", "0", "0.5", "9223372036854775807",
		"8388608T", "0x1p63", "1e-300%", "1e3", "7E", "0.000000000000000001E", "1.", " 1k "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range []size{{min: 0}, {min: 1}} {
			v, err := k.parse(s)
			if err != nil {
				continue
			}
			if v != Infinity && v < k.min {
				t.Fatalf("size{%d}.parse(%q) = %d: below the minimum", k.min, s, v)
			}
			back, err := k.parse(k.format(v))
			if err != nil || back != v {
				t.Fatalf("size.parse(%q) = %d renders as %q, which parses as %d, %v", s, v, k.format(v), back, err)
			}
		}
	})
}

func FuzzCPUQuota(f *testing.F) {
	for _, s := range []string{"50%", "150%", "12.5%", "1.05%", "0.5%", "184467440737096%", "21474836.47%", "50", "1e2%", "%", "-1%", "1.%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := cpuQuota{}.parse(s)
		if err != nil {
			return
		}
		if v < minCPUQuota || v > math.MaxInt32 {
			t.Fatalf("cpuQuota.parse(%q) = %d: out of range", s, v)
		}
		if back, err := (cpuQuota{}).parse(cpuQuota{}.format(v)); err != nil || back != v {
			t.Fatalf("cpuQuota.parse(%q) = %d renders as %q, which parses as %d, %v", s, v, cpuQuota{}.format(v), back, err)
		}
		if q := quotaUsec(v); q < 1000 || q > 1<<44 {
			t.Fatalf("cpuQuota.parse(%q): cpu.max quota %d µs outside what the kernel takes", s, q)
		}
	})
}

func FuzzCount(f *testing.F) {
	for _, s := range []string{"50", "infinity", "0", "4194305", "-3", "+5", "50%", "0x10", "99999999999999999999", "010"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range []count{{min: 1, max: 1 << 22, infinity: true}, {min: 1, max: 10000}} {
			v, err := k.parse(s)
			if err != nil {
				continue
			}
			if (v != Infinity || !k.infinity) && (v < k.min || v > k.max) {
				t.Fatalf("%+v.parse(%q) = %d: out of range", k, s, v)
			}
			if back, err := k.parse(k.format(v)); err != nil || back != v {
				t.Fatalf("%+v.parse(%q) = %d renders as %q, which parses as %d, %v", k, s, v, k.format(v), back, err)
			}
		}
	})
}

// FuzzLimitsSet drives the whole table through -p's syntax: whatever Set
// accepts renders (String) as assignments that Set accepts again, to the
// same limits, and maps onto the OCI resources and D-Bus without a panic.
func FuzzLimitsSet(f *testing.F) {
	for _, s := range []string{"MemoryMax=64M", "memoryhigh=48M", "TasksMax=infinity", "CPUQuota=150%", "CPUWeight=200",
		"IOWeight=10", "MemorySwapMax=0", "Foo=1", "MemoryMax", "=", "CPUQuota = 12.5% "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var l Limits
		if err := l.Set(s); err != nil {
			return
		}
		var again Limits
		for _, a := range strings.Fields(l.String()) {
			if err := again.Set(a); err != nil {
				t.Fatalf("Set(%q) gave %s, and Set(%q) fails: %v", s, l.String(), a, err)
			}
		}
		if again.String() != l.String() {
			t.Fatalf("Set(%q) gave %s; rendered and set again: %s", s, l.String(), again.String())
		}
		l.Cgroup2()
		l.busProperties()
	})
}
