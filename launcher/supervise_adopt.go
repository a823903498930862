package launcher

import (
	"context"
	"os"
	"sort"
	"strings"
	"time"
)

// adopt watches every configured service that runs and that nothing here
// watches yet: the services of a supervisor that was killed (or of a start
// made without one). This process is not their parent, so their main
// process is watched through a pidfd and how it ends (code, signal) is
// unknown; their restart policy, liveness check and watch apply from now.
func (sv *supervisor) adopt(ctx context.Context) {
	running, err := liveGroups(sv.drv, sv.p.ID)
	if err != nil {
		sv.p.event("supervisor: finding running services: %v", err)
		return
	}
	st, _ := sv.p.LoadState()
	sv.mu.Lock()
	cfg := sv.p.Config
	var todo []string
	for name := range running {
		if _, watched := sv.watchers[name]; !watched && cfg.Service(name) != nil {
			todo = append(todo, name)
		}
	}
	sv.mu.Unlock()
	for _, s := range cfg.Services {
		if running[s.Name] == nil {
			sv.endedUnseen(s.Name)
		}
	}
	sort.Strings(todo)
	for _, name := range todo {
		g := running[name]
		rec := st.Services[name]
		if rec == nil {
			rec = guessMain(g) // state.json lost: the group says who leads it
		}
		if rec == nil {
			rec = &ServiceState{Guessed: true, Cgroup: g.Path(), Log: sv.p.LogFile(name)}
		}
		inst := &instance{svc: cfg.Service(name), group: g, rec: rec, env: os.Environ()}
		if v, err := sv.p.serviceLog(name).view(); err == nil {
			inst.logFrom = v.end() // a liveness check on its log counts only what comes next
			v.close()
		}
		inst.before = oomStats(inst.group)
		sv.watch(ctx, inst)
	}
	if len(todo) > 0 {
		sv.p.event("supervisor: adopted %s, started before this supervisor: how they end (code, signal) will not be known, their restart policy applies", strings.Join(todo, ", "))
	}
}

// endedUnseen records, for a service whose record says it runs but whose
// group is empty, that it ended while no supervisor ran: how is unknown.
func (sv *supervisor) endedUnseen(name string) {
	rec := sv.p.LoadRecord(name)
	if rec == nil || rec.Phase == phaseEnded || rec.Phase == phaseFailed || rec.Phase == phaseRestarting {
		return
	}
	rec.Phase, rec.Since = phaseEnded, time.Now()
	rec.Last = &ServiceExit{At: time.Now(), Unknown: true}
	sv.p.SaveRecord(name, rec)
	sv.p.event("%s: ended while no supervisor ran: how is unknown", name)
}
