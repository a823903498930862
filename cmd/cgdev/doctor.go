package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
)

// report is what `cgdev doctor` found, also its JSON form.
type report struct {
	Mode          cgroup.Mode        `json:"mode"`
	Cgroup2Mount  string             `json:"cgroup2_mount"`
	OwnCgroup     string             `json:"own_cgroup"`
	Base          string             `json:"base"`
	BaseWritable  bool               `json:"base_writable"`
	Controllers   []string           `json:"controllers"`
	V1Controllers []string           `json:"v1_controllers"`
	Systemd       cgroup.SystemdInfo `json:"systemd"`
	Driver        string             `json:"driver"`
	DriverWhy     string             `json:"driver_why"`
	DriverError   string             `json:"driver_error,omitempty"`
	Limits        []limitSupport     `json:"limits"`
	Advice        []string           `json:"advice"`
	// Delegation and Checks describe the environment: a systemd host's
	// delegated subtree, a container's cgroup namespace (doctor_checks.go).
	Delegation *cgroup.Delegation `json:"delegation,omitempty"`
	Checks     []check            `json:"checks"`
}

// limitSupport says whether one property can be enforced by the chosen driver.
type limitSupport struct {
	Property   string `json:"property"`
	Controller string `json:"controller"`
	Enforced   bool   `json:"enforced"`
	Why        string `json:"why,omitempty"`
	Fix        string `json:"fix,omitempty"`
}

func doctorCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "doctor [--json]",
		Short: "explain what this machine offers and which driver cgdev picks",
		Args:  noArgs,
	}
	asJSON := c.Flags().Bool("json", false, "print the findings as JSON (docs/json.md)")
	c.RunE = func(*cobra.Command, []string) error { return doctorCmd(g, asJSON) }
	return c
}

func doctorCmd(g *globals, asJSON *bool) error {
	h, err := cgroup.Detect()
	if err != nil {
		return err
	}
	r := diagnose(h, launcher.DriverName(g.driver, ""))
	if *asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r.withEmptyLists())
	}
	r.print(g.stdout)
	return nil
}

func diagnose(h *cgroup.Host, driverName string) report {
	r := report{
		Mode: h.Mode, Cgroup2Mount: h.Cgroup2Mount, OwnCgroup: h.OwnCgroup, Base: h.Base,
		BaseWritable: h.BaseWritable, Controllers: h.Controllers, V1Controllers: h.V1Controllers,
		Systemd: h.Systemd, Driver: driverName,
	}
	if driverName == "auto" {
		r.Driver, r.DriverWhy = launcher.AutoDriver(h)
		r.DriverWhy = "auto picks it: " + r.DriverWhy
	} else {
		r.DriverWhy = "chosen by --driver or $" + launcher.DriverEnv
	}
	drv, err := launcher.OpenDriver(r.Driver, h)
	if err != nil {
		r.DriverError = err.Error()
	} else {
		defer drv.Close()
	}
	for _, name := range cgroup.PropertyNames() {
		r.Limits = append(r.Limits, checkLimit(drv, name))
	}
	r.Advice = advice(h, r)
	r.Delegation = h.Delegation
	r.Checks = environmentChecks(h, systemdOffer(h, drv))
	return r
}

// systemdOffer asks the systemd manager cgdev would use (drv when it is the
// systemd driver) what it offers its units; nil when none answers.
func systemdOffer(h *cgroup.Host, drv cgroup.Driver) *managerOffer {
	s, ok := drv.(*cgroup.Systemd)
	if !ok {
		if reachable, _ := cgroup.SystemdReachable(h); !reachable {
			return nil
		}
		var err error
		if s, err = cgroup.NewSystemd(h); err != nil {
			return nil
		}
		defer s.Close()
	}
	cg, controllers := s.Offer()
	return &managerOffer{Manager: s.Manager(), Cgroup: cg, Controllers: controllers}
}

