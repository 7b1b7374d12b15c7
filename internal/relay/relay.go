// Package relay is lanft's TCP relay: a server that splices two TCP
// connections from two clients of one room that hold the two halves of a
// one-time token pair, and the client's Dial. The relay never dials
// anything; it only joins connections that came to it.
//
// The signaling server hands out the pair (Server.Issue) when two logged-in
// clients of one room ask for a relay to each other (signal/relay.go). Each
// client then connects and presents its half:
//
//	client A                     relay                      client B
//	  ── Magic (8) + token A (32) ─▶                              │
//	                               (waits up to PairTimeout)      │
//	                               ◀── Magic (8) + token B (32) ──
//	  ◀── 'K' ─────────────────────  ─────────────────────── 'K' ─▶
//	  ══════════════ bytes, spliced both ways, shaped ═════════════
//
// A token is 32 random bytes, bound to its room, its user, the peer and an
// expiry, and works once. The server answers a refusal with one status byte
// (StatusRefused, StatusBusy, StatusTimeout) and closes: no byte from the
// other side is ever relayed to a connection that was not paired. A
// connection that does not present a token within HandshakeTimeout is
// closed. The peers run their own TLS 1.3 session over the spliced
// connection (internal/direct): the relay sees ciphertext only. A
// connection arrives plain (Serve, or Sniff on a shared listener) or as an
// HTTP upgrade that crosses TLS and proxies (UpgradeHandler, DialURL).
package relay

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Magic starts every relay connection. Its first byte (NUL) never starts
// an HTTP request or a TLS record, so a listener can tell a relay
// connection from the signaling server's (Sniff).
const Magic = "\x00LANFTR1"

// TokenLen is the length of a token.
const TokenLen = 32

// Status bytes, the server's only words.
const (
	StatusPaired  = 'K' // the partner is here: what follows is the partner's bytes
	StatusRefused = 'R' // unknown, spent, expired or malformed token
	StatusBusy    = 'B' // past a limit (relays in all, per client)
	StatusTimeout = 'T' // the partner did not come in time
)

// Token is one half of a pair.
type Token [TokenLen]byte

// Errors that callers branch on.
var (
	// ErrRefused: the relay refused the token.
	ErrRefused = errors.New("relay: the relay refused the token (unknown, already used or expired)")
	// ErrBusy: the relay is at one of its limits.
	ErrBusy = errors.New("relay: the relay is busy (too many relays); try again later")
	// ErrNoPartner: the peer did not connect to the relay in time.
	ErrNoPartner = errors.New("relay: the peer did not reach the relay in time")
	// ErrClosed: the server is closed.
	ErrClosed = errors.New("relay: closed")
)

// Config are a Server's limits. The zero value of each field is its
// default.
type Config struct {
	// Rate shapes each relay, each way, in bytes per second: a faster
	// sender waits (TCP pushes back), nothing is dropped. 0: no limit.
	Rate float64
	// MaxRelays caps the relays at once (256), MaxPerClient those of one
	// user of one room (4). Past them a pair is not issued, or a paired
	// connection gets StatusBusy.
	MaxRelays    int
	MaxPerClient int
	// MaxHandshakes caps connections that have not presented a token yet
	// (4096), a quarter of them from one address; past it new ones are
	// closed at once. Each is closed after HandshakeTimeout (5s) anyway.
	MaxHandshakes    int
	HandshakeTimeout time.Duration
	// TokenTTL is how long an issued pair can be used (30s); PairTimeout
	// how long the first half waits for the second (10s).
	TokenTTL    time.Duration
	PairTimeout time.Duration
	// IdleTimeout ends a relay that moved no byte either way for this long
	// (2m); MaxDuration ends any relay after this long (24h).
	IdleTimeout time.Duration
	MaxDuration time.Duration
	// Started, when set, is told of every relay that starts (a LAN
	// instance shows its user that it relays) and Ended when it ends.
	Started func(Relayed)
	Ended   func(Relayed, Stats)
	Logger  *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxRelays, 256)
	def(&c.MaxPerClient, 4)
	def(&c.MaxHandshakes, 4096)
	defD(&c.HandshakeTimeout, 5*time.Second)
	defD(&c.TokenTTL, 30*time.Second)
	defD(&c.PairTimeout, 10*time.Second)
	defD(&c.IdleTimeout, 2*time.Minute)
	defD(&c.MaxDuration, 24*time.Hour)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Relayed names the two users of a relay.
type Relayed struct {
	Room string
	A, B string
}

// Stats are a relay's or the server's figures.
type Stats struct {
	// Relays counts relays started; Active those running now.
	Relays, Active uint64
	// Bytes relayed, both ways together.
	Bytes uint64
	// Refused counts connections and requests refused, by reason.
	Refused map[string]uint64
}

// Reasons of a refusal, the keys of Stats.Refused.
const (
	RefusedNoToken   = "no_token"   // not a relay connection, or nothing sent in time
	RefusedUnknown   = "unknown"    // a token never issued (forged)
	RefusedSpent     = "spent"      // used before (replayed, or a third client)
	RefusedExpired   = "expired"    // past TokenTTL
	RefusedBusy      = "busy"       // at MaxRelays or MaxPerClient
	RefusedNoPartner = "no_partner" // the other half never came
	RefusedFull      = "full"       // at MaxHandshakes
)

