package main

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/cgdev/cgdev/launcher"
	"github.com/spf13/cobra"
)

// whoJSON is who --json (docs/json.md).
type whoJSON struct {
	Port    int                   `json:"port"`
	Holders []launcher.PortHolder `json:"holders"`
}

func whoCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "who [--json] PORT",
		Short: "say which process listens on a TCP port, and whether it is a cgdev service (whose, and where to stop it)",
		Long: `Say which processes hold a listening TCP socket (IPv4 or IPv6, any address) on
PORT: PID, command line, and whether it is a cgdev process, known by its marker
or its cgroup: then its project, its service and the directory to run
"cgdev stop SVC" in. Exit 0 either way; with nobody listening there is no
holder (and "holders": [] in JSON). Processes of other users are named only
when cgdev may read their /proc entries (as root).`,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	asJSON := c.Flags().Bool("json", false, "print the holders as JSON (docs/json.md)")
	c.RunE = func(_ *cobra.Command, args []string) error { return whoCmd(g, args, *asJSON) }
	return c
}

func whoCmd(g *globals, args []string, asJSON bool) error {
	if len(args) != 1 {
		return usageError("expected exactly one PORT, got %d argument(s)", len(args))
	}
	port, err := strconv.Atoi(args[0])
	if err != nil || port < 1 || port > 65535 {
		return usageError("PORT %q: not a TCP port (1 to 65535)", args[0])
	}
	holders, err := launcher.WhoHolds(port)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(whoJSON{Port: port, Holders: nonNil(holders)})
	}
	if len(holders) == 0 {
		fmt.Fprintf(g.stdout, "port %d: nobody listens\n", port)
	}
	for _, h := range holders {
		fmt.Fprintf(g.stdout, "port %d (%s): %s\n", port, h.Address, h)
	}
	return nil
}
