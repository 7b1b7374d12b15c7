package web_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/web"
)

// hosts is an Upstream whose elected host the test switches.
type hosts struct {
	mu    sync.Mutex
	url   string
	stale chan struct{}
}

func (h *hosts) Host(context.Context) (string, <-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.url, h.stale, nil
}

func (h *hosts) elect(url string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stale != nil {
		close(h.stale)
	}
	h.url, h.stale = url, make(chan struct{})
}

type signalHost struct {
	srv *signal.Server
	url string
}

func startSignal(t *testing.T) signalHost {
	t.Helper()
	srv, err := signal.NewServer(signal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return signalHost{srv: srv, url: "ws://" + strings.TrimPrefix(hs.URL, "http://") + signal.Path}
}

// startPage serves the page in front of local's signaling server, bridging
// browsers to up (nil: no bridge, as lanft signal).
func startPage(t *testing.T, local signalHost, up web.Upstream) string {
	t.Helper()
	w, err := web.New(web.Config{Signal: local.srv.Handler(), Upstream: up, Admits: local.srv.Admits})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(w)
	t.Cleanup(func() { hs.Close(); w.Close() })
	return strings.TrimPrefix(hs.URL, "http://")
}

func get(t *testing.T, url, host string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestPageHeaders(t *testing.T) {
	addr := startPage(t, startSignal(t), nil)
	resp := get(t, "http://"+addr+"/", "")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `<script type="module" src="app.js">`) {
		t.Fatalf("GET /: %s\n%s", resp.Status, body)
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != web.CSP {
		t.Errorf("CSP %q, want %q", got, web.CSP)
	}
	for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "*"} {
		if strings.Contains(web.CSP, bad) {
			t.Errorf("CSP allows %s: %s", bad, web.CSP)
		}
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", got)
	}
	if ct := get(t, "http://"+addr+"/lanft.wasm", "").Header.Get("Content-Type"); ct != "application/wasm" {
		t.Errorf("lanft.wasm served as %q", ct)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/lanft.wasm", nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate")
	zresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer zresp.Body.Close()
	zipped, _ := io.ReadAll(zresp.Body)
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil || zresp.Header.Get("Content-Encoding") != "gzip" || zresp.Header.Get("Content-Type") != "application/wasm" {
		t.Fatalf("lanft.wasm for a browser: %v %v", zresp.Header, err)
	}
	unzipped, _ := io.ReadAll(zr)
	plain, _ := io.ReadAll(get(t, "http://"+addr+"/lanft.wasm", "").Body)
	if !bytes.Equal(unzipped, plain) || len(plain) < 1<<20 {
		t.Fatalf("gzipped lanft.wasm differs from the plain one (%d and %d bytes)", len(unzipped), len(plain))
	}
	t.Logf("lanft.wasm: %d bytes, %d gzipped", len(plain), len(zipped))
	if ct := get(t, "http://"+addr+"/qr.png", "").Header.Get("Content-Type"); ct != "image/png" {
		t.Errorf("qr.png served as %q", ct)
	}
	// DNS rebinding: a name that is not ours gets nothing.
	if resp := get(t, "http://"+addr+"/", "evil.example.com"); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("GET with Host evil.example.com: %s", resp.Status)
	}
}

func login(t *testing.T, c *websocket.Conn, name string) {
	t.Helper()
	if err := c.WriteJSON(map[string]any{"type": "login", "name": name}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m signal.Message
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("login reply: %v", err)
	}
	if m.Type != signal.TypeLogin || m.Success == nil || !*m.Success {
		t.Fatalf("login reply: %+v", m)
	}
}

