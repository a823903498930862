package launcher

import (
	"os"
	"testing"
)

// TestRunClaim: a run name is held by one process at a time, released with
// its holder, and names its holder's PID.
func TestRunClaim(t *testing.T) {
	name := "claim-" + t.Name()
	c, err := claimRun(name)
	if err != nil || c == nil {
		t.Fatalf("claimRun = %v, %v", c, err)
	}
	c.serve()
	if again, err := claimRun(name); again != nil || err != nil {
		again.release()
		t.Fatalf("a held name was claimed again (%v)", err)
	}
	if pid := runOwner(name); pid != os.Getpid() {
		t.Errorf("runOwner = %d; want this process, %d", pid, os.Getpid())
	}
	c.release()
	if pid := runOwner(name); pid != 0 {
		t.Errorf("runOwner of a released name = %d; want 0", pid)
	}
	c, err = claimRun(name)
	if err != nil || c == nil {
		t.Fatalf("a released name cannot be claimed: %v", err)
	}
	c.release()
}
