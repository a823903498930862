package launcher_test

import (
	"strings"
	"testing"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
)

// TestAutoDriverSystemd: auto picks systemd only where a manager answers and
// cgdev would otherwise write into systemd's tree (or could not write at all).
func TestAutoDriverSystemd(t *testing.T) {
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	if h.Cgroup2Mount == "" {
		t.Skip("no cgroup2 hierarchy mounted")
	}
	if !h.Systemd.Booted && h.BaseWritable {
		if name, why := launcher.AutoDriver(h); name != "direct" {
			t.Errorf("on this host (PID 1 not systemd, %s writable) auto = %s (%s); want direct", h.Base, name, why)
		}
	}
	if !h.Systemd.UserBus {
		t.Skip("no systemd user manager reachable; run under test/systemd/with-manager.sh")
	}
	inUserManager := *h
	inUserManager.Systemd.Booted = false
	inUserManager.Base = "/user.slice/user-1000.slice/user@1000.service/app.slice/cgdev"
	inUserManager.BaseWritable = true
	name, why := launcher.AutoDriver(&inUserManager)
	if name != "systemd" || !strings.Contains(why, "user@1000.service") && !strings.Contains(why, "app.slice") {
		t.Errorf("Base inside a user manager's tree: auto = %s (%s); want systemd, saying why", name, why)
	}
	readOnly := *h
	readOnly.Systemd.Booted = false
	readOnly.Base, readOnly.BaseWritable = "/box/cgdev", false
	if name, why := launcher.AutoDriver(&readOnly); name != "systemd" {
		t.Errorf("no writable cgroup but a manager: auto = %s (%s); want systemd", name, why)
	}
}
