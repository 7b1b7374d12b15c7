package pagehttp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"
)

// Purpose is what a capability allows.
type Purpose string

// Purposes, as the page sees them in the "purpose" field of the base message.
const (
	PurposeDownload Purpose = "download" // the CLI holds the files; the page GETs them
	PurposeUpload   Purpose = "upload"   // the page holds them; it POSTs the transfer stream
)

// Config configures a Server. The zero value works.
type Config struct {
	Logger *slog.Logger
	// Idle expires a capability unused this long (default 5 min). A request
	// serving a file keeps its capability alive.
	Idle time.Duration
	// MaxAge bounds a capability's life (default 1 h): after it no new
	// request is taken.
	MaxAge time.Duration
	// MaxBody bounds one POST body (default 8 MiB).
	MaxBody int64
	// Hold bounds how long an upload's POST that starts past what the CLI
	// has waits while the stream does not grow, before it is a gap (409)
	// (default 30 s).
	Hold time.Duration
}

// Defaults and bounds.
const (
	DefaultIdle    = 5 * time.Minute
	DefaultMaxAge  = time.Hour
	DefaultMaxBody = 8 << 20
	DefaultHold    = 30 * time.Second

	// MaxCapabilities bounds the capabilities alive at once in one Server.
	MaxCapabilities = 256
	// MaxRequestsPerCapability bounds one capability's requests in flight.
	MaxRequestsPerCapability = 16
	// MaxRequestsPerAddress bounds one client address's requests in flight.
	MaxRequestsPerAddress = 32
	// MaxConnsPerAddress bounds one client address's open connections,
	// idle or not.
	MaxConnsPerAddress = 64
)

// Errors returned by Download and Upload.
var (
	ErrClosed  = errors.New("pagehttp: the server is closed")
	ErrTooMany = errors.New("pagehttp: too many pages are being served at once; try again when one has finished")
)

// Grant says to whom and where a capability is given.
type Grant struct {
	Local  netip.Addr // address to listen on: the ICE route's local host address
	Peer   netip.Addr // the only client address allowed: the route's remote address
	Origin string     // the only Origin allowed, e.g. "http://10.0.0.1:7300"
}

func (g Grant) check() error {
	if !g.Local.IsValid() || g.Local.IsUnspecified() {
		return fmt.Errorf("pagehttp: no local address to listen on (%v)", g.Local)
	}
	if !g.Peer.IsValid() || g.Peer.IsUnspecified() {
		return fmt.Errorf("pagehttp: no peer address to serve (%v)", g.Peer)
	}
	return checkOrigin(g.Origin)
}

// checkOrigin accepts a serialized web origin: scheme, host and port only.
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.String() != o {
		return fmt.Errorf("pagehttp: %q is not a web origin such as http://10.0.0.1:7300", o)
	}
	return nil
}

// Server serves capabilities on listeners made when first needed, one per
// local address. One Server per process; it is safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	closed    bool
	listeners map[netip.Addr]*listener
	caps      map[[sha256.Size]byte]*Capability
	perAddr   map[netip.Addr]int // requests in flight per client address
	conns     map[net.Conn]netip.Addr
	connsPer  map[netip.Addr]int // open connections per client address
	wg        sync.WaitGroup     // listeners' Serve goroutines and requests in flight
}

// New returns a Server; it listens on nothing until a capability needs it.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Hold <= 0 {
		cfg.Hold = DefaultHold
	}
	return &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		listeners: make(map[netip.Addr]*listener),
		caps:      make(map[[sha256.Size]byte]*Capability),
		perAddr:   make(map[netip.Addr]int),
		conns:     make(map[net.Conn]netip.Addr),
		connsPer:  make(map[netip.Addr]int),
	}
}

