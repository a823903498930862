package main

import (
	"encoding/json"
	"strconv"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
)

// treeCmd lists a process and its descendants, breadth first. It reads
// /proc only, so it works with every driver and without cgroups.
func treeCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "tree [--json] PID",
		Short: "list a process and its descendants breadth first, with service, CPU %, RSS and command",
	}
	asJSON := c.Flags().Bool("json", false, "print the processes as JSON (docs/json.md)")
	c.RunE = func(_ *cobra.Command, args []string) error { return treeCmd(g, args, asJSON) }
	c.ValidArgsFunction = cobra.NoFileCompletions
	return c
}

func treeCmd(g *globals, args []string, asJSON *bool) error {
	pid, err := pidArg(args)
	if err != nil {
		return err
	}
	nodes, err := launcher.Tree(pid)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(treeJSON(nodes))
	}
	return launcher.WriteTree(g.stdout, nodes)
}

// pidArg parses the single PID argument of tree and kill-tree.
func pidArg(args []string) (int, error) {
	if len(args) != 1 {
		return 0, usageError("expected exactly one PID, got %d argument(s)", len(args))
	}
	pid, err := strconv.Atoi(args[0])
	if err != nil || pid <= 0 {
		return 0, usageError("PID %q: not a positive number", args[0])
	}
	return pid, nil
}
