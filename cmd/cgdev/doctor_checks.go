package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cgdev/cgdev/cgroup"
)

// check is one fact doctor examined about the environment cgdev runs in
// (a systemd desktop, a delegated unit, a container...), with the one-line
// fix when it stands in cgdev's way.
type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// environmentChecks runs the checks that apply to h; sdOffer is what the
// systemd manager cgdev would use offers its units (nil when none answers).
func environmentChecks(h *cgroup.Host, sd *managerOffer) []check {
	var cs []check
	for _, c := range []*check{cgroupfsCheck(h), namespaceCheck(), delegationCheck(h, sd != nil),
		managerControllersCheck(sd), internalProcessesCheck(h)} {
		if c != nil {
			cs = append(cs, *c)
		}
	}
	return cs
}

// managerOffer is the cgroup of the systemd manager cgdev would use and the
// controllers it can give its units.
type managerOffer struct {
	Manager     string
	Cgroup      string
	Controllers []string
}

// limitControllers are the controllers cgdev's limits need.
var limitControllers = []string{"cpu", "memory", "pids"}

func cgroupfsCheck(h *cgroup.Host) *check {
	if h.Cgroup2Mount == "" {
		return nil
	}
	if !h.ReadOnly {
		return &check{Name: "cgroupfs_writable", OK: true, Detail: h.Cgroup2Mount + " is mounted read-write"}
	}
	return &check{Name: "cgroupfs_writable", Detail: h.Cgroup2Mount + " is mounted read-only (a container's default): cgdev can read cgroups but create none, so it cannot use the direct driver and no limit can be enforced",
		Fix: "give the container a writable cgroup namespace: docker run --privileged (podman: --privileged), or in Kubernetes a privileged container"}
}

func namespaceCheck() *check {
	private, err := cgroup.PrivateCgroupNamespace()
	if err != nil {
		return &check{Name: "cgroup_namespace", Detail: err.Error()}
	}
	if !private {
		return &check{Name: "cgroup_namespace", OK: true, Detail: "the host's cgroup namespace"}
	}
	return &check{Name: "cgroup_namespace", OK: true, Detail: "a private cgroup namespace (a container): the cgroup tree starts at the container's own cgroup, and what cgdev creates stays within the container's limits"}
}

func delegationCheck(h *cgroup.Host, systemdUsable bool) *check {
	d := h.Delegation
	if d == nil {
		return nil
	}
	if d.Cgroup != "" {
		return &check{Name: "delegated_subtree", OK: true, Detail: "PID 1 is systemd, which owns the cgroup tree; " + d.How + ", so cgdev may create its groups in " + d.Cgroup}
	}
	c := &check{Name: "delegated_subtree", OK: systemdUsable,
		Detail: "PID 1 is systemd, which owns the cgroup tree, and " + d.How + ": cgdev writes into no cgroup systemd manages, so the direct driver is not available here"}
	if systemdUsable {
		c.Detail += "; the systemd driver asks the manager for a scope per group instead"
	} else {
		c.Fix = "run cgdev in a session with a user manager (its bus at $XDG_RUNTIME_DIR/bus), or inside a unit with Delegate=yes: systemd-run --scope -p Delegate=yes bash"
	}
	return c
}

func managerControllersCheck(sd *managerOffer) *check {
	if sd == nil || sd.Cgroup == "" {
		return nil
	}
	c := &check{Name: "delegated_controllers", OK: true,
		Detail: fmt.Sprintf("%s (cgroup %s) offers its units the controllers %s", sd.Manager, sd.Cgroup, orNone(strings.Join(sd.Controllers, " ")))}
	var missing []string
	for _, want := range limitControllers {
		if !contains(sd.Controllers, want) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		c.OK = false
		c.Detail += "; limits needing " + strings.Join(missing, ", ") + " are refused under the systemd driver"
		c.Fix = "delegate them to user managers: a drop-in for user@.service with [Service] Delegate=cpu memory pids (systemctl edit user@.service), then log in again"
	}
	return c
}

// internalProcessesCheck looks at the cgroup the direct driver creates its
// base in: when it holds processes and is not the hierarchy's real root,
// cgroup2 forbids enabling controllers for its children until they leave.
func internalProcessesCheck(h *cgroup.Host) *check {
	if h.Cgroup2Mount == "" || !h.BaseWritable {
		return nil
	}
	parent := filepath.Join(h.Cgroup2Mount, filepath.Dir(h.Base))
	procs, err := os.ReadFile(filepath.Join(parent, "cgroup.procs"))
	n := len(strings.Fields(string(procs)))
	private, _ := cgroup.PrivateCgroupNamespace()
	realRoot := filepath.Dir(h.Base) == "/" && !private
	if err != nil || n == 0 || realRoot {
		return nil
	}
	return &check{Name: "no_internal_processes", OK: true,
		Detail: fmt.Sprintf("%s holds %d process(es) (a container's PID 1, or the shell of a delegated unit): cgroup2 lets a cgroup with processes enable no controller for its children, so before a limit needs one cgdev moves them into %s/%s, as docker's dind does",
			parent, n, parent, cgroup.LeafName)}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func printChecks(w io.Writer, cs []check) {
	if len(cs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nenvironment:")
	for _, c := range cs {
		mark := "ok "
		if !c.OK {
			mark = "NO "
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", c.Fix)
		}
	}
}
