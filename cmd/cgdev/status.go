package main

import (
	"encoding/json"

	"github.com/cgdev/cgdev/launcher"
)

func statusCmd(g *globals, args []string) error {
	fs := newFlagSet(g, "status")
	file := addFileFlag(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("status takes no arguments")
	}
	s, err := openSession(g, *file)
	if err != nil {
		return err
	}
	list, err := launcher.Status(s.project, s.driver, s.host)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Project  string                   `json:"project"`
			Dir      string                   `json:"dir"`
			Driver   string                   `json:"driver"`
			Services []launcher.ServiceStatus `json:"services"`
		}{s.project.ID, s.project.Dir, s.driver.Name(), list})
	}
	launcher.PrintStatus(g.stdout, list)
	return nil
}
