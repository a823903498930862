package human

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0ms"},
		{-time.Second, "0ms"},
		{400 * time.Microsecond, "0ms"},
		{41*time.Millisecond + 400*time.Microsecond, "41ms"},
		{999 * time.Millisecond, "999ms"},
		{999600 * time.Microsecond, "1s"},
		{time.Second, "1s"},
		{2004 * time.Millisecond, "2.004s"},
		{1200 * time.Millisecond, "1.2s"},
		{59999 * time.Millisecond, "59.999s"},
		{time.Minute, "1m00s"},
		{65 * time.Second, "1m05s"},
		{59*time.Minute + 59*time.Second, "59m59s"},
		{59*time.Minute + 59*time.Second + 600*time.Millisecond, "1h00m"},
		{2*time.Hour + 3*time.Minute + 10*time.Second, "2h03m"},
		{3*24*time.Hour + 4*time.Hour + 10*time.Minute, "3d04h"},
	} {
		if got := Duration(c.d); got != c.want {
			t.Errorf("Duration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}
