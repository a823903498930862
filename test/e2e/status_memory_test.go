package e2e_test

import (
	"strings"
	"testing"
)

// TestStatusMemoryEverywhere: where the kernel gives a group no memory
// accounting (the direct and systemd drivers on a hybrid host, the fallback
// driver), status shows the group's summed RSS marked as an estimate instead of
// n/a, in the table and in --json; with accounting, the kernel's figure.
func TestStatusMemoryEverywhere(t *testing.T) {
	const held = 20 << 20
	forEachDriver(t, func(t *testing.T, driver string) {
		p := newDriverProject(t, driver, `services:
  hog:
    command: 'x=$(head -c 20971520 /dev/zero | tr "\0" a); echo held; sleep 1000'
    ready: {log: held}
`)
		p.mustCgdev("start")
		hog := p.statusJSON()["hog"]
		if hog.MemoryCurrent == nil || *hog.MemoryCurrent < held {
			t.Fatalf("memory_current %v, want at least the %d bytes the service holds: %+v", hog.MemoryCurrent, held, hog)
		}
		out := p.mustCgdev("status")
		if hog.MemoryEstimate {
			if hog.MemoryPeak != nil || hog.MemoryNA == "" {
				t.Errorf("an estimate without memory_na, or with a peak: %+v", hog)
			}
			if !strings.Contains(out, " ~") || !strings.Contains(out, "~ estimate: the summed RSS") || !strings.Contains(out, hog.MemoryNA) {
				t.Errorf("status table does not mark the estimate:\n%s", out)
			}
			// The true reason: on a hybrid host, memory is cgroup v1's.
			if driver != "fallback" && p.host.BoundToV1("memory") && !strings.Contains(hog.MemoryNA, "bound to cgroup v1") {
				t.Errorf("memory_na %q on a hybrid host, want it to say the memory controller is bound to cgroup v1", hog.MemoryNA)
			}
		} else if driver == "fallback" || p.host.BoundToV1("memory") {
			t.Errorf("memory_estimate false where the kernel has no accounting for the group: %+v", hog)
		}
		p.mustCgdev("stop")
		p.assertNothingLeft()
	})
}
