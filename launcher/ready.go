package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/cgdev/cgdev/cgroup"
	"github.com/cgdev/cgdev/internal/human"
)

// validate checks the target of a readiness check when the config is read.
func (r *Ready) validate() error {
	switch r.Kind {
	case "tcp":
		_, port, err := net.SplitHostPort(r.Target)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q is not HOST:PORT with a port from 1 to 65535", r.Target)
		}
	case "http":
		u, err := url.Parse(r.Target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not an http:// or https:// URL", r.Target)
		}
	case "log":
		if r.Target == "" {
			return errors.New("an empty pattern would match at once; give the line that means ready")
		}
		re, err := regexp.Compile("(?m)" + r.Target) // ^ and $ match at each line
		if err != nil {
			return fmt.Errorf("%q is not a regular expression: %v", r.Target, err)
		}
		r.re = re
	}
	return nil
}

// String describes the check, e.g. "tcp 127.0.0.1:5432".
func (r *Ready) String() string { return r.Kind + " " + r.Target }

// probe is one attempt of a check: nil when the service is ready.
type probe func(ctx context.Context) error

// readyEnv is what a check needs of its service: for an exec check, the
// helper it runs as (helper.go: the service's directory and environment,
// the driver and the group's name); for a log check, the log.
type readyEnv struct {
	exec    helper // command is set per check
	log     *serviceLog
	logFrom int64 // the log's logical offset when the service started: only newer output counts
	// group and ownPorts: a tcp or http check on one of ownPorts passes
	// only on a socket held in group (checkOwnListener).
	group    cgroup.Group
	ownPorts []int
}

// wait runs the check until it passes, ctx ends, or the check's timeout
// passes. Between attempts it backs off from 10 ms to 250 ms, so that a fast
// service is seen ready within milliseconds.
func (r *Ready) wait(ctx context.Context, e readyEnv) error {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	p := r.probe(e)
	var last error
	for delay := 10 * time.Millisecond; ; delay = min(delay*2, 250*time.Millisecond) {
		if last = p(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not ready after %s (%s): %v", human.Duration(r.Timeout), r, last)
			}
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

func (r *Ready) probe(e readyEnv) probe {
	switch r.Kind {
	case "tcp":
		return func(ctx context.Context) error {
			var d net.Dialer
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", r.Target)
			if err != nil {
				return err
			}
			c.Close()
			return e.checkOwnListener(c.RemoteAddr().(*net.TCPAddr).Port)
		}
	case "http":
		client := &http.Client{Timeout: 2 * time.Second}
		return func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Target, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return fmt.Errorf("%s answered %s", r.Target, resp.Status)
			}
			port, _ := r.localPort()
			return e.checkOwnListener(port)
		}
	case "exec":
		return func(ctx context.Context) error { return runCheck(ctx, r.Target, e) }
	default: // log
		return logProbe(r.re, e.log, e.logFrom)
	}
}

// runCheck runs an exec check as a helper (helper.go): in a throwaway group
// of its own with the project's markers, emptied when the check ends,
// however it ends, so that it leaves nothing behind, and nothing it starts
// passes for the service's.
func runCheck(ctx context.Context, command string, e readyEnv) error {
	h := e.exec
	h.command = command
	return h.run(ctx)
}

// logProbe returns a check that reports whether re matches a line the
// service wrote after offset from. Each attempt reads only what was written
// since the last one (however much the service prints before it is ready,
// nothing is read twice and nothing is left unread), holding at most one
// chunk and one unfinished line in memory. Lines are matched one at a time;
// a line longer than 64 KiB is matched in pieces of 64 KiB. The unfinished
// last line (a prompt without a newline) is matched too.
func logProbe(re *regexp.Regexp, log *serviceLog, from int64) probe {
	return func(ctx context.Context) error {
		found := false
		match := func(line []byte, _ int64, _ *logView) bool {
			found = re.Match(line)
			return !found
		}
		var err error
		if from, err = log.scanLines(from, false, match); err != nil {
			return err
		}
		if !found {
			log.scanLines(from, true, match) // the unfinished last line, read again next time
		}
		if found {
			return nil
		}
		return fmt.Errorf("no output matching %q yet", re)
	}
}
