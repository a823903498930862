// Package sdvmtests proves cgdev where most users run it: a machine whose
// PID 1 is systemd (Debian 12, systemd 252, pure cgroup2), as a normal user
// with a user manager and bus, as root, inside Delegate=yes subtrees, inside
// Docker containers, and against a real compose project.
//
// The tests run only inside the systemd VM test bed (make vmtest-systemd,
// test/vm-systemd/sdvmtest.sh), which runs this test binary once per pass
// and sets CGDEV_SDVM_PASS to where the pass runs: dev (uid 1000 in a scope
// of its user manager, like a desktop terminal), dev-delegate (the same with
// Delegate=yes), root (the system service sdvm.service, like a CI job),
// root-delegate (a Delegate=yes system scope) or docker (root, with
// docker.service running). Some passes also set CGDEV_DRIVER, which cgdev
// obeys like --driver. Anywhere else every test skips.
//
// The binary doubles as the confined programs (vmkit.HelperEnv).
package sdvmtests
