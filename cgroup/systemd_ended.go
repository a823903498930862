package cgroup

import (
	"context"
	"syscall"

	sd "github.com/coreos/go-systemd/v22/dbus"
)

// OOM kills under the systemd driver. Scopes carry OOMPolicy=stop, systemd's
// default, stated explicitly: after an OOM kill systemd stops the rest of
// the scope and records Result=oom-kill, then removes the scope's cgroup,
// often before cgdev has read memory.events. CollectMode=inactive keeps a
// scope that failed so loaded (until cgdev resets it: Remove), so that the
// Result is still there to read: for `cgdev run` right after its command
// died, for services whenever `cgdev status` or `stop` comes.

// resultOOM is the Result of a unit that ended because of an OOM kill.
const resultOOM = "oom-kill"

// Stats reads the scope's cgroup; once the cgroup is gone, it asks the
// manager how the scope ended, and counts an OOM kill when it says so.
func (g *scopeGroup) Stats() (Stats, error) {
	s, err := g.Dir.Stats()
	if err != nil || s.OOMKills > 0 || g.Dir.exists() {
		return s, err
	}
	return g.d.endedStats(g.unit), nil
}

// endedStats are the counters of a unit whose cgroup is gone: one OOM kill
// when it ended with result oom-kill (the manager does not say how many).
func (d *Systemd) endedStats(unitName string) Stats {
	ctx, cancel := context.WithTimeout(context.Background(), managerTimeout)
	defer cancel()
	p, err := d.conn.GetUnitTypePropertyContext(ctx, unitName, "Scope", "Result")
	if err != nil {
		return Stats{}
	}
	if r, ok := p.Value.Value().(string); ok && r == resultOOM {
		return Stats{OOMKills: 1}
	}
	return Stats{}
}

// endedScope is a scope that failed (an OOM kill, most often) and is kept
// loaded without a cgroup, so that status can say how it ended. It holds no
// process; Remove resets it, which makes the manager forget it.
type endedScope struct {
	scope *scopeGroup
	stats Stats
}

// endedGroup returns unit u of service name, which has no cgroup any more,
// as a group when it failed or its result says OOM kill (it may still be on
// its way to failed), else nil.
func (d *Systemd) endedGroup(u sd.UnitStatus, name string) Group {
	stats := d.endedStats(u.Name)
	if u.ActiveState != "failed" && stats.OOMKills == 0 {
		return nil
	}
	return &endedScope{scope: &scopeGroup{name: name, unit: u.Name, d: d}, stats: stats}
}

func (g *endedScope) Name() string                       { return g.scope.name }
func (g *endedScope) Path() string                       { return "" }
func (g *endedScope) Procs() ([]int, error)              { return nil, nil }
func (g *endedScope) Signal(syscall.Signal) (int, error) { return 0, nil }
func (g *endedScope) Kill() error                        { return nil }
func (g *endedScope) WaitEmpty(context.Context) error    { return nil }
func (g *endedScope) Remove() error                      { return g.scope.Remove() }
func (g *endedScope) Stats() (Stats, error)              { return g.stats, nil }

// Unit is the scope's unit name.
func (g *endedScope) Unit() string { return g.scope.unit }
