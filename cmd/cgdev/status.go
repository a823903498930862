package main

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
)

func statusCommand(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status [SVC...] [--json]",
		Short: "show each service's state, main PID, processes, memory, CPU, uptime and readiness",
		Long: `Show each service's state (running when its group holds processes), main PID,
number of processes, memory current and peak, CPU % (the group's CPU time over
its uptime: 100 = one core), uptime and readiness, in the config's order; then
any group still running for a service since removed from the config.

Exit status 0 when every configured service shown runs (or, a oneshot,
completed with exit 0), 3 when one does not (as systemctl status and LSB
init scripts use 3), also with --json: so
"cgdev status db >/dev/null || cgdev start db" works in scripts. With names,
only those services are shown and counted.`,
		ValidArgsFunction: g.completeServices,
		RunE: func(_ *cobra.Command, args []string) error {
			return statusCmd(g, args, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON (docs/json.md)")
	return c
}

func statusCmd(g *globals, names []string, asJSON bool) error {
	s, err := openSession(g, anyProject)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.checkNames(names, true); err != nil {
		return err
	}
	list, err := launcher.Status(s.project, s.driver, s.host)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		list = slices.DeleteFunc(list, func(st launcher.ServiceStatus) bool { return !slices.Contains(names, st.Name) })
	}
	sv := launcher.SupervisionStatus(s.project, s.driver, list)
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(statusJSON{s.project.ID, s.project.Dir, s.driver.Name(), sv, nonNil(list)})
	} else {
		launcher.PrintStatus(g.stdout, list)
		if line := sv.String(); line != "" {
			fmt.Fprintln(g.stdout, line)
		}
	}
	if err != nil {
		return err
	}
	if code := launcher.StatusCode(list); code != exitOK {
		return &exitError{code: code}
	}
	return nil
}

// statusJSON is the document status --json prints (docs/json.md).
type statusJSON struct {
	Project    string                   `json:"project"`
	Dir        string                   `json:"dir"`
	Driver     string                   `json:"driver"`
	Supervisor launcher.Supervision     `json:"supervisor"`
	Services   []launcher.ServiceStatus `json:"services"`
}
