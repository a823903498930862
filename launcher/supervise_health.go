package launcher

import (
	"cmp"
	"context"
	"fmt"
	"time"
)

// liveness runs inst's liveness check every interval, from one interval
// after the start. After Retries failures in a row the service is
// unhealthy (recorded, and told in the events); with a restart policy the
// instance is then ended through triggers. A pass makes it healthy again.
func (sv *supervisor) liveness(ctx context.Context, inst *instance, triggers chan<- trigger) {
	h, name := inst.svc.Health, inst.svc.Name
	log := sv.p.serviceLog(name)
	probe := h.Check.probe(readyEnv{exec: serviceHelper(sv.p, sv.drv, inst.svc, helperHealth, serviceEnv(inst.env, inst.svc)), log: log, logFrom: inst.logFrom,
		group: inst.group, ownPorts: inst.svc.Ports})
	if h.Check.Kind == "log" {
		probe = freshLogLine(&h.Check, log, inst.logFrom)
	}
	next := time.NewTimer(cmp.Or(h.Delay, h.Interval))
	defer next.Stop()
	fails, unhealthy := 0, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
			next.Reset(h.Interval)
		}
		pctx, cancel := context.WithTimeout(ctx, h.Check.Timeout)
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			fails = 0
			if unhealthy {
				unhealthy = false
				sv.setHealth(name, "")
				sv.p.event("%s: healthy again (%s)", name, &h.Check)
			}
			continue
		}
		if fails++; fails < h.Retries || unhealthy {
			continue
		}
		unhealthy = true
		msg := fmt.Sprintf("liveness check failed %d times in a row (%s): %v", fails, &h.Check, err)
		sv.setHealth(name, msg)
		if inst.svc.Restart.Policy == RestartNo {
			sv.p.event("%s: unhealthy: %s; restart: no, so it is left running", name, msg)
			continue
		}
		sv.p.event("%s: unhealthy: %s", name, msg)
		triggers <- trigger{reason: msg}
		return
	}
}

// setHealth records a service as unhealthy (msg) or up again ("").
func (sv *supervisor) setHealth(name, msg string) {
	rec := sv.p.LoadRecord(name)
	if rec == nil {
		rec = &ServiceRecord{}
	}
	rec.Phase, rec.Health, rec.Since = phaseUnhealthy, msg, time.Now()
	if msg == "" {
		rec.Phase = phaseUp
	}
	sv.p.SaveRecord(name, rec)
}

// freshLogLine is the liveness form of a log check: it passes when a line
// matching the pattern was written since the previous attempt (a
// heartbeat). Each attempt reads the stream from where the previous one
// ended (logical offsets: a rotation in between loses nothing), in bounded
// chunks; an unfinished last line waits for the next attempt.
func freshLogLine(r *Ready, log *serviceLog, from int64) probe {
	return func(context.Context) error {
		found := false
		next, err := log.scanLines(from, false, func(line []byte, _ int64, _ *logView) bool {
			found = found || r.re.Match(line)
			return true
		})
		from = next
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no output matching %q since the last check", r.re)
		}
		return nil
	}
}
