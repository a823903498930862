package cgroup

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"strconv"
	"strings"
)

// valueKind is the syntax and range of one kind of limit value, in systemd's
// syntax (systemd.resource-control(5)). parse refuses what systemd refuses
// (hex, exponents, signs) and every value outside the range, naming the range;
// format renders a parsed value back so that parse(format(v)) == v.
type valueKind interface {
	parse(s string) (int64, error)
	format(v int64) string
}

// size is a byte count: a systemd size (512M, 1.5G, "1G 512M"), a percentage
// of physical memory (50%, 12.5%), or infinity. Stored in bytes.
type size struct{ min int64 }

func (k size) parse(s string) (int64, error) {
	if s == "infinity" {
		return Infinity, nil
	}
	n, err := k.bytes(s)
	if err != nil {
		return 0, err
	}
	if n < k.min {
		return 0, fmt.Errorf("%q is out of range: %s", s, k.rangeText())
	}
	return n, nil
}

func (k size) rangeText() string {
	return fmt.Sprintf("give %d to %d bytes (8E less one byte), a percentage of physical memory, or infinity", k.min, int64(math.MaxInt64))
}

// bytes parses s as a size or a percentage of physical memory.
func (k size) bytes(s string) (int64, error) {
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		p, err := parsePermyriad(pct)
		if err != nil || p > 10000 {
			return 0, fmt.Errorf("%q is not a percentage of physical memory between 0%% and 100%% (at most two decimals)", s)
		}
		total, err := physicalMemory()
		if err != nil {
			return 0, err
		}
		n := mulDiv(uint64(total), uint64(p), 10000)
		if n == 0 && p > 0 {
			return 0, fmt.Errorf("%q is less than one byte", s)
		}
		return int64(n), nil
	}
	n, nonzero, err := parseSize(s)
	switch {
	case errors.Is(err, errRange):
		return 0, fmt.Errorf("%q is too large: %s", s, k.rangeText())
	case err != nil:
		return 0, fmt.Errorf("%q is not a size (examples: 512M, 2G, 1.5G, 50%%, infinity)", s)
	case n == 0 && nonzero:
		return 0, fmt.Errorf("%q is less than one byte", s)
	}
	return int64(n), nil
}

func (size) format(v int64) string { return formatBytes(v) }

var errRange = errors.New("value out of range")

// sizeUnits are systemd's base-1024 size suffixes, largest first; "" is bytes.
var sizeUnits = []struct {
	suffix string
	factor uint64
}{{"E", 1 << 60}, {"P", 1 << 50}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}, {"", 1}}

// parseSize parses a size as systemd's parse_size(…, 1024, …) does: one or
// more terms of decimal digits, an optional fraction and a suffix, each
// suffix smaller than the one before ("1G 512M"; unlike systemd, terms must
// be separated by white space). Fractions of a byte are
// dropped; nonzero says whether any digit was not 0, so that a caller can
// refuse "0.5" instead of taking it for 0. The total must fit in an int64 (errRange otherwise).
func parseSize(s string) (n uint64, nonzero bool, err error) {
	const maxFraction = 18 // digits; 10^18 * 2^60 fits the 128-bit product below
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, false, errSyntax
	}
	next := 0 // the first unit the next term may use
	for rest != "" {
		if next > 0 {
			// A further term must be set apart: "1E3" is not 1 EiB and 3 bytes
			// here (systemd reads it so), since it looks like 1000.
			trimmed := strings.TrimLeft(rest, " \t\n\r")
			if trimmed == rest {
				return 0, false, errSyntax
			}
			rest = trimmed
		}
		whole := leadingDigits(rest)
		if whole == "" {
			return 0, false, errSyntax
		}
		rest = rest[len(whole):]
		var frac string
		if after, ok := strings.CutPrefix(rest, "."); ok {
			frac = leadingDigits(after)
			rest = after[len(frac):]
		}
		if len(frac) > maxFraction {
			return 0, false, errSyntax
		}
		rest = strings.TrimLeft(rest, " \t\n\r")
		u := next
		for ; u < len(sizeUnits); u++ {
			if hasUnit(rest, sizeUnits[u].suffix) {
				break
			}
		}
		if u == len(sizeUnits) {
			return 0, false, errSyntax
		}
		rest = rest[len(sizeUnits[u].suffix):]
		next = u + 1
		term, nz, err := sizeTerm(whole, frac, sizeUnits[u].factor)
		if err != nil {
			return 0, false, err
		}
		sum, carry := bits.Add64(n, term, 0)
		if carry != 0 || sum > math.MaxInt64 {
			return 0, false, errRange
		}
		n, nonzero = sum, nonzero || nz
	}
	return n, nonzero, nil
}

// hasUnit reports whether s starts with the unit suffix, upper-case as
// systemd writes it; k, m, g and t are also accepted in lower case, as cgdev
// always did (never e: "1e3" must not read as an exabyte and 3 bytes).
func hasUnit(s, suffix string) bool {
	if strings.HasPrefix(s, suffix) {
		return true
	}
	return strings.Contains("KMGT", suffix) && suffix != "" && strings.HasPrefix(s, strings.ToLower(suffix))
}