var reasons = []string{RefusedNoToken, RefusedUnknown, RefusedSpent, RefusedExpired, RefusedBusy, RefusedNoPartner, RefusedFull}

// Server is a relay. New validates; Serve (or a Sniff listener) hands it
// connections; Close ends every relay.
type Server struct {
	cfg Config
	wg  sync.WaitGroup

	handshakes atomic.Int64
	perAddr    map[netip.Addr]int // handshakes by remote address, under mu
	relays     atomic.Uint64
	bytes      atomic.Uint64
	refused    map[string]*atomic.Uint64

	mu      sync.Mutex
	closed  bool
	tickets map[Token]*ticket
	active  int
	perUser map[userKey]int
	conns   map[net.Conn]struct{} // every connection the server holds
}

type userKey struct{ room, user string }

// ticket is one half of an issued pair.
type ticket struct {
	user    userKey
	peer    string
	expires time.Time
	used    bool
	pair    *pair
}

// pair is what two tickets share: where the first arrival waits.
type pair struct {
	room      string
	a, b      string
	waiting   bool          // the first half arrived and waits
	delivered bool          // the second half was handed to it
	dead      bool          // the first half gave up: the pair is spent
	arrived   chan net.Conn // buffered 1: the second half
}

// New returns a relay server with cfg's limits.
func New(cfg Config) (*Server, error) {
	if cfg.Rate < 0 || cfg.MaxRelays < 0 || cfg.MaxPerClient < 0 || cfg.MaxHandshakes < 0 {
		return nil, errors.New("relay: negative limit in config")
	}
	s := &Server{cfg: cfg.withDefaults(), refused: make(map[string]*atomic.Uint64),
		tickets: make(map[Token]*ticket), perUser: make(map[userKey]int), conns: make(map[net.Conn]struct{}),
		perAddr: make(map[netip.Addr]int)}
	for _, r := range reasons {
		s.refused[r] = new(atomic.Uint64)
	}
	return s, nil
}

// Issue mints a token pair for users a and b of room: a's half and b's.
// It refuses (ErrBusy) when a relay for either would be past a limit.
func (s *Server) Issue(room, a, b string) (ta, tb Token, err error) {
	if _, err := rand.Read(ta[:]); err != nil {
		return ta, tb, fmt.Errorf("relay: token: %w", err)
	}
	if _, err := rand.Read(tb[:]); err != nil {
		return ta, tb, fmt.Errorf("relay: token: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ta, tb, ErrClosed
	}
	now := time.Now()
	s.pruneLocked(now)
	ka, kb := userKey{room, a}, userKey{room, b}
	if s.active >= s.cfg.MaxRelays || s.perUser[ka] >= s.cfg.MaxPerClient || s.perUser[kb] >= s.cfg.MaxPerClient ||
		len(s.tickets) >= 2*s.cfg.MaxRelays*s.cfg.MaxPerClient {
		s.refused[RefusedBusy].Add(1)
		return ta, tb, ErrBusy
	}
	p := &pair{room: room, a: a, b: b, arrived: make(chan net.Conn, 1)}
	exp := now.Add(s.cfg.TokenTTL)
	s.tickets[ta] = &ticket{user: ka, peer: b, expires: exp, pair: p}
	s.tickets[tb] = &ticket{user: kb, peer: a, expires: exp, pair: p}
	return ta, tb, nil
}

// pruneLocked forgets tickets past their expiry (a spent ticket is kept
// until then, so that a replay is told apart from a forgery).
func (s *Server) pruneLocked(now time.Time) {
	for tok, t := range s.tickets {
		if now.After(t.expires) {
			delete(s.tickets, tok)
		}
	}
}

// Stats are the server's figures so far.
func (s *Server) Stats() Stats {
	st := Stats{Relays: s.relays.Load(), Bytes: s.bytes.Load(), Refused: make(map[string]uint64)}
	for r, n := range s.refused {
		st.Refused[r] = n.Load()
	}
	s.mu.Lock()
	st.Active = uint64(s.active)
	s.mu.Unlock()
	return st
}

// Serve accepts relay connections from ln until ln is closed or ctx ends;
// it returns nil then. Use Sniff instead to share a listener with HTTP.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("relay: accept: %w", err)
		}
		s.ServeConn(c, nil)
	}
}

// ServeConn serves one connection whose first bytes (the start of Magic,
// already read from it) are in head. It returns at once; the connection is
// the server's from then on.
func (s *Server) ServeConn(c net.Conn, head []byte) {
	if s.handshakes.Add(1) > int64(s.cfg.MaxHandshakes) {
		s.handshakes.Add(-1)
		s.refused[RefusedFull].Add(1)
		c.Close()
		return
	}
	from := remoteAddr(c)
	if !s.hold(c, from) {
		s.handshakes.Add(-1)
		s.refused[RefusedFull].Add(1)
		c.Close()
		return
	}
	s.wg.Go(func() { s.handshake(c, head, from) })
}

