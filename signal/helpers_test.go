package signal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// waitFor bounds every wait on the network in these tests. Nothing here
// sleeps: a test waits for the message it expects and fails with what it
// got instead when this passes.
const waitFor = 5 * time.Second

// testServer is a signaling server on a loopback httptest listener.
type testServer struct {
	*Server
	http *httptest.Server
	url  string // ws://127.0.0.1:port/ws
	host string // 127.0.0.1:port
	// nodes are the servers of a cluster run (LANFT_TEST_NODES, see
	// startCluster), the first one being this one; nil for a lone server.
	nodes []*testServer
	turn  atomic.Int64
}

// next returns the URL of the node the next client should use: the nodes
// in turn in a cluster run, so that a test's clients are split across
// nodes; always url for a lone server.
func (ts *testServer) next() string {
	if len(ts.nodes) == 0 {
		return ts.url
	}
	return ts.nodes[int(ts.turn.Add(1)-1)%len(ts.nodes)].url
}

// startServer runs a server with cfg on loopback. Cleanup closes it and
// checks that none of its goroutines outlive the test.
func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	if n := testNodes(t); n > 1 {
		nodes := startCluster(t, cfg, n)
		nodes[0].nodes = nodes
		return nodes[0]
	}
	checkNoLeaks(t)
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(func() { srv.Close() })
	host := strings.TrimPrefix(hs.URL, "http://")
	return &testServer{Server: srv, http: hs, url: "ws://" + host + Path, host: host}
}

// servedServer is a server run by Serve on a loopback listener of its
// own, as a LAN host and `lanft signal` run it (not behind httptest).
type servedServer struct {
	*Server
	url    string // ws://127.0.0.1:port/ws
	addr   string // 127.0.0.1:port
	cancel context.CancelFunc
	served chan error
	once   sync.Once
}

// serveLoopback runs a server with cfg by Serve on a loopback listener.
// Cleanup stops it (stop, with waitFor).
func serveLoopback(t testing.TB, cfg Config) *servedServer {
	t.Helper()
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ss := &servedServer{Server: srv, addr: ln.Addr().String(), cancel: cancel, served: make(chan error, 1)}
	ss.url = "ws://" + ss.addr + Path
	go func() { ss.served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { ss.stop(t, waitFor) })
	return ss
}

// stop cancels Serve's ctx and fails the test unless Serve returns nil
// within bound; it reports whether Serve returned. Later calls only cancel.
func (ss *servedServer) stop(t testing.TB, bound time.Duration) (returned bool) {
	t.Helper()
	ss.cancel()
	returned = true
	ss.once.Do(func() {
		select {
		case err := <-ss.served:
			if err != nil {
				t.Errorf("Serve after its ctx ended: %v, want nil", err)
			}
		case <-time.After(bound):
			t.Errorf("Serve still running %v after its ctx ended", bound)
			returned = false
		}
	})
	return returned
}

// checkNoLeaks registers a cleanup, run after every later one, that waits
// until no goroutine of this package's server or client is left.
func checkNoLeaks(t testing.TB) {
	t.Cleanup(func() {
		t.Helper()
		deadline := time.Now().Add(waitFor)
		for {
			left := signalGoroutines()
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines of the signal package outlive the test:\n%s", len(left), strings.Join(left, "\n\n"))
				return
			}
			runtime.Gosched()
			time.Sleep(10 * time.Millisecond) // polling for an exit, not settling
		}
	})
}

func signalGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var left []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "signal.(*conn)") || strings.Contains(g, "signal.(*Server)") ||
			strings.Contains(g, "signal.(*Client)") {
			left = append(left, g)
		}
	}
	return left
}

// rawConn is a bare gorilla/websocket client that sends and checks JSON
// exactly as PROTOCOL.md writes it, without the package's Message type.
type rawConn struct {
	t  testing.TB
	ws *websocket.Conn
}

func dialRaw(t testing.TB, url string) *rawConn {
	t.Helper()
	c, resp, err := dialRawHeader(t, url, nil)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial %s: %v %s", url, err, status)
	}
	return c
}

func dialRawHeader(t testing.TB, url string, h http.Header) (*rawConn, *http.Response, error) {
	t.Helper()
	return dialRawWith(t, websocket.DefaultDialer, url, h)
}

// fromAddr dials TCP from ip, a loopback address: on Linux all of
// 127.0.0.0/8 is the loopback, so that a test's clients can come from as
// many addresses as it needs.
func fromAddr(ip string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return d.DialContext
}

// needLoopbackAddrs skips a test that dials from 127.0.0.2 and beyond
// where the system cannot (not Linux), except on CI.
func needLoopbackAddrs(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err == nil {
		ln.Close()
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot use loopback address 127.0.0.2: %v", err)
	}
	t.Skipf("cannot use loopback address 127.0.0.2 (it is on Linux): %v", err)
}

// dialRawFrom is dialRaw from the source address ip.
func dialRawFrom(t testing.TB, url, ip string) *rawConn {
	t.Helper()
	d := *websocket.DefaultDialer
	d.NetDialContext = fromAddr(ip)
	c, resp, err := dialRawWith(t, &d, url, nil)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial %s from %s: %v %s", url, ip, err, status)
	}
	return c
}

func dialRawWith(t testing.TB, d *websocket.Dialer, url string, h http.Header) (*rawConn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, resp, err := d.DialContext(ctx, url, h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { ws.Close() })
	return &rawConn{t: t, ws: ws}, resp, nil
}

// on returns c reporting to t, for use inside a subtest.
func (c *rawConn) on(t testing.TB) *rawConn { return &rawConn{t: t, ws: c.ws} }

