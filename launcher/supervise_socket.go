package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The supervisor answers on an abstract unix socket named after the user
// and the project: nothing in the file system to go stale or be deleted,
// and no path-length limit. Each connection carries one request (a JSON
// line) and its replies (JSON lines): output to print, then one "done".
// Both ends check the other's credentials: the same user, and on the
// client's side a process of the project's supervisor group.

// svRequest is a request to the supervisor.
type svRequest struct {
	Op                string   `json:"op"` // "start" or "release"
	Names             []string `json:"names,omitempty"`
	Config            string   `json:"config,omitempty"` // the project file, absolute: read again for each start
	Env               []string `json:"env,omitempty"`    // the environment services start with
	IgnoreUnsupported bool     `json:"ignore_unsupported,omitempty"`
}

// svReply is one line of the supervisor's answer.
type svReply struct {
	Out     string      `json:"out,omitempty"`
	Done    bool        `json:"done,omitempty"`
	Err     string      `json:"err,omitempty"`
	Results []svStarted `json:"results,omitempty"`
}

// svStarted is what a client needs of a StartResult.
type svStarted struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	LogFrom int64  `json:"log_from,omitempty"`
}

// socketName is the abstract socket of project's supervisor for this user.
func socketName(project string) string {
	return fmt.Sprintf("@cgdev-supervisor/%d/%s", os.Geteuid(), project)
}

func listen(project string) (net.Listener, error) {
	ln, err := net.Listen("unix", socketName(project))
	if err != nil {
		return nil, fmt.Errorf("supervisor: listening on %s: %w (is another supervisor of this project running?)", socketName(project), err)
	}
	return ln, nil
}

// peer returns the credentials of the process at the other end of c.
func peer(c net.Conn) (*unix.Ucred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return nil, err
	}
	return cred, cerr
}

// serve accepts connections until the listener is closed.
func (sv *supervisor) serve(ctx context.Context) {
	for {
		c, err := sv.ln.Accept()
		if err != nil {
			return
		}
		if cred, err := peer(c); err != nil || int(cred.Uid) != os.Geteuid() {
			c.Close()
			continue
		}
		sv.mu.Lock()
		if sv.quitting() { // the client finds no supervisor and starts one
			sv.mu.Unlock()
			c.Close()
			continue
		}
		sv.busy++
		sv.mu.Unlock()
		sv.wg.Add(1)
		go func() {
			defer sv.wg.Done()
			sv.handle(ctx, c)
			sv.mu.Lock()
			sv.busy--
			sv.active = time.Now()
			sv.mu.Unlock()
			sv.checkIdle()
			time.AfterFunc(releaseAfter, releaseCode)
		}()
	}
}

// replyWriter sends what is written to it as "out" replies.
type replyWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (w *replyWriter) Write(b []byte) (int, error) { return len(b), w.send(svReply{Out: string(b)}) }

func (w *replyWriter) send(r svReply) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.enc.Encode(r)
}

// handle serves one connection. The request's context ends when the client
// goes away (Ctrl-C on `cgdev start`): services still starting for it are
// then removed, as a start interrupted in the foreground would do.
func (sv *supervisor) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	dec := json.NewDecoder(c)
	var req svRequest
	if err := dec.Decode(&req); err != nil {
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go cancelWhenGone(c, cancel)
	w := &replyWriter{enc: json.NewEncoder(c)}
	done := svReply{Done: true}
	switch req.Op {
	case "start":
		results, err := sv.start(ctx, rctx, req, w)
		for _, r := range results {
			done.Results = append(done.Results, svStarted{Name: r.Name, State: r.State, LogFrom: r.LogFrom})
		}
		if err != nil {
			done.Err = err.Error()
		}
	case "release":
		sv.release(req.Names)
		sv.p.event("supervisor: released %s, to be stopped", orAll(req.Names))
	default:
		done.Err = fmt.Sprintf("unknown request %q", req.Op)
	}
	w.send(done)
}

func orAll(names []string) string {
	if len(names) == 0 {
		return "every service"
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return fmt.Sprint(sorted)
}

// start serves a start request: it reads the project file again, releases
// the services to start that are down (a restart pending, or given up: a
// start by hand takes over), starts them as Start does, with this process
// as their parent, and watches each one started. ctx is the supervisor's,
// rctx the request's.
func (sv *supervisor) start(ctx, rctx context.Context, req svRequest, w *replyWriter) ([]StartResult, error) {
	cfg, err := loadConfig(req.Config)
	if err != nil {
		return nil, err
	}
	if cfg.Dir != sv.p.Dir {
		return nil, fmt.Errorf("%s belongs to %s, not to this supervisor's project %s", req.Config, cfg.Dir, sv.p.Dir)
	}
	services, err := cfg.Closure(req.Names)
	if err != nil {
		return nil, err
	}
	running, err := liveGroups(sv.drv, sv.p.ID)
	if err != nil {
		return nil, err
	}
	var down []string
	for _, s := range services {
		if running[s.Name] == nil {
			down = append(down, s.Name)
		}
	}
	if len(down) > 0 {
		sv.release(down)
	}
	sv.mu.Lock()
	sv.p.Config = cfg
	sv.mu.Unlock()
	p := &Project{ID: sv.p.ID, Dir: sv.p.Dir, Config: cfg}
	results, err := Start(rctx, p, sv.drv, req.Names, StartOptions{
		Driver: sv.drv.Name(), IgnoreUnsupported: req.IgnoreUnsupported, Out: w, Env: req.Env,
		onStart: func(inst *instance) { sv.watch(ctx, inst) },
	})
	sv.adopt(ctx)
	return results, err
}

// cancelWhenGone calls cancel once the client has gone away (its end of c
// closed). The client sends nothing after its request but the newline
// json.Encoder ends it with, which the request's decoder leaves unread when
// the request ends exactly where the decoder's buffer does: what is read
// here is discarded, only the end of the stream counts.
func cancelWhenGone(c net.Conn, cancel context.CancelFunc) {
	io.Copy(io.Discard, c)
	cancel()
}