// checkLimit asks drv whether it can enforce the property name, with the
// limits table's sample value.
func checkLimit(drv cgroup.Driver, name string) limitSupport {
	l, _ := cgroup.Sample(name) // name comes from cgroup.PropertyNames
	req := l.Requirements()[0]
	s := limitSupport{Property: name, Controller: req.Controller, Enforced: true}
	if drv == nil {
		s.Enforced, s.Why = false, "no usable driver"
		return s
	}
	if err := drv.Check(&l); err != nil {
		s.Enforced, s.Why = false, err.Error()
		if u, ok := err.(*cgroup.UnsupportedError); ok && len(u.Missing) > 0 {
			s.Why, s.Fix = u.Missing[0].Reason, u.Missing[0].Fix
		}
	}
	return s
}

func advice(h *cgroup.Host, r report) []string {
	var a []string
	switch {
	case h.Cgroup2Mount == "":
		a = append(a, "No cgroup2 tree is mounted, so cgdev cannot group processes in the kernel. It falls back to process groups and environment markers, which catch most but not all escapes. Fix: boot with systemd.unified_cgroup_hierarchy=1, or mount cgroup2.")
	case !h.BaseWritable && h.Delegation == nil && !h.ReadOnly: // else a check says why
		a = append(a, fmt.Sprintf("This user may not create cgroups under %s. On a systemd machine use --driver systemd (systemd creates the cgroup for you); elsewhere ask for a delegated subtree (chown a cgroup directory to this user).", h.Base))
	}
	if h.Mode == cgroup.Hybrid && len(h.V1Controllers) > 0 {
		a = append(a, fmt.Sprintf("This kernel runs hybrid cgroups: the %s controllers are held by cgroup v1, so cgroup2 groups can track and kill processes but cannot limit memory, pids or CPU. Limits are refused rather than silently dropped; --ignore-unsupported runs without them. Fix: boot with cgroup_no_v1=all or systemd.unified_cgroup_hierarchy=1.",
			strings.Join(h.V1Controllers, ", ")))
	}
	if !h.Systemd.SystemBus && !h.Systemd.UserBus {
		a = append(a, "No systemd manager answers (no system bus, no user bus): the systemd driver is unavailable. That is fine where cgdev may write cgroups itself.")
	}
	if r.DriverError != "" {
		a = append(a, "The chosen driver cannot be used: "+r.DriverError)
	}
	return a
}

func (r report) print(w io.Writer) {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	fmt.Fprintf(w, "cgroup mode:        %s\n", r.Mode)
	fmt.Fprintf(w, "cgroup2 mount:      %s\n", orNone(r.Cgroup2Mount))
	fmt.Fprintf(w, "this process is in: %s\n", orNone(r.OwnCgroup))
	fmt.Fprintf(w, "cgdev's cgroups:    %s (may create: %s)\n", orNone(r.Base), yes(r.BaseWritable))
	fmt.Fprintf(w, "cgroup2 controllers available: %s\n", orNone(strings.Join(r.Controllers, " ")))
	fmt.Fprintf(w, "controllers held by cgroup v1: %s\n", orNone(strings.Join(r.V1Controllers, " ")))
	fmt.Fprintf(w, "systemd: PID 1 %s, system bus %s, user manager %s\n",
		yes(r.Systemd.Booted), yes(r.Systemd.SystemBus), yes(r.Systemd.UserBus))
	fmt.Fprintf(w, "\ndriver: %s (%s)\n", r.Driver, r.DriverWhy)
	if r.DriverError != "" {
		fmt.Fprintf(w, "  but it cannot be used: %s\n", r.DriverError)
	}
	fmt.Fprintln(w, "\nlimits:")
	for _, l := range r.Limits {
		if l.Enforced {
			fmt.Fprintf(w, "  %-14s enforced (%s controller)\n", l.Property, l.Controller)
		} else {
			fmt.Fprintf(w, "  %-14s REFUSED: %s\n", l.Property, l.Why)
		}
	}
	printChecks(w, r.Checks)
	if len(r.Advice) > 0 {
		fmt.Fprintln(w, "\nwhat to know:")
		for _, a := range r.Advice {
			fmt.Fprintf(w, "  - %s\n", a)
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
