package signal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// Path is where the WebSocket endpoint is served.
const Path = "/ws"

// Config holds the server's limits. The zero value of each field selects the
// default named beside it.
type Config struct {
	Logger *slog.Logger
	// MaxClients caps open WebSocket connections (4096). Past it an upgrade
	// is answered with 503.
	MaxClients int
	// MaxConnsPerAddr caps the connections from one address (512: a LAN
	// host's web page bridges up to 256 browsers from its own address).
	// Past it an upgrade is answered with 429 and the reason, and so it is
	// when the host is half full and the address holds the most
	// connections, or three quarters full and the address has more than
	// a few (see admission.go). An address is the client's IP (with
	// TrustProxy, from X-Forwarded-For), for IPv6 its /64 unless that is
	// the server's own.
	MaxConnsPerAddr int
	// MaxUsersPerAddr caps the users logged in to one room from one
	// address (256, as many as a LAN host's web page bridges). A refused
	// login gets login success false and an error that says why.
	MaxUsersPerAddr int
	// MaxRoomBytes bounds a room's user list, the userlist message, as
	// encoded (2 MiB, at most half of QueueBytes). Past half of it the
	// address holding the most of it is refused first; past three
	// quarters only addresses with a few users get in.
	MaxRoomBytes int
	// LoginTimeout is how long a new connection may take to log in (10s).
	LoginTimeout time.Duration
	// QueueSize and QueueBytes bound each client's outbound queue, in
	// messages (8192) and bytes (4 MiB). A client whose queue is full is a
	// slow reader and is disconnected; nobody else waits for it. The queue
	// grows as needed, so an idle client costs little. One sender address
	// may fill at most an eighth of it: past that its relayed messages are
	// refused with an error saying the receiver is busy (see queue.go).
	QueueSize  int
	QueueBytes int
	// Rate and Burst limit the messages one connection may send (100/s, burst 400).
	Rate  float64
	Burst int
	// PingInterval is how often the server pings (20s); a client that
	// answers neither ping nor anything else for two intervals is dropped.
	PingInterval time.Duration
	// WriteTimeout bounds one frame write (10s).
	WriteTimeout time.Duration
	// ReadHeaderTimeout bounds how long Serve waits for the headers of a
	// request (5s): a slowloris client is cut off after it.
	ReadHeaderTimeout time.Duration
	// AllowedHosts are extra Host header names accepted besides IP literals,
	// "localhost" and names under ".local" (the DNS-rebinding guard). A
	// remote host reached by a domain name lists it here.
	AllowedHosts []string
	// AllowedOrigins are extra browser origins ("https://example.org") that
	// may open the WebSocket besides same-host ones.
	AllowedOrigins []string
	// ICE, when set, gives every logged-in client its ICE servers (STUN,
	// TURN with short-lived credentials) in the additive "lanft" object of
	// the login reply, and again every ICERefresh (30m) while it stays.
	// A CallICEProvider's login servers can allocate nothing: the client
	// asks for one call's (a fresh TURN credential) before each connection
	// attempt, at most CallBurst at once and CallRate a second after
	// (DefaultCallBurst, DefaultCallRate), and they are not refreshed.
	ICE        ICEProvider
	ICERefresh time.Duration
	CallRate   float64
	CallBurst  int
	// TrustProxy takes a client's address from the last X-Forwarded-For
	// entry (set by a reverse proxy in front) instead of the connection's.
	// Only the TURN relay's permissions use the address.
	TrustProxy bool
	// Cluster, when set, makes this server one node of a service: names
	// are claimed and users reached across every node (internal/cluster).
	// Without it the server's own memory is the whole state, as on a LAN.
	Cluster Cluster
	// Ready, when set, tells the health endpoint whether this node serves
	// logins (a cluster node that lost its lease does not); Metrics adds
	// lines to the metrics endpoint.
	Ready   func() bool
	Metrics func(io.Writer)
	// Relay, when set, hands out TCP relay tokens to pairs of users who
	// ask for each other (relay.go).
	Relay RelayIssuer
	// MetricsToken, when set, is the bearer token GET /metrics asks for
	// (Authorization: Bearer TOKEN). Without it, /metrics on Handler
	// answers only requests from loopback that no proxy forwarded; see
	// MetricsHandler for a listener of its own.
	MetricsToken string
}