// Close revokes every capability (ending downloads and streams), closes
// the listeners and their connections, and waits for the requests in
// flight to return. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	caps := make([]*Capability, 0, len(s.caps))
	for _, c := range s.caps {
		caps = append(caps, c)
	}
	lns := s.listeners
	s.listeners = nil
	s.mu.Unlock()
	for _, c := range caps {
		c.end(errRevoked)
	}
	var errs []error
	for _, l := range lns {
		errs = append(errs, l.srv.Close())
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// listener is one local address's HTTP server.
type listener struct {
	host string // the listener's literal ip:port, the only Host accepted
	srv  *http.Server
}

// listenerFor returns the listener on local, made if needed. s.mu is held.
func (s *Server) listenerFor(local netip.Addr) (*listener, error) {
	if l := s.listeners[local]; l != nil {
		return l, nil
	}
	ln, err := net.Listen("tcp", netip.AddrPortFrom(local, 0).String())
	if err != nil {
		return nil, fmt.Errorf("pagehttp: listen on %v: %w", local, err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	l := &listener{host: netip.AddrPortFrom(ap.Addr().WithZone(""), ap.Port()).String()}
	l.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(l, w, r) }),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnState:         s.connState,
	}
	s.listeners[local] = l
	s.wg.Go(func() {
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("page listener stopped", "addr", l.host, "err", err)
		}
	})
	s.log.Debug("page listener ready", "addr", l.host)
	return l, nil
}

// mint registers a new capability for g; init fills in its purpose's
// fields before any request can see it.
func (s *Server) mint(ctx context.Context, g Grant, p Purpose, init func(*Capability)) (*Capability, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	var raw [32]byte
	rand.Read(raw[:])
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if len(s.caps) >= MaxCapabilities {
		return nil, ErrTooMany
	}
	l, err := s.listenerFor(g.Local)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	c := &Capability{
		URL:     "http://" + l.host + "/c/" + token + "/",
		Expires: now.Add(s.cfg.MaxAge),
		s:       s,
		key:     sha256.Sum256([]byte(token)),
		purpose: p,
		peer:    g.Peer.Unmap().WithZone(""),
		origin:  g.Origin,
		host:    l.host,
		idle:    s.cfg.Idle,
		last:    now,
		done:    make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	init(c)
	c.mu.Lock() // the timer and ctx may fire at once
	c.timer = time.AfterFunc(min(s.cfg.Idle, s.cfg.MaxAge), c.checkExpiry)
	c.stopCtx = context.AfterFunc(ctx, func() { c.end(errRevoked) })
	c.mu.Unlock()
	s.caps[c.key] = c
	s.log.Debug("capability minted", "purpose", p, "addr", l.host, "peer", c.peer)
	return c, nil
}

// forget removes c once it has ended.
func (s *Server) forget(c *Capability) {
	s.mu.Lock()
	if s.caps[c.key] == c {
		delete(s.caps, c.key)
	}
	s.mu.Unlock()
}

// lookup returns the live capability of token, or nil.
func (s *Server) lookup(token string) *Capability {
	k := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.caps[k]
}

// enterAddr counts a request of addr, for the bound per address and for
// Close to wait for; it reports false past the bound or once closed.
func (s *Server) enterAddr(addr netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.perAddr[addr] >= MaxRequestsPerAddress {
		return false
	}
	s.perAddr[addr]++
	s.wg.Add(1)
	return true
}

func (s *Server) leaveAddr(addr netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAddr[addr]--; s.perAddr[addr] <= 0 {
		delete(s.perAddr, addr)
	}
	s.wg.Done()
}

// connState bounds the open connections of each client address: one past
// the bound is closed before a byte is read from it.
func (s *Server) connState(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil {
			c.Close()
			return
		}
		addr := ap.Addr().Unmap().WithZone("")
		s.mu.Lock()
		over := s.connsPer[addr] >= MaxConnsPerAddress
		if !over {
			s.connsPer[addr]++
			s.conns[c] = addr
		}
		s.mu.Unlock()
		if over {
			c.Close()
		}
	case http.StateClosed, http.StateHijacked:
		s.mu.Lock()
		if addr, ok := s.conns[c]; ok {
			delete(s.conns, c)
			if s.connsPer[addr]--; s.connsPer[addr] <= 0 {
				delete(s.connsPer, addr)
			}
		}
		s.mu.Unlock()
	}
}
