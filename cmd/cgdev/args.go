package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commandFirst puts the command name first, followed by the flags that came
// before it, so that any flag may go before or after the command:
// "cgdev --json status" is "cgdev status --json", and
// "cgdev -f ../cgdev.yaml status" is "cgdev status --file=../cgdev.yaml".
// A global flag found before the command is spelt out in full (-f FILE
// becomes --file=FILE) because after the command a short flag may mean
// something else: "cgdev -f x.yaml logs -f" is --file, then --follow.
// Everything after the command name is left in place, so the words after
// "cgdev run CMD" stay the command's.
//
// A flag before the command that is not a global one is taken to have a
// value, the next word, unless that word is a command name or a flag
// ("cgdev -n 5 logs", "cgdev --force stop"). A first word that is not a
// command is a usage error; without any, args go to cobra as they are.
// The same applies to what follows cobra's __complete, so that completion
// sees the line as the command will.
func commandFirst(root *cobra.Command, args []string) ([]string, error) {
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		rest, err := commandFirst(root, args[1:])
		if err != nil {
			return args, nil // completing the command name itself
		}
		return append([]string{args[0]}, rest...), nil
	}
	var before []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args, nil
		}
		if a == "-" || !strings.HasPrefix(a, "-") {
			if !isCommand(root, a) {
				return nil, usageError("unknown command %q%s", a, suggest(root, a))
			}
			return slices.Concat([]string{a}, before, args[i+1:]), nil
		}
		f, value, inline := globalFlag(root, a)
		switch {
		case f == nil: // a command's flag
			before = append(before, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && !isCommand(root, args[i+1]) {
				i++
				before = append(before, args[i])
			}
		case f.NoOptDefVal != "" || inline: // a boolean, or --flag=value
			before = append(before, spelt(f, value, inline))
		case i+1 < len(args):
			i++
			before = append(before, spelt(f, args[i], true))
		default:
			return args, nil // no value: cobra says so
		}
	}
	return args, nil
}

// globalFlag looks a word up among the root's flags ("--file=x", "--file",
// "-f", "-fx", "-f=x"), returning the flag and any value given in the word.
func globalFlag(root *cobra.Command, word string) (f *pflag.Flag, value string, inline bool) {
	lookup := func(fs *pflag.FlagSet, long bool, name string) *pflag.Flag {
		if long {
			return fs.Lookup(name)
		}
		return fs.ShorthandLookup(name)
	}
	var name string
	long := strings.HasPrefix(word, "--")
	if long {
		name, value, inline = strings.Cut(word[2:], "=")
	} else {
		name, value = word[1:2], word[2:]
		value, inline = strings.CutPrefix(value, "=")
		inline = inline || value != ""
	}
	for _, fs := range []*pflag.FlagSet{root.PersistentFlags(), root.Flags()} {
		if f = lookup(fs, long, name); f != nil {
			if !long && inline && f.NoOptDefVal != "" {
				return nil, "", false // "-hC": combined booleans, left to cobra
			}
			return f, value, inline
		}
	}
	return nil, "", false
}

// spelt writes a global flag in full: --name or --name=value.
func spelt(f *pflag.Flag, value string, withValue bool) string {
	if !withValue {
		return "--" + f.Name
	}
	return "--" + f.Name + "=" + value
}

// isCommand reports whether word names one of root's commands.
func isCommand(root *cobra.Command, word string) bool {
	for _, c := range root.Commands() {
		if c.Name() == word || c.HasAlias(word) {
			return true
		}
	}
	return false
}

// suggest says which commands a mistyped one may have meant.
func suggest(root *cobra.Command, word string) string {
	s := root.SuggestionsFor(word)
	if len(s) == 0 {
		return " (see cgdev --help)"
	}
	return " (did you mean " + strings.Join(s, " or ") + "?)"
}
