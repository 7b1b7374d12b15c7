package pagehttp

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/lanft/lanft/transfer"
)

// Why a capability ended, as Err reports it.
var (
	errRevoked = errors.New("pagehttp: the page's access was revoked")
	errExpired = errors.New("pagehttp: the page's access expired; start the transfer again")
)

// Capability is one page's access to one download or upload.
type Capability struct {
	// URL is the base the page appends names to; it ends in "/".
	URL string
	// Expires is when the capability ends at the latest (MaxAge).
	Expires time.Time

	s       *Server
	key     [sha256.Size]byte
	purpose Purpose
	peer    netip.Addr
	origin  string
	host    string
	idle    time.Duration
	stopCtx func() bool
	ctx     context.Context // cancelled when the capability ends
	cancel  context.CancelCauseFunc

	// download
	src      *transfer.Source
	manifest []byte // src's MANIFEST JSON
	report   func(DownloadProgress)
	repMu    sync.Mutex // serialises report
	// upload
	stream *Stream

	mu     sync.Mutex
	ended  bool
	err    error
	active int       // requests in flight that keep it alive
	inUse  int       // requests in flight
	last   time.Time // when it was last used
	timer  *time.Timer
	done   chan struct{}
}

// Revoke ends the capability now: requests in flight stop, new ones are
// refused. It is idempotent.
func (c *Capability) Revoke() { c.end(errRevoked) }

// Done is closed when the capability expired or was revoked.
func (c *Capability) Done() <-chan struct{} { return c.done }

// Err says why the capability ended (nil while it lives).
func (c *Capability) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Purpose returns what the capability allows.
func (c *Capability) Purpose() Purpose { return c.purpose }

func (c *Capability) end(why error) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	c.err = why
	c.timer.Stop()
	stopCtx := c.stopCtx
	c.mu.Unlock()
	stopCtx()
	c.cancel(why)
	c.s.forget(c)
	if c.stream != nil {
		c.stream.fail(why)
	}
	close(c.done)
	c.s.log.Debug("capability ended", "purpose", c.purpose, "why", why)
}

// deadline is when c expires if nothing happens. c.mu is held.
func (c *Capability) deadline() time.Time {
	if c.active > 0 {
		return c.Expires
	}
	return minTime(c.last.Add(c.idle), c.Expires)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// checkExpiry runs when the timer fires: it ends c or sets the timer again.
func (c *Capability) checkExpiry() {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	left := time.Until(c.deadline())
	if left > 0 {
		c.timer.Reset(left)
		c.mu.Unlock()
		return
	}
	aged := !time.Now().Before(c.Expires)
	c.mu.Unlock()
	if c.stream != nil && !aged {
		c.end(errIdle(c.idle))
		return
	}
	c.end(errExpired)
}

// enter admits a request; keepAlive says whether it holds off idle
// expiry while in flight. It reports false when c ended, expired or is busy.
func (c *Capability) enter(keepAlive bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.ended || !now.Before(c.deadline()) || c.inUse >= MaxRequestsPerCapability {
		return false
	}
	c.inUse++
	if keepAlive {
		c.active++
	}
	c.last = now
	return true
}

func (c *Capability) leave(keepAlive bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inUse--
	if keepAlive {
		c.active--
	}
	c.touchLocked()
}

// touch records use, as a stream's bytes moving.
func (c *Capability) touch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.touchLocked()
}

func (c *Capability) touchLocked() {
	c.last = time.Now()
	if !c.ended && c.active == 0 {
		c.timer.Reset(time.Until(c.deadline()))
	}
}

// refuse is every refusal: an empty 404, whatever the reason.
func refuse(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Length", "0")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
}

// refuse refuses r, logging why at debug level.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, why string) {
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "page request refused", slog.String("why", why),
			slog.String("method", r.Method), slog.String("remote", r.RemoteAddr))
	}
	refuse(w)
}

// empty answers status with no body (for a valid capability).
func empty(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

// serve checks a request and hands it to its capability's handler.
func (s *Server) serve(l *listener, w http.ResponseWriter, r *http.Request) {
	if r.Host != l.host {
		s.refuse(w, r, "Host is not the listener's address")
		return
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		s.refuse(w, r, "no client address")
		return
	}
	peer := ap.Addr().Unmap().WithZone("")
	if !s.enterAddr(peer) {
		s.refuse(w, r, "too many requests from the address, or closed")
		return
	}
	defer s.leaveAddr(peer)
	token, name, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		s.refuse(w, r, "not a capability path")
		return
	}
	c := s.lookup(token)
	origin, hasOrigin := r.Header["Origin"]
	switch {
	case c == nil:
		s.refuse(w, r, "unknown or ended token")
		return
	case c.host != l.host || c.peer != peer:
		s.refuse(w, r, "token granted to another address")
		return
	case hasOrigin && (len(origin) != 1 || origin[0] != c.origin):
		s.refuse(w, r, "another Origin")
		return
	}
	if r.Method == http.MethodOptions {
		c.preflight(w, r, name, hasOrigin)
		return
	}
	route, ok := c.route(r.Method, name)
	if !ok || (route.needsOrigin && !hasOrigin) {
		s.refuse(w, r, "not a request of the token's purpose")
		return
	}
	if !c.enter(route.keepAlive) {
		s.refuse(w, r, "expired or too many requests")
		return
	}
	defer c.leave(route.keepAlive)
	h := w.Header()
	if hasOrigin {
		h.Set("Access-Control-Allow-Origin", c.origin)
		h.Set("Access-Control-Expose-Headers", "Content-Disposition, Content-Length, Content-Range, ETag, X-Lanft-Have")
	}
	h.Set("Vary", "Origin")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	if route.flushesOnEnd {
		route.serve(r.Context(), w, r)
		return
	}
	ctx, stop := mergeCancel(r.Context(), c.ctx)
	defer stop()
	defer cutOnEnd(c.ctx, w)()
	route.serve(ctx, w, r.WithContext(ctx))
}