// remoteAddr is c's remote IP (invalid when it has none, as on a pipe).
func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// hold records c as the server's (Close closes it) and counts its
// handshake against its address; false once closed, or with the address
// at its share.
func (s *Server) hold(c net.Conn, from netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.perAddr[from] >= max(s.cfg.MaxHandshakes/4, 1) {
		return false
	}
	s.perAddr[from]++
	s.conns[c] = struct{}{}
	return true
}

// handshook ends c's handshake's count.
func (s *Server) handshook(from netip.Addr) {
	s.handshakes.Add(-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAddr[from]--; s.perAddr[from] <= 0 {
		delete(s.perAddr, from)
	}
}

func (s *Server) release(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// handshake reads the token and pairs c, or refuses it.
func (s *Server) handshake(c net.Conn, head []byte, from netip.Addr) {
	tok, err := s.readToken(c, head)
	s.handshook(from)
	if err != nil {
		s.refused[RefusedNoToken].Add(1)
		s.cfg.Logger.Debug("relay: connection without a token", "remote", c.RemoteAddr(), "err", err)
		s.release(c)
		return
	}
	t, reason := s.spend(tok)
	if reason != "" {
		s.refuse(c, reason)
		return
	}
	s.pairUp(c, t)
}

// readToken reads Magic and a token within HandshakeTimeout.
func (s *Server) readToken(c net.Conn, head []byte) (Token, error) {
	var tok Token
	c.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	buf := make([]byte, len(Magic)+TokenLen)
	n := copy(buf, head)
	if _, err := io.ReadFull(c, buf[n:]); err != nil {
		return tok, err
	}
	if subtle.ConstantTimeCompare(buf[:len(Magic)], []byte(Magic)) != 1 {
		return tok, errors.New("no relay magic")
	}
	copy(tok[:], buf[len(Magic):])
	return tok, nil
}

// spend marks tok used and returns its ticket, or the reason it is refused.
func (s *Server) spend(tok Token) (*ticket, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tickets[tok]
	switch {
	case t == nil:
		return nil, RefusedUnknown
	case t.used || t.pair.dead:
		return nil, RefusedSpent
	case time.Now().After(t.expires):
		return nil, RefusedExpired
	}
	t.used = true
	return t, ""
}

// refuse answers c with the status of reason and closes it.
func (s *Server) refuse(c net.Conn, reason string) {
	s.refused[reason].Add(1)
	st := byte(StatusRefused)
	switch reason {
	case RefusedBusy:
		st = StatusBusy
	case RefusedNoPartner:
		st = StatusTimeout
	}
	s.cfg.Logger.Info("relay: refused a connection", "remote", c.RemoteAddr(), "reason", reason)
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte{st})
	s.release(c)
}

// pairUp hands c to its partner if it waits, or waits for it.
func (s *Server) pairUp(c net.Conn, t *ticket) {
	p := t.pair
	s.mu.Lock()
	if p.waiting {
		p.delivered = true
		s.mu.Unlock()
		p.arrived <- c // buffered: the waiter takes it
		return
	}
	p.waiting = true
	s.mu.Unlock()
	c.SetReadDeadline(time.Time{})
	wait := time.NewTimer(min(s.cfg.PairTimeout, time.Until(t.expires)+time.Second))
	defer wait.Stop()
	var other net.Conn
	select {
	case other = <-p.arrived:
	case <-wait.C:
		s.mu.Lock()
		if !p.delivered {
			p.dead = true
		}
		s.mu.Unlock()
		if p.delivered {
			other = <-p.arrived
		}
	}
	if other == nil {
		s.refuse(c, RefusedNoPartner)
		return
	}
	s.splice(c, other, p)
}

// admit counts a relay of p in, or reports that it is past a limit.
func (s *Server) admit(p *pair) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ka, kb := userKey{p.room, p.a}, userKey{p.room, p.b}
	if s.closed || s.active >= s.cfg.MaxRelays || s.perUser[ka] >= s.cfg.MaxPerClient || s.perUser[kb] >= s.cfg.MaxPerClient {
		return false
	}
	s.active++
	s.perUser[ka]++
	s.perUser[kb]++
	return true
}

func (s *Server) leave(p *pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	for _, k := range []userKey{{p.room, p.a}, {p.room, p.b}} {
		if s.perUser[k]--; s.perUser[k] <= 0 {
			delete(s.perUser, k)
		}
	}
}

// Close ends every relay and connection and waits for them. It is
// idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Run waits for ctx to end, then closes the server: every long-lived part
// has a Run.
func (s *Server) Run(ctx context.Context) error {
	<-ctx.Done()
	return s.Close()
}

// shaper is one direction's token bucket: it delays, never drops.
func (s *Server) shaper() *rate.Limiter {
	if s.cfg.Rate == 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(s.cfg.Rate), burst(s.cfg.Rate))
}

// burst is the bucket's size: a tenth of a second at rate, at least one
// read's worth.
func burst(r float64) int { return max(int(r/10), 64<<10) }

// chunk is the most one read moves without a rate.
const chunk = 256 << 10
