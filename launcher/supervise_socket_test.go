package launcher_test

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgdev/cgdev/launcher"
	"github.com/cgdev/cgdev/test/testenv"
	"golang.org/x/sys/unix"
)

// TestClientGoneOnlyOnClose: the supervisor abandons a request when its
// client goes away, and only then. The newline json.Encoder writes after
// the request is left unread by the decoder when the request ends exactly
// at the end of the decoder's buffer (here 512 bytes, its first read); it
// must not be taken for the client leaving (which made a start fail with
// "interrupted before it was ready" for requests of unlucky sizes).
func TestClientGoneOnlyOnClose(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	// A request of 512 bytes, then "\n", as the client encodes it.
	req := map[string]string{"op": "start", "config": ""}
	b, _ := json.Marshal(req)
	req["config"] = strings.Repeat("x", 512-len(b))
	if err := json.NewEncoder(client).Encode(req); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.NewDecoder(server).Decode(&got); err != nil || got["config"] != req["config"] {
		t.Fatalf("decoding the request: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go launcher.CancelWhenGone(server, cancel)
	raw, err := server.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	unread := func() (n int) {
		raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		return n
	}
	if !testenv.Eventually(10*time.Second, func() bool { return unread() == 0 }) {
		t.Fatalf("the newline after the request was never read (%d bytes unread)", unread())
	}
	if ctx.Err() != nil {
		t.Fatal("the request was abandoned while its client was still connected")
	}
	client.Close()
	if !testenv.Eventually(10*time.Second, func() bool { return ctx.Err() != nil }) {
		t.Fatal("the request was not abandoned when its client went away")
	}
}
