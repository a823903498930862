package cgroup

import "testing"

func TestKernelAtLeast(t *testing.T) {
	for rel, want := range map[string]bool{"6.1.0-56-cloud-amd64": true, "5.7.0": true, "5.6.19": false, "4.19.0-arch": false, "5.10": true, "junk": false} {
		if got := kernelAtLeast(rel, 5, 7); got != want {
			t.Errorf("kernelAtLeast(%q, 5, 7) = %v", rel, got)
		}
	}
}
