package main

func doctorCmd(g *globals, args []string) error {
	fs := newFlagSet(g, "doctor")
	fs.Bool("json", false, "print the findings as JSON")
	return fs.Parse(args)
}
