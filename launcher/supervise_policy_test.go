package launcher

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func exitCode(n int) *ServiceExit { return &ServiceExit{Code: &n} }

func TestRestartDecision(t *testing.T) {
	r := Restart{Policy: RestartOnFailure, Initial: time.Second, Max: 5 * time.Second, MaxRestarts: 4, Window: time.Minute}
	rec := &ServiceRecord{}
	now := time.Now()
	var delays []time.Duration
	for i := range 4 {
		d := r.decide(rec, exitCode(1), now.Add(time.Duration(i)*time.Second))
		if !d.restart {
			t.Fatalf("restart %d refused: %+v", i+1, d)
		}
		delays = append(delays, d.delay)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}; !slices.Equal(delays, want) {
		t.Errorf("delays %v, want %v (doubling, capped at max)", delays, want)
	}
	d := r.decide(rec, exitCode(1), now.Add(5*time.Second))
	if d.restart || !strings.Contains(d.gaveUp, "crash loop: 4 restarts in 1m") {
		t.Errorf("fifth failure in the window: %+v, want a crash loop", d)
	}
	if rec.Restarts != 4 {
		t.Errorf("restarts %d, want 4", rec.Restarts)
	}
	// A window later the count and the delay start over.
	d = r.decide(rec, exitCode(1), now.Add(2*time.Minute))
	if !d.restart || d.delay != time.Second || len(rec.Recent) != 1 {
		t.Errorf("after a quiet window: %+v, recent %v", d, rec.Recent)
	}
}

func TestRestartPolicies(t *testing.T) {
	oom := &ServiceExit{Signal: "SIGKILL", OOM: &OOMKill{Limit: "MemoryMax=64M"}}
	unknown := &ServiceExit{Unknown: true}
	liveness := &ServiceExit{Code: new(int), Reason: "liveness check failed"}
	for _, c := range []struct {
		policy string
		exit   *ServiceExit
		want   bool
	}{
		{RestartNo, exitCode(1), false},
		{RestartOnFailure, exitCode(0), false},
		{RestartOnFailure, exitCode(3), true},
		{RestartOnFailure, oom, true},
		{RestartOnFailure, unknown, true},
		{RestartOnFailure, liveness, true},
		{RestartAlways, exitCode(0), true},
	} {
		r := defaultRestart
		r.Policy = c.policy
		if got := r.decide(&ServiceRecord{}, c.exit, time.Now()).restart; got != c.want {
			t.Errorf("%s after %s: restart %v, want %v", c.policy, c.exit, got, c.want)
		}
	}
}

// TestRestartWindowEver: process-compose's max_restarts counts every
// restart since the start, however far apart, at a fixed backoff.
func TestRestartWindowEver(t *testing.T) {
	r := Restart{Policy: RestartAlways, Initial: 2 * time.Second, Max: 2 * time.Second, MaxRestarts: 2, Window: restartWindowEver}
	rec := &ServiceRecord{}
	now := time.Now()
	for i := range 2 {
		if d := r.decide(rec, exitCode(0), now.Add(time.Duration(i)*24*time.Hour)); !d.restart || d.delay != 2*time.Second {
			t.Fatalf("restart %d a day apart: %+v, want one after the fixed 2s", i+1, d)
		}
	}
	d := r.decide(rec, exitCode(0), now.Add(30*24*time.Hour))
	if d.restart || d.gaveUp != "crash loop: 2 restarts since the start" {
		t.Errorf("third end, a month later: %+v, want the give-up", d)
	}
}
