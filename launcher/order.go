package launcher

import (
	"cmp"
	"slices"
)

// inConfigOrder returns items sorted the way every view lists services:
// in the config file's order, then anything the config does not name (a
// group still running for a service since removed from it) by name. Start's
// summary, status and ps all use it, so a service is in the same place in
// each.
func inConfigOrder[T any](c *Config, items []T, name func(T) string) []T {
	index := make(map[string]int, len(c.Services))
	for i, s := range c.Services {
		index[s.Name] = i
	}
	rank := func(n string) int {
		if i, ok := index[n]; ok {
			return i
		}
		return len(index)
	}
	out := slices.Clone(items)
	slices.SortStableFunc(out, func(a, b T) int {
		na, nb := name(a), name(b)
		return cmp.Or(cmp.Compare(rank(na), rank(nb)), cmp.Compare(na, nb))
	})
	return out
}