// cutOnEnd makes the connection's blocked reads and writes fail when ctx
// ends (a revoked or expired capability), so that a request stalled on a
// page that stopped reading ends too. Call the returned func before the
// handler returns.
func cutOnEnd(ctx context.Context, w http.ResponseWriter) (stop func()) {
	rc := http.NewResponseController(w)
	var mu sync.Mutex
	returned, cut := false, false
	stopHook := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !returned {
			cut = true
			now := time.Now()
			rc.SetWriteDeadline(now)
			rc.SetReadDeadline(now)
		}
	})
	return func() {
		stopHook()
		mu.Lock()
		defer mu.Unlock()
		returned = true
		if cut {
			// A write the deadline failed closes the connection; one that
			// did not happen leaves it fit for the page's next request.
			rc.SetWriteDeadline(time.Time{})
		}
	}
}

// splitPath splits "/c/TOKEN/name" into its token and name.
func splitPath(p string) (token, name string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/c/")
	if !ok {
		return "", "", false
	}
	token, name, ok = strings.Cut(rest, "/")
	return token, name, ok && len(token) == 43
}

// A route is one name a capability answers.
type route struct {
	serve       func(ctx context.Context, w http.ResponseWriter, r *http.Request)
	needsOrigin bool // fetch sends Origin on these; a request without it is not the page's
	keepAlive   bool // in flight, it holds off idle expiry
	// flushesOnEnd: the capability's end does not cut it; it ends itself
	// once it has sent what is left (the stream's last bytes, as an ERROR).
	flushesOnEnd bool
}

// route returns the handler of method and name for c's purpose.
func (c *Capability) route(method, name string) (route, bool) {
	get := method == http.MethodGet || method == http.MethodHead
	if name == "hello" && get {
		return route{serve: func(_ context.Context, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}}, true
	}
	switch c.purpose {
	case PurposeDownload:
		switch {
		case !get:
		case name == "manifest":
			return route{serve: c.serveManifest}, true
		case name == "zip":
			return route{serve: c.serveZip, keepAlive: true}, true
		case strings.HasPrefix(name, "f/"):
			i, ok := parseIndex(name[2:])
			if !ok {
				return route{}, false
			}
			return route{serve: func(ctx context.Context, w http.ResponseWriter, r *http.Request) {
				c.serveFile(ctx, w, r, i)
			}, keepAlive: true}, true
		}
	case PurposeUpload:
		switch {
		case name == "up" && method == http.MethodPost:
			return route{serve: c.stream.serveUp, needsOrigin: true, keepAlive: true}, true
		case name == "down" && method == http.MethodGet:
			return route{serve: c.stream.serveDown, needsOrigin: true, flushesOnEnd: true}, true
		}
	}
	return route{}, false
}

// parseIndex parses a canonical decimal entry index.
func parseIndex(s string) (int, bool) {
	if s == "" || len(s) > 7 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for _, b := range []byte(s) {
		if b < '0' || b > '9' {
			return 0, false
		}
		n = n*10 + int(b-'0')
	}
	return n, true
}

// preflight answers a CORS preflight for a route c has.
func (c *Capability) preflight(w http.ResponseWriter, r *http.Request, name string, hasOrigin bool) {
	method := r.Header.Get("Access-Control-Request-Method")
	if _, ok := c.route(method, name); !ok || !hasOrigin || !c.alive() {
		refuse(w)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", c.origin)
	h.Set("Access-Control-Allow-Methods", method)
	h.Set("Access-Control-Allow-Headers", "Content-Type, Range, If-Range")
	h.Set("Access-Control-Max-Age", "600")
	if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
		h.Set("Access-Control-Allow-Private-Network", "true")
	}
	h.Set("Vary", "Origin")
	empty(w, http.StatusNoContent)
}

func (c *Capability) alive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.ended && time.Now().Before(c.deadline())
}

// mergeCancel returns a context of a that is cancelled when b is too.
func mergeCancel(a, b context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(a)
	stop := context.AfterFunc(b, func() { cancel(context.Cause(b)) })
	return ctx, func() { stop(); cancel(nil) }
}