func dial(t *testing.T, url, origin string) (*websocket.Conn, error) {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.DefaultDialer.Dial(url, h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// TestRootUpgradeIsSignaling: the original tool's clients open their
// WebSocket at the root of the host's port; it works as /ws does.
func TestRootUpgradeIsSignaling(t *testing.T) {
	local := startSignal(t)
	addr := startPage(t, local, nil)
	c, err := dial(t, "ws://"+addr+"/", "")
	if err != nil {
		t.Fatalf("WebSocket at /: %v", err)
	}
	login(t, c, "original")
	if got := local.srv.Users(); !slices.Equal(got, []string{"original"}) {
		t.Fatalf("users %v", got)
	}
}

// TestBridgeFollowsHost: a browser's WebSocket (it has an Origin) is
// bridged to the elected host; when another is elected the page's
// connection closes and the next one reaches the new host. Another
// site's page is refused.
func TestBridgeFollowsHost(t *testing.T) {
	local, a, b := startSignal(t), startSignal(t), startSignal(t)
	up := &hosts{}
	up.elect(a.url)
	addr := startPage(t, local, up)
	if _, err := dial(t, "ws://"+addr+"/ws", "http://evil.example.com"); err == nil {
		t.Fatal("a page of another origin connected")
	}

	page, err := dial(t, "ws://"+addr+"/ws", "http://"+addr)
	if err != nil {
		t.Fatalf("page WebSocket: %v", err)
	}
	login(t, page, "web-1")
	if got := a.srv.Users(); !slices.Equal(got, []string{"web-1"}) {
		t.Fatalf("host a has %v, want the page", got)
	}
	if got := local.srv.Users(); len(got) != 0 {
		t.Fatalf("the page logged in to the local server instead: %v", got)
	}

	up.elect(b.url)
	page.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err = page.ReadMessage(); err != nil {
			break
		}
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseServiceRestart {
		t.Fatalf("after the election the page's connection ended with %v, want close 1012", err)
	}
	page, err = dial(t, "ws://"+addr+"/ws", "http://"+addr)
	if err != nil {
		t.Fatalf("page WebSocket after the election: %v", err)
	}
	login(t, page, "web-1")
	if got := b.srv.Users(); !slices.Equal(got, []string{"web-1"}) {
		t.Fatalf("host b has %v, want the page", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(a.srv.Users()) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // a's drop of the old bridge is asynchronous
	}
	if got := a.srv.Users(); len(got) != 0 {
		t.Fatalf("host a still has %v", got)
	}
}

// TestBridgeDropsSilentPage: a page that stops answering pings (a phone
// that left the Wi-Fi) goes offline at the host; pages beyond MaxPages
// are refused.
func TestBridgeDropsSilentPage(t *testing.T) {
	local, a := startSignal(t), startSignal(t)
	up := &hosts{}
	up.elect(a.url)
	w, err := web.New(web.Config{Signal: local.srv.Handler(), Upstream: up, Admits: local.srv.Admits,
		PingInterval: 50 * time.Millisecond, MaxPages: 2})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(w)
	t.Cleanup(func() { hs.Close(); w.Close() })
	addr := strings.TrimPrefix(hs.URL, "http://")

	live, err := dial(t, "ws://"+addr+"/ws", "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	login(t, live, "live")
	// gorilla answers pings only while reading: keep reading.
	go func() {
		for {
			if _, _, err := live.ReadMessage(); err != nil {
				return
			}
		}
	}()
	silent, err := dial(t, "ws://"+addr+"/ws", "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	silent.SetPingHandler(func(string) error { return nil }) // never pongs
	login(t, silent, "silent")
	if _, err := dial(t, "ws://"+addr+"/ws", "http://"+addr); err == nil {
		t.Error("a third page was bridged with MaxPages 2")
	}

	// The silent page is dropped within two ping intervals (plus a second
	// of grace); the host then says so to the live one.
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := silent.ReadMessage(); err != nil {
			break
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(a.srv.Users(), []string{"live"}) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the host's drop is asynchronous
	}
	if got := a.srv.Users(); !slices.Equal(got, []string{"live"}) {
		t.Fatalf("host has %v, want only the live page", got)
	}
}
