package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lanft/lanft/signal"
)

// bridge connects a page's WebSocket to the elected host's, frame by
// frame, for as long as that host stays elected. When it changes (or
// either side goes), both connections close; the page logs in again and
// is bridged to the new host. The host applies its own limits to what the
// page sends; the bridge bounds frame sizes on both legs.
type bridge struct {
	up       Upstream
	log      *slog.Logger
	upgrader websocket.Upgrader
	dialer   websocket.Dialer
	ping     time.Duration // keepalive on the page's leg
	max      int           // pages bridged at once

	mu     sync.Mutex
	closed bool
	pages  int // bridged or being set up
	conns  map[*websocket.Conn]struct{}
	wg     sync.WaitGroup
}

// maxDownFrame bounds a frame from the host: a userlist carries every
// user's meta and may exceed signal.MaxMessageSize.
const maxDownFrame = 4 << 20

func newBridge(cfg Config) *bridge {
	return &bridge{up: cfg.Upstream, log: cfg.Logger, ping: cfg.PingInterval, max: cfg.MaxPages,
		conns:  map[*websocket.Conn]struct{}{},
		dialer: websocket.Dialer{NetDialContext: cfg.Dial, HandshakeTimeout: bridgeDialTimeout},
		upgrader: websocket.Upgrader{
			HandshakeTimeout: 5 * time.Second,
			// The handler checked Origin and Host (signal.Server.Admits).
			CheckOrigin: func(*http.Request) bool { return true },
		}}
}

// reserve takes a page slot; false when closed or full.
func (b *bridge) reserve() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.pages >= b.max {
		return false
	}
	b.pages++
	b.wg.Add(1)
	return true
}

func (b *bridge) release() {
	b.mu.Lock()
	b.pages--
	b.mu.Unlock()
	b.wg.Done()
}

// track registers live connections for close; false once closed.
func (b *bridge) track(cs ...*websocket.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	for _, c := range cs {
		b.conns[c] = struct{}{}
	}
	return true
}

func (b *bridge) untrack(cs ...*websocket.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range cs {
		delete(b.conns, c)
		c.Close()
	}
}

func (b *bridge) close() {
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *bridge) serve(w http.ResponseWriter, r *http.Request) {
	if !b.reserve() {
		http.Error(w, "web: too many pages connected", http.StatusServiceUnavailable)
		return
	}
	defer b.release()
	ctx, cancel := context.WithTimeout(r.Context(), bridgeDialTimeout)
	defer cancel()
	url, stale, err := b.up.Host(ctx)
	var up *websocket.Conn
	if err == nil {
		var resp *http.Response
		up, resp, err = b.dialer.DialContext(ctx, url, nil)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
	}
	if err != nil {
		b.log.Info("web: no signaling host for a page", "err", err)
		http.Error(w, "web: no signaling host reachable yet; the page retries", http.StatusServiceUnavailable)
		return
	}
	page, err := b.upgrader.Upgrade(w, r, nil)
	if err != nil {
		up.Close()
		return
	}
	if !b.track(page, up) {
		page.Close()
		up.Close()
		return
	}
	defer b.untrack(page, up)
	b.log.Debug("web: page bridged", "page", r.RemoteAddr, "host", url)
	page.SetReadLimit(signal.MaxMessageSize)
	up.SetReadLimit(maxDownFrame)
	// A page that answers no ping for two intervals is gone. Browsers
	// answer pings by themselves.
	alive := func() { _ = page.SetReadDeadline(time.Now().Add(2*b.ping + time.Second)) }
	alive()
	page.SetPongHandler(func(string) error { alive(); return nil })

	done := make(chan struct{}, 3)
	var wg sync.WaitGroup
	wg.Go(func() { pipe(up, page, alive); done <- struct{}{} })
	wg.Go(func() { pipe(page, up, func() {}); done <- struct{}{} })
	ticker := time.NewTicker(b.ping)
	defer ticker.Stop()
	for stop := false; !stop; {
		select {
		case <-ticker.C:
			stop = page.WriteControl(websocket.PingMessage, nil, time.Now().Add(b.ping)) != nil
		case <-done:
			stop = true
		case <-stale:
			b.log.Info("web: signaling host changed; closing the page's connection so that it logs in to the new one")
			msg := websocket.FormatCloseMessage(websocket.CloseServiceRestart, "signaling host changed")
			_ = page.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			stop = true
		}
	}
	page.Close()
	up.Close()
	wg.Wait()
}

// pipe copies text frames from src to dst until either fails, calling
// read after every frame read.
func pipe(dst, src *websocket.Conn, read func()) {
	for {
		t, data, err := src.ReadMessage()
		read()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				_ = dst.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(ce.Code, ce.Text), time.Now().Add(time.Second))
			}
			return
		}
		if t != websocket.TextMessage {
			continue
		}
		_ = dst.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := dst.WriteMessage(t, data); err != nil {
			return
		}
	}
}
