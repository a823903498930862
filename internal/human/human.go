// Package human formats values for people reading cgdev's output. Every
// duration cgdev prints (readiness, uptime, stop times, grace periods) goes
// through Duration, so one format holds in every command.
package human

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration formats d in one of five shapes, by size:
//
//	under 1s    whole milliseconds      0ms, 41ms
//	under 1m    seconds, to the ms      2.004s, 1.2s, 3s
//	under 1h    minutes and seconds     1m05s
//	under 1d    hours and minutes       2h03m
//	otherwise   days and hours          3d04h
//
// The first two are what time.Duration.String prints for those values,
// except that nothing is shown below a millisecond. Negative durations are
// shown as zero: cgdev only ever prints elapsed times and periods.
func Duration(d time.Duration) string {
	d = max(d, 0)
	// Each shape takes the value rounded to its precision, so that 999.6ms
	// is "1s" and 59m59.6s is "1h00m", never "1000ms" or "60m00s".
	if r := d.Round(time.Millisecond); r < time.Second {
		return strconv.FormatInt(r.Milliseconds(), 10) + "ms"
	} else if r < time.Minute {
		s := strconv.FormatFloat(r.Seconds(), 'f', 3, 64)
		return strings.TrimSuffix(strings.TrimRight(s, "0"), ".") + "s"
	}
	if r := d.Round(time.Second); r < time.Hour {
		return fmt.Sprintf("%dm%02ds", r/time.Minute, r%time.Minute/time.Second)
	}
	if r := d.Round(time.Minute); r < 24*time.Hour {
		return fmt.Sprintf("%dh%02dm", r/time.Hour, r%time.Hour/time.Minute)
	}
	r := d.Round(time.Hour)
	return fmt.Sprintf("%dd%02dh", r/(24*time.Hour), r%(24*time.Hour)/time.Hour)
}