// ICEProvider hands a client logged in to room its ICE servers.
type ICEProvider interface {
	ICEServers(room string) []ICEServer
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxClients == 0 {
		c.MaxClients = 4096
	}
	if c.MaxConnsPerAddr == 0 {
		c.MaxConnsPerAddr = 512
	}
	if c.MaxUsersPerAddr == 0 {
		c.MaxUsersPerAddr = 256
	}
	if c.LoginTimeout == 0 {
		c.LoginTimeout = 10 * time.Second
	}
	if c.QueueSize == 0 {
		c.QueueSize = 8192
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = 4 << 20
	}
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.Burst == 0 {
		c.Burst = 400
	}
	if c.PingInterval == 0 {
		c.PingInterval = 20 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 5 * time.Second
	}
	if c.ICERefresh == 0 {
		c.ICERefresh = 30 * time.Minute
	}
	if c.MaxRoomBytes == 0 {
		c.MaxRoomBytes = min(2<<20, c.QueueBytes/2)
	}
	return c
}

// Server is a signaling server: an http.Handler for the WebSocket endpoint.
type Server struct {
	cfg      Config
	upgrader websocket.Upgrader

	mu        sync.Mutex
	conns     map[*conn]struct{} // every open connection
	addrs     pool               // the connections, by address
	rooms     roomSet            // who is logged in, room by room
	closed    bool
	closing   chan struct{} // closed by Close: ends the calls that outlive a drain (release)
	closeOnce sync.Once
	draining  bool // Drain was called: refuse new connections
	wg        sync.WaitGroup

	tcpRelay           relayBook // requests for a TCP relay (relay.go)
	relays, errorsSent atomic.Uint64
	relayRate          rateWindow // under mu
}

// NewServer validates cfg and returns a server that accepts nothing until
// it is used as a handler or run with Serve.
func NewServer(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.MaxClients < 0 || cfg.QueueSize < 0 || cfg.QueueBytes < 0 || cfg.Rate < 0 || cfg.Burst < 0 ||
		cfg.MaxConnsPerAddr < 0 || cfg.MaxUsersPerAddr < 0 || cfg.MaxRoomBytes < 0 {
		return nil, errors.New("signal: negative limit in config")
	}
	if err := cfg.checkRoomBytes(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		conns:   make(map[*conn]struct{}),
		rooms:   newRoomSet(),
		closing: make(chan struct{}),
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 5 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		WriteBufferPool:  &sync.Pool{},
		CheckOrigin:      s.checkOrigin,
	}
	return s, nil
}

// Handler returns the HTTP routes of a signaling host: the WebSocket at
// Path (and its rooms below it, see RoomFromPath) and a plain-text page at
// "/" that says what this is.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Path, s)
	mux.Handle(Path+"/", s)
	mux.HandleFunc(HealthPath, s.serveHealth)
	mux.HandleFunc(MetricsPath, s.serveMetrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "lanft signaling host: WebSocket at %s\n", Path)
	})
	return mux
}

// Serve answers HTTP on ln until ctx is cancelled, then closes every
// connection. It returns nil on a clean cancel.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.ServeWith(ctx, ln, s.Handler())
}

// ServeWith is Serve with h in front of the server (the web page's
// handler, which hands WebSocket upgrades on to s).
func (s *Server) ServeWith(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout, // slowloris
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug),
		// Requests end with ctx: a login waiting on the cluster is cut short.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("signal: serve: %w", err)
	case <-ctx.Done():
	}
	s.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	<-errc
	// The drained clients' names are freed in the cluster (drop) within
	// the same grace, before Close cuts what is left short.
	s.waitConns(shutdownCtx)
	s.Close()
	return nil
}

// Close disconnects every client and waits for their goroutines. It is
// idempotent; a closed server refuses new connections.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	for _, c := range s.stop(&s.closed) {
		c.close()
	}
	s.wg.Wait()
	return nil
}

