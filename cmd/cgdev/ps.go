package main

import "github.com/cgdev/cgdev/launcher"

func psCmd(g *globals, args []string) error {
	fs := newFlagSet(g, "ps")
	file := addFileFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := openSession(g, *file)
	if err != nil {
		return err
	}
	return launcher.PS(g.stdout, s.project, s.driver, fs.Args())
}
