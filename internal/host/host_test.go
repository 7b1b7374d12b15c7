package host

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/web"
)

func listenLoop(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// runHost runs h until the test ends, and fails the test if Run fails.
func runHost(t *testing.T, h *Host) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return cancel
}

// fetch GETs url and returns the status, the body and the CSP header.
func fetch(t *testing.T, url string) (int, string, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Content-Security-Policy")
}

// TestNewRefuses: a config that cannot work is refused, and what it
// handed over is closed.
func TestNewRefuses(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a listener: no error")
	}
	ln, mln := listenLoop(t), listenLoop(t)
	if _, err := New(Config{Listener: ln, MetricsListener: mln}); err == nil {
		t.Error("New with a metrics listener but no Ops: no error")
	}
	for _, l := range []net.Listener{ln, mln} {
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("listener %s after a failed New: Accept gives %v, want net.ErrClosed", l.Addr(), err)
		}
	}
}

// TestCloseWithoutRun: a host that never runs gives its port back.
func TestCloseWithoutRun(t *testing.T) {
	ln := listenLoop(t)
	addr := ln.Addr().String()
	h, err := New(Config{Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	h.Close() // idempotent
	again, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port still held after Close: %v", err)
	}
	again.Close()
}

// TestOpsEndpoints: with Ops, /healthz and /metrics (from loopback) are
// the server's beside the page; with a metrics listener, /metrics moves
// there; without Ops (a LAN instance) neither is served, only the page.
func TestOpsEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name                string
		ops, metricsOwn     bool
		health, metricsCode int
	}{
		{name: "lanft signal", ops: true, health: 200, metricsCode: 200},
		{name: "metrics listener", ops: true, metricsOwn: true, health: 200, metricsCode: 404},
		{name: "LAN instance", health: 404, metricsCode: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Listener: listenLoop(t), Ops: tc.ops}
			if tc.metricsOwn {
				cfg.MetricsListener = listenLoop(t)
			}
			h, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			runHost(t, h)
			base := "http://" + cfg.Listener.Addr().String()
			if code, body, _ := fetch(t, base+signal.HealthPath); code != tc.health || code == 200 && !strings.Contains(body, "ok") {
				t.Errorf("/healthz: got %d %q, want %d", code, body, tc.health)
			}
			if code, body, _ := fetch(t, base+signal.MetricsPath); code != tc.metricsCode || code == 200 && !strings.Contains(body, "lanft_") {
				t.Errorf("/metrics: got %d %q, want %d", code, body, tc.metricsCode)
			}
			if code, body, csp := fetch(t, base+"/"); code != 200 || csp != web.CSP || !strings.Contains(body, "<html") {
				t.Errorf("/: got %d, CSP %q; want the page", code, csp)
			}
			if tc.metricsOwn {
				mbase := "http://" + cfg.MetricsListener.Addr().String()
				if code, body, _ := fetch(t, mbase+signal.MetricsPath); code != 200 || !strings.Contains(body, "lanft_") {
					t.Errorf("metrics listener /metrics: got %d %q, want 200 with metrics", code, body)
				}
				if code, _, _ := fetch(t, mbase+signal.HealthPath); code != 200 {
					t.Errorf("metrics listener /healthz: got %d, want 200", code)
				}
			}
		})
	}
}

// TestDrainOnCancel: when the host stops (SIGTERM cancels its context), a
// logged-in client is told to log in again elsewhere before its
// connection closes.
func TestDrainOnCancel(t *testing.T) {
	ln := listenLoop(t)
	h, err := New(Config{Listener: ln, Ops: true})
	if err != nil {
		t.Fatal(err)
	}
	cancel := runHost(t, h)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+signal.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteJSON(map[string]string{"type": "login", "name": "alice"}); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Type    string
		Success bool
		Message string
	}
	if err := ws.ReadJSON(&m); err != nil || m.Type != "login" || !m.Success {
		t.Fatalf("login reply %+v, %v", m, err)
	}
	cancel()
	for {
		m.Type = ""
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("connection ended without the draining error: %v", err)
		}
		if m.Type == "error" {
			break
		}
	}
	if m.Message != signal.Draining {
		t.Errorf("error %q, want %q", m.Message, signal.Draining)
	}
}