// sizeTerm is whole.frac × factor, rounded down, exactly.
func sizeTerm(whole, frac string, factor uint64) (n uint64, nonzero bool, err error) {
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, false, errRange
	}
	hi, n := bits.Mul64(w, factor)
	if hi != 0 {
		return 0, false, errRange
	}
	nonzero = w != 0
	if frac != "" {
		f, _ := strconv.ParseUint(frac, 10, 64) // at most 18 digits: fits
		scale := uint64(1)
		for range frac {
			scale *= 10
		}
		var carry uint64
		n, carry = bits.Add64(n, mulDiv(f, factor, scale), 0)
		if carry != 0 {
			return 0, false, errRange
		}
		nonzero = nonzero || f != 0
	}
	return n, nonzero, nil
}

// mulDiv is a×b/c rounded down, exactly, for a ≤ c or b ≤ c (so that the
// quotient fits in 64 bits).
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	q, _ := bits.Div64(hi, lo, c)
	return q
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

var errSyntax = errors.New("invalid syntax")

// parsePermyriad parses a non-negative decimal with at most two decimals
// ("12", "12.5", "12.34") into hundredths, as systemd's parse_permyriad reads
// the number before a "%": errSyntax for anything else, errRange above
// math.MaxInt32 hundredths, systemd's bound.
func parsePermyriad(s string) (int64, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || leadingDigits(whole) != whole || leadingDigits(frac) != frac || (hasDot && (frac == "" || len(frac) > 2)) {
		return 0, errSyntax
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt32/100 {
		return 0, errRange
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	if v := w*100 + f; v <= math.MaxInt32 {
		return v, nil
	}
	return 0, errRange
}

// count is a whole number in [min, max], or infinity where allowed.
type count struct {
	min, max int64
	infinity bool
}

func (k count) parse(s string) (int64, error) {
	if k.infinity && s == "infinity" {
		return Infinity, nil
	}
	if strings.HasSuffix(s, "%") {
		return 0, fmt.Errorf("%q: percentages are not supported; %s", s, k.rangeText())
	}
	if s == "" || leadingDigits(s) != s {
		return 0, fmt.Errorf("%q is not a whole number: %s", s, k.rangeText())
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < k.min || n > k.max {
		return 0, fmt.Errorf("%q is out of range: %s", s, k.rangeText())
	}
	return n, nil
}

func (k count) rangeText() string {
	text := fmt.Sprintf("give %d to %d", k.min, k.max)
	if k.infinity {
		text += ", or infinity"
	}
	return text
}

func (count) format(v int64) string {
	if v == Infinity {
		return "infinity"
	}
	return strconv.FormatInt(v, 10)
}

// cpuQuota is a percentage of one CPU with at most two decimals (150%,
// 12.5%), stored in hundredths of a percent. The kernel's smallest quota is
// 1 ms per period, so 1% at the 100 ms period cgdev writes; the largest is
// systemd's (INT_MAX hundredths).
type cpuQuota struct{}

const minCPUQuota = 100 // hundredths of a percent: 1%

func (cpuQuota) parse(s string) (int64, error) {
	num, ok := strings.CutSuffix(s, "%")
	v, err := parsePermyriad(num)
	if !ok || errors.Is(err, errSyntax) {
		return 0, fmt.Errorf("%q is not a percentage such as 50%%, 150%% or 12.5%%", s)
	}
	if err != nil || v < minCPUQuota {
		return 0, fmt.Errorf("%q is out of range: give 1%% (the kernel's smallest quota, 1 ms per 100 ms) to %s", s, cpuQuota{}.format(math.MaxInt32))
	}
	return v, nil
}

func (cpuQuota) format(v int64) string {
	s := strconv.FormatInt(v/100, 10)
	if f := v % 100; f != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%02d", f), "0")
	}
	return s + "%"
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

// formatBytes renders n in the largest exact binary unit (64M, 2G), or "infinity".
func formatBytes(n int64) string {
	if n == Infinity {
		return "infinity"
	}
	for _, u := range sizeUnits[:6] {
		if n >= int64(u.factor) && n%int64(u.factor) == 0 {
			return strconv.FormatInt(n/int64(u.factor), 10) + u.suffix
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
	return fmt.Sprintf("%.1f%c", float64(n)/float64(div), "KMGTPE"[exp])
}

// ParseSize parses a byte count outside any limit (a log cap, say) in the
// syntax of MemoryMax: a systemd size (512M, 1.5G) or infinity (Infinity).
// A percentage of physical memory is refused: it means nothing there.
func ParseSize(s string) (int64, error) {
	if strings.HasSuffix(s, "%") {
		return 0, fmt.Errorf("%q: give a size, not a percentage (examples: 20M, 1G, infinity)", s)
	}
	return size{}.parse(s)
}
