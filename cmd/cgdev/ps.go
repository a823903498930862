package main

import (
	"fmt"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
)

func psCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ps [SVC...]",
		Short: "show each running service's process tree",
		Long: `Show each running service's process tree (all services, or those named), in the
config's order: PID, CPU % over the process's lifetime, RSS and command line.
A double-forked daemon shows as a root of its own: it is in the group, not
under its parent.`,
		ValidArgsFunction: g.completeServices,
		RunE: func(_ *cobra.Command, args []string) error {
			return psCmd(g, args)
		},
	}
}

func psCmd(g *globals, names []string) error {
	s, err := openSession(g, anyProject)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.checkNames(names, true); err != nil {
		return err
	}
	if err := launcher.PS(g.stdout, s.project, s.driver, names); err != nil {
		return err
	}
	list, err := launcher.Status(s.project, s.driver, s.host)
	if err != nil {
		return err
	}
	if line := launcher.SupervisionStatus(s.project, s.driver, list).String(); line != "" {
		fmt.Fprintln(g.stdout, line)
	}
	return nil
}