// waitConns waits until every connection's goroutine has ended, or ctx.
func (s *Server) waitConns(ctx context.Context) {
	done := make(chan struct{})
	go func() { // ends once Close has closed what is left
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// stop sets flag (closed or draining), so that no connection is accepted
// any more, and returns the connections there are.
func (s *Server) stop(flag *bool) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	*flag = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// Users returns the names logged in to the default room now, in login order.
func (s *Server) Users() []string { return s.RoomUsers(DefaultRoom) }

// RoomUsers returns the names logged in to room now, in login order.
func (s *Server) RoomUsers(room string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms.names(room)
}

// RoomAddrs returns the addresses the users logged in to room connect
// from (what a TURN relay of this host may send to).
func (s *Server) RoomAddrs(room string) []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms.addrs(room)
}

// ServeHTTP upgrades to a WebSocket and runs the connection until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.checkHost(r.Host) {
		http.Error(w, "signal: host name not accepted", http.StatusMisdirectedRequest)
		return
	}
	roomName, ok := RoomFromPath(r.URL.Path)
	if !ok {
		http.Error(w, "signal: no such room: a room name has letters, digits, '-' and '_' (at most 64)", http.StatusNotFound)
		return
	}
	c := &conn{srv: s, user: user{room: roomName, addr: s.clientAddr(r)}, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	c.from = keyOf(c.addr, localAddr(r))
	s.mu.Lock()
	if s.closed || s.draining {
		s.mu.Unlock()
		refuseHTTP(w, http.StatusServiceUnavailable, &ServerError{CodeShuttingDown, "signal: " + Draining})
		return
	}
	if len(s.conns) >= s.cfg.MaxClients {
		s.mu.Unlock()
		refuseHTTP(w, http.StatusServiceUnavailable, &ServerError{CodeServerFull, "signal: too many clients"})
		return
	}
	if refused := s.admitConnLocked(c.from); refused != nil {
		s.mu.Unlock()
		s.cfg.Logger.Debug("signal: connection refused", "remote", r.RemoteAddr, "why", refused.Message)
		refuseHTTP(w, http.StatusTooManyRequests, refused)
		return
	}
	s.conns[c] = struct{}{}
	s.addrs.add(c.from, 1)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer s.drop(r.Context(), c)

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.cfg.Logger.Debug("signal: upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c.ws = ws
	c.limiter = rate.NewLimiter(rate.Limit(s.cfg.Rate), s.cfg.Burst)
	c.remote = r.RemoteAddr
	c.run(r.Context())
}

// drop forgets c and tells the others in its room it went offline.
func (s *Server) drop(ctx context.Context, c *conn) {
	c.close()
	if s.cfg.Cluster != nil && c.rev != 0 {
		// The name is free everywhere before anyone hears it went offline.
		s.release(ctx, c.presence())
	}
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.addrs.remove(c.from, 1)
	}
	r := s.rooms.leave(c)
	if r != nil {
		s.broadcastLocked(r, c, Message{Type: TypeUpdata, Action: ActionOffline, Name: c.name})
	}
	s.mu.Unlock()
	if r != nil {
		s.cfg.Logger.Info("signal: user offline", "name", c.name, "room", c.room)
	}
}

// releaseTimeout bounds freeing a name in the cluster.
const releaseTimeout = 5 * time.Second

// release frees p's name in the cluster. It outlives ctx's cancel (the
// connection's, or a drain's: a name left held would keep a ghost user in
// the room on every node) for releaseTimeout at most, and ends with Close.
func (s *Server) release(ctx context.Context, p Presence) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	ctx, stop := stopContext(ctx, s.closing)
	defer stop()
	s.cfg.Cluster.Release(ctx, p)
}

// stopContext is ctx, cancelled also when stop is closed. Its goroutine
// ends with cancel, which the caller defers.
func stopContext(ctx context.Context, stop <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// broadcastLocked queues m for every local user of r but except (the users
// of other nodes hear it from their own). The message is encoded once; a
// recipient whose queue is full is dropped.
func (s *Server) broadcastLocked(r *room, except member, m Message) {
	b, err := Encode(m)
	if err != nil {
		s.cfg.Logger.Error("signal: broadcast", "err", err)
		return
	}
	for _, o := range r.order {
		if c, ok := o.(*conn); ok && o != except {
			c.enqueue(b)
		}
	}
}