// send writes v as one JSON text frame; a string is sent as it is.
func (c *rawConn) send(v any) {
	c.t.Helper()
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.t.Fatalf("marshal %v: %v", v, err)
		}
	}
	c.ws.SetWriteDeadline(time.Now().Add(waitFor))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("send %.200q: %v", b, err)
	}
}

// nextRaw reads the next frame within waitFor.
func (c *rawConn) nextRaw() ([]byte, error) {
	c.ws.SetReadDeadline(time.Now().Add(waitFor))
	kind, b, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if kind != websocket.TextMessage {
		return b, errors.New("got a binary frame")
	}
	return b, nil
}

// next reads the next message as a generic JSON object.
func (c *rawConn) next() map[string]any {
	c.t.Helper()
	b, err := c.nextRaw()
	if err != nil {
		c.t.Fatalf("waiting for a message: %v", err)
	}
	m, err := decodeObject(b)
	if err != nil {
		c.t.Fatalf("server sent %s: %v", b, err)
	}
	return m
}

// expect reads the next message and fails unless its type is typ.
func (c *rawConn) expect(typ string) map[string]any {
	c.t.Helper()
	m := c.next()
	if m["type"] != typ {
		c.t.Fatalf("got %s, want a %q message", show(m), typ)
	}
	return m
}

// expectError reads the next message and fails unless it is
// {"type":"error","message":<non-empty string>}. It returns the text.
func (c *rawConn) expectError() string {
	c.t.Helper()
	m := c.expect("error")
	msg := wantString(c.t, m, "message")
	if msg == "" {
		c.t.Fatalf("got %s, want a non-empty message", show(m))
	}
	return msg
}

// expectClosed reads until the server ends the connection and returns the
// read error. It fails if the connection is still open after waitFor.
func (c *rawConn) expectClosed() error {
	c.t.Helper()
	deadline := time.Now().Add(waitFor)
	var got []string
	for {
		c.ws.SetReadDeadline(deadline)
		_, b, err := c.ws.ReadMessage()
		if err == nil {
			got = append(got, string(b))
			continue
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection still open after %v; it received %d messages: %.300s", waitFor, len(got), strings.Join(got, " "))
		}
		return err
	}
}

// login logs in as name and checks the reply and the user list; it
// returns the list.
func (c *rawConn) login(name string) []string {
	c.t.Helper()
	c.send(map[string]any{"type": "login", "name": name})
	return c.expectLoggedIn()
}

func (c *rawConn) expectLoggedIn() []string {
	c.t.Helper()
	m := c.expect("login")
	if s, ok := m["success"].(bool); !ok || !s {
		c.t.Fatalf("login reply %s, want success true", show(m))
	}
	ul := c.expect("userlist")
	return wantStrings(c.t, ul, "users")
}

// expectUpdata reads the next message and fails unless it is an updata
// with action and name.
func (c *rawConn) expectUpdata(action, name string) map[string]any {
	c.t.Helper()
	m := c.expect("updata")
	if a, n := wantString(c.t, m, "action"), wantString(c.t, m, "name"); a != action || n != name {
		c.t.Fatalf("got %s, want updata %s %q", show(m), action, name)
	}
	return m
}

// decodeObject decodes one JSON object keeping numbers as written.
func decodeObject(b []byte) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

func decodeAny(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// wantString fails unless m[key] is a JSON string.
func wantString(t testing.TB, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("in %s, %q is %T, want a JSON string", show(m), key, m[key])
	}
	return s
}

// wantStrings fails unless m[key] is a JSON array of strings.
func wantStrings(t testing.TB, m map[string]any, key string) []string {
	t.Helper()
	arr, ok := m[key].([]any)
	if !ok {
		t.Fatalf("in %s, %q is %T, want a JSON array", show(m), key, m[key])
	}
	out := make([]string, len(arr))
	for i, v := range arr {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("in %s, %q[%d] is %T, want a JSON string", show(m), key, i, v)
		}
		out[i] = s
	}
	return out
}

// wantObject fails unless m[key] is a JSON object.
func wantObject(t testing.TB, m map[string]any, key string) map[string]any {
	t.Helper()
	o, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("in %s, %q is %T, want a JSON object", show(m), key, m[key])
	}
	return o
}

// sameJSON reports whether a and b decode to the same value.
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	return reflect.DeepEqual(decodeAny(t, a), decodeAny(t, b))
}

// startClient dials with cfg and runs the client until the test ends.
// The returned channel yields Run's result.
func startClient(t testing.TB, cfg ClientConfig) (*Client, context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	c, err := Dial(ctx, cfg)
	cancel()
	if err != nil {
		t.Fatalf("Dial as %q: %v", cfg.Name, err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- c.Run(runCtx)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-finished:
		case <-time.After(waitFor):
			t.Errorf("client %q: Run did not return %v after cancel", cfg.Name, waitFor)
		}
		c.Close()
	})
	return c, stop, done
}

// waitPeers waits until c's user list holds exactly want, in order.
func waitPeers(t testing.TB, c *Client, want ...string) []PeerInfo {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		peers := c.Peers()
		names := make([]string, len(peers))
		for i, p := range peers {
			names[i] = p.Name
		}
		if slices.Equal(names, want) {
			return peers
		}
		select {
		case <-c.Changes():
		case <-deadline:
			t.Fatalf("%s sees users %q, want %q", c.Name(), names, want)
		}
	}
}

// nextMessage waits for the next message Run hands to the caller.
func nextMessage(t testing.TB, c *Client) Message {
	t.Helper()
	select {
	case m := <-c.Messages():
		return m
	case <-time.After(waitFor):
		t.Fatalf("%s: no message after %v", c.Name(), waitFor)
	}
	return Message{}
}
