package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
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

	mu     sync.Mutex
	closed bool
	conns  map[*websocket.Conn]struct{}
	wg     sync.WaitGroup
}

// maxDownFrame bounds a frame from the host: a userlist carries every
// user's meta and may exceed signal.MaxMessageSize.
const maxDownFrame = 4 << 20

func newBridge(up Upstream, dial func(ctx context.Context, network, addr string) (net.Conn, error), log *slog.Logger) *bridge {
	return &bridge{up: up, log: log, conns: map[*websocket.Conn]struct{}{},
		dialer: websocket.Dialer{NetDialContext: dial, HandshakeTimeout: bridgeDialTimeout},
		upgrader: websocket.Upgrader{
			HandshakeTimeout: 5 * time.Second,
			// The handler checked Origin and Host (signal.Server.Admits).
			CheckOrigin: func(*http.Request) bool { return true },
		}}
}

func (b *bridge) track(cs ...*websocket.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	for _, c := range cs {
		b.conns[c] = struct{}{}
	}
	b.wg.Add(1)
	return true
}

func (b *bridge) untrack(cs ...*websocket.Conn) {
	b.mu.Lock()
	for _, c := range cs {
		delete(b.conns, c)
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Done()
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

	done := make(chan struct{}, 2)
	var wg sync.WaitGroup
	wg.Go(func() { pipe(up, page); done <- struct{}{} })
	wg.Go(func() { pipe(page, up); done <- struct{}{} })
	select {
	case <-done:
	case <-stale:
		b.log.Info("web: signaling host changed; closing the page's connection so that it logs in to the new one")
		msg := websocket.FormatCloseMessage(websocket.CloseServiceRestart, "signaling host changed")
		_ = page.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	}
	page.Close()
	up.Close()
	wg.Wait()
}

// pipe copies text frames from src to dst until either fails.
func pipe(dst, src *websocket.Conn) {
	for {
		t, data, err := src.ReadMessage()
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
