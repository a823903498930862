package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/cleanup"
	"github.com/cgdev/cgdev/internal/human"
	"golang.org/x/sys/unix"
)

// ListRuns writes the runs drv holds to w, one line each: the run's name,
// the PID of its cgdev ("gone" when it has none) and how many processes its
// group holds. Stale runs are collected first (CollectRuns), with a line on
// log for each.
func ListRuns(w, log io.Writer, drv cgroup.Driver) error {
	cerr := CollectRuns(drv, log)
	groups, err := drv.Groups("")
	if err != nil {
		return errors.Join(cerr, err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tCGDEV\tPROCS")
	for _, g := range groups {
		owner := "gone"
		if pid := runOwner(g.Name()); pid != 0 {
			owner = strconv.Itoa(pid)
		}
		pids, _ := g.Procs()
		fmt.Fprintf(tw, "%s\t%s\t%d\n", g.Name(), owner, len(pids))
	}
	return errors.Join(cerr, tw.Flush())
}

// StopRuns stops the runs named (every run for "all") as stop stops a
// service: SIGTERM to the whole group, then SIGKILL after grace. A run
// whose cgdev lives ends as if its command had been killed: its cgdev exits
// 143. It reports each on w.
func StopRuns(ctx context.Context, w io.Writer, drv cgroup.Driver, names []string, grace time.Duration) error {
	groups, err := drv.Groups("")
	if err != nil {
		return err
	}
	if !slices.Contains(names, "all") {
		var missing []string
		groups, missing = selectRuns(groups, names)
		if len(missing) > 0 {
			return fmt.Errorf("no run named %v (cgdev run --list shows them)", missing)
		}
	}
	var errs []error
	for _, g := range groups {
		res, err := cleanup.StopGroup(ctx, g, unix.SIGTERM, grace)
		if err != nil {
			errs = append(errs, fmt.Errorf("stopping run %s: %w", g.Name(), err))
			continue
		}
		how := "on SIGTERM"
		if res.Forced {
			how = "with SIGKILL after the grace period"
		}
		fmt.Fprintf(w, "stopped run %s (%d process(es)) %s in %s\n", g.Name(), res.Signalled, how, human.Duration(res.Took))
	}
	return errors.Join(errs...)
}

// selectRuns returns the groups named, and the names no group has.
func selectRuns(groups []cgroup.Group, names []string) (selected []cgroup.Group, missing []string) {
	for _, n := range names {
		i := slices.IndexFunc(groups, func(g cgroup.Group) bool { return g.Name() == n })
		if i < 0 {
			missing = append(missing, n)
			continue
		}
		selected = append(selected, groups[i])
	}
	return selected, missing
}
