package launcher

import (
	"fmt"
	"time"

	"github.com/cgdev/cgdev/internal/human"
)

// restartWindowEver is a restart window that never ends: MaxRestarts then
// counts every restart since the start by hand (process-compose's
// max_restarts). A century fits in a time.Duration (at most 292 years).
const restartWindowEver = 100 * 365 * 24 * time.Hour

// decision is what a restart policy says of an ended instance.
type decision struct {
	restart bool
	delay   time.Duration
	gaveUp  string // set when a crash loop ends the restarts: "crash loop: 5 restarts in 1m"
}

// decide applies the policy to an instance that ended as e (at now), given
// the service's record, which it updates: Recent keeps the restarts within
// Window, and a restart is counted in Recent and Restarts. The delay is
// Initial doubled for each restart already in the window, at most Max (so
// it falls back to Initial once the service has stayed up a whole window).
// With MaxRestarts restarts in the window already, it gives up instead.
func (r Restart) decide(rec *ServiceRecord, e *ServiceExit, now time.Time) decision {
	switch {
	case r.Policy == RestartAlways:
	case r.Policy == RestartOnFailure && e.Failed():
	default:
		return decision{}
	}
	recent := rec.Recent[:0:0]
	for _, t := range rec.Recent {
		if now.Sub(t) < r.Window {
			recent = append(recent, t)
		}
	}
	if r.MaxRestarts > 0 && len(recent) >= r.MaxRestarts {
		rec.Recent = recent
		within := " in " + human.Duration(r.Window)
		if r.Window >= restartWindowEver {
			within = " since the start"
		}
		return decision{gaveUp: fmt.Sprintf("crash loop: %d restarts%s", len(recent), within)}
	}
	delay := r.Initial
	for range recent {
		if delay >= r.Max/2 {
			delay = r.Max
			break
		}
		delay *= 2
	}
	rec.Recent = append(recent, now)
	rec.Restarts++
	return decision{restart: true, delay: min(delay, r.Max)}
}
