package launcher

import (
	"testing"
	"time"
)

// TestJudge: each state from what the kernel shows (processes, the main
// process alive or not), state.json's record and the exit record.
func TestJudge(t *testing.T) {
	now := time.Now()
	started := &ServiceState{PID: 100, Started: now}
	ready := &ServiceState{PID: 100, Started: now, Ready: "tcp 127.0.0.1:1"}
	daemon := &ServiceState{PID: 100, Started: now, Daemonized: true}
	code3 := &ServiceExit{At: now, PID: 100, Code: new(int)}
	*code3.Code = 3
	killed := &ServiceExit{At: now, PID: 100, Signal: "SIGKILL"}
	oom := &ServiceExit{At: now, PID: 100, Signal: "SIGKILL", OOM: &OOMKill{Limit: "MemoryMax=512M", Peak: 512 << 20}}
	for _, c := range []struct {
		name       string
		procs, pid int
		st         *ServiceState
		er         *ServiceRecord
		supervised bool
		want       string
	}{
		{"never started", 0, 0, nil, nil, false, "stopped"},
		{"no check", 2, 100, started, nil, false, "running"},
		{"readiness passed", 2, 100, ready, &ServiceRecord{Phase: phaseUp}, false, "ready"},
		{"no state.json", 2, 0, nil, nil, false, "running"},
		{"daemonized", 1, 0, daemon, nil, false, "running"},
		{"main gone, unwatched", 4, 0, started, nil, false, "degraded (main exited, 4 process(es) left)"},
		{"main killed, watched", 1, 0, started, &ServiceRecord{Phase: phaseUp, Last: killed}, true, "degraded (main killed (SIGKILL), 1 process(es) left)"},
		{"unhealthy", 1, 100, ready, &ServiceRecord{Phase: phaseUnhealthy, Health: "x"}, true, "unhealthy"},
		{"being started by the supervisor", 1, 0, started, &ServiceRecord{Phase: phaseStarting}, true, "starting"},
		{"being restarted", 1, 0, started, &ServiceRecord{Phase: phaseStarting, Restarts: 2}, true, "restarting (2)"},
		{"gone, unwatched", 0, 0, started, &ServiceRecord{Phase: phaseUp}, false, "exited (code unknown: no supervisor watched it (restart:, healthcheck:, watch: or cgdev up run one, which records how a service ends))"},
		{"just ended, supervised", 0, 0, started, &ServiceRecord{Phase: phaseUp, Last: killed}, true, "exited (being recorded by the supervisor)"},
		{"exited", 0, 0, started, &ServiceRecord{Phase: phaseEnded, Last: code3}, true, "exited (code 3)"},
		{"killed", 0, 0, started, &ServiceRecord{Phase: phaseEnded, Last: killed}, true, "killed (SIGKILL)"},
		{"oom", 0, 0, started, &ServiceRecord{Phase: phaseEnded, Last: oom}, true, "oom-killed (MemoryMax=512M, peak 512.0M)"},
		{"crash loop", 0, 0, started, &ServiceRecord{Phase: phaseFailed, Last: code3, GaveUp: "crash loop: 5 restarts in 1m00s"}, true, "failed (crash loop: 5 restarts in 1m00s)"},
		{"waiting to restart", 0, 0, started, &ServiceRecord{Phase: phaseRestarting, Restarts: 2, Last: code3, Next: time.Now().Add(4*time.Second + 40*time.Millisecond)}, true, "restarting (2, next in 4s)"},
		{"restart pending, supervisor gone", 0, 0, started, &ServiceRecord{Phase: phaseRestarting, Restarts: 2, Last: code3}, false, "exited (code 3)"},
	} {
		s := ServiceStatus{Procs: c.procs, PID: c.pid}
		judge(&s, c.st, c.er, c.supervised)
		if got := s.StateText(); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestJudgeOOMUnwatched: a service nobody watched end whose empty group
// the OOM killer acted in is oom-killed, from the kernel's evidence, with
// what is known of its limit and peak; an exit record saying otherwise wins.
func TestJudgeOOMUnwatched(t *testing.T) {
	now := time.Now()
	started := &ServiceState{PID: 100, Started: now}
	code3 := &ServiceExit{At: now, PID: 100, Code: new(int)}
	*code3.Code = 3
	for _, c := range []struct {
		name       string
		st         *ServiceState
		er         *ServiceRecord
		oom        *OOMKill
		supervised bool
		want       string
	}{
		{"no supervisor", started, &ServiceRecord{Phase: phaseUp}, &OOMKill{Limit: "MemoryMax=32M", Peak: 32 << 20}, false, "oom-killed (MemoryMax=32M, peak 32.0M)"},
		{"scope collected", started, nil, &OOMKill{Limit: "MemoryMax=64M"}, false, "oom-killed (MemoryMax=64M, peak unknown)"},
		{"no state.json", nil, nil, &OOMKill{Peak: 1 << 20}, false, "oom-killed (peak 1.0M)"},
		{"recorded exit wins", started, &ServiceRecord{Phase: phaseEnded, Last: code3}, &OOMKill{Limit: "MemoryMax=32M"}, true, "exited (code 3)"},
	} {
		s := ServiceStatus{oomKill: c.oom, OOMKills: 1}
		judge(&s, c.st, c.er, c.supervised)
		if got := s.StateText(); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
