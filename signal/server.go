package signal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/lanft/lanft/internal/cluster"
	"github.com/lanft/lanft/names"
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
	// MetricsToken, when set, is the bearer token GET /metrics asks for
	// (Authorization: Bearer TOKEN). Without it, /metrics on Handler
	// answers only requests from loopback that no proxy forwarded; see
	// MetricsHandler for a listener of its own.
	MetricsToken string
}

// Cluster is what a server needs from the other nodes of its service;
// *cluster.Cluster is one. The server hands its cluster.Handler
// (ClusterHandler) to the cluster's Run.
type Cluster interface {
	// Claim takes p's folded name in p.Room for this node (atomically
	// across nodes) and announces the login; *cluster.TakenError if held.
	Claim(ctx context.Context, p cluster.Presence) (rev uint64, err error)
	// Release frees the name of a local user who left, and announces it.
	Release(ctx context.Context, p cluster.Presence)
	// Relay hands an encoded message to the node of user to in room.
	Relay(room, to string, msg []byte) error
	// Lookup asks the shared state who holds key in room.
	Lookup(ctx context.Context, room, key string) (cluster.Presence, bool)
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

	mu       sync.Mutex
	conns    map[*conn]struct{} // every open connection
	addrs    pool               // the connections, by address
	rooms    roomSet            // who is logged in, room by room
	closed   bool
	draining bool // Drain was called: refuse new connections
	wg       sync.WaitGroup

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
		cfg:   cfg,
		conns: make(map[*conn]struct{}),
		rooms: newRoomSet(),
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
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	<-errc
	s.Close()
	return nil
}

// Close disconnects every client and waits for their goroutines. It is
// idempotent; a closed server refuses new connections.
func (s *Server) Close() error {
	for _, c := range s.stop(&s.closed) {
		c.close()
	}
	s.wg.Wait()
	return nil
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

// Admits reports whether r passes the Host and Origin checks of the
// WebSocket, for handlers in front of the server.
func (s *Server) Admits(r *http.Request) bool { return s.checkHost(r.Host) && s.checkOrigin(r) }

// checkOrigin admits non-browser clients (no Origin header), same-host
// pages and configured origins. A page on another site must not log in.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// checkHost guards against DNS rebinding: a name that resolves to this host
// by an attacker's DNS is not one of ours.
func (s *Server) checkHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil || strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".local") {
		return true
	}
	for _, h := range s.cfg.AllowedHosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
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
	c := &conn{srv: s, room: roomName, addr: s.clientAddr(r), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	c.from = keyOf(c.addr, localAddr(r))
	s.mu.Lock()
	if s.closed || s.draining || len(s.conns) >= s.cfg.MaxClients {
		s.mu.Unlock()
		http.Error(w, "signal: too many clients", http.StatusServiceUnavailable)
		return
	}
	if why := s.admitConnLocked(c.from); why != "" {
		s.mu.Unlock()
		s.cfg.Logger.Debug("signal: connection refused", "remote", r.RemoteAddr, "why", why)
		http.Error(w, why, http.StatusTooManyRequests)
		return
	}
	s.conns[c] = struct{}{}
	s.addrs.add(c.from, 1)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer s.drop(c)

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.cfg.Logger.Debug("signal: upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c.ws = ws
	c.limiter = rate.NewLimiter(rate.Limit(s.cfg.Rate), s.cfg.Burst)
	c.remote = r.RemoteAddr
	c.run()
}

// clientAddr is the address a client connects from: the connection's, or
// with TrustProxy the last X-Forwarded-For entry (the one the proxy added).
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	if s.cfg.TrustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if a, err := netip.ParseAddr(strings.TrimSpace(parts[len(parts)-1])); err == nil {
				return a.Unmap()
			}
		}
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// drop forgets c and tells the others in its room it went offline.
func (s *Server) drop(c *conn) {
	c.close()
	if s.cfg.Cluster != nil && c.rev != 0 {
		// The name is free everywhere before anyone hears it went offline.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.cfg.Cluster.Release(ctx, c.presence())
		cancel()
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

// broadcastLocked queues m for every user of r but except. The message is
// encoded once; a recipient whose queue is full is dropped.
func (s *Server) broadcastLocked(r *room, except *conn, m Message) {
	b, err := Encode(m)
	if err != nil {
		s.cfg.Logger.Error("signal: broadcast", "err", err)
		return
	}
	for _, o := range r.order {
		if o != except && o.node == "" {
			o.enqueue(b)
		}
	}
}

// conn is one client connection. Only its own goroutines touch ws: the
// handler goroutine reads, the writer goroutine writes.
type conn struct {
	srv     *Server
	ws      *websocket.Conn
	limiter *rate.Limiter

	qmu    sync.Mutex
	queue  [][]byte // outbound messages, oldest first
	qbytes int
	wake   chan struct{} // capacity 1: the queue has something
	remote string
	room   string     // from the URL path, fixed before the connection runs
	addr   netip.Addr // where the client connects from (see clientAddr)
	from   addrKey    // what the per-address limits count addr as
	// senders holds the relayed messages in queue by sender (under qmu).
	senders map[addrKey]holding
	// cost is what the user weighs in its room's user list (userCost),
	// set at login.
	cost int

	// name, key, meta and rev are set once at login, under srv.mu.
	name string
	key  string
	meta json.RawMessage
	rev  uint64 // the cluster's claim revision (0 without a cluster)
	// node is the node holding the connection of a user logged in
	// elsewhere in the cluster: such a conn has no socket and is only a
	// room entry. "" for this server's own clients.
	node string
	// relayAddr is the TURN relay address of node, for its users.
	relayAddr netip.Addr
	// calls limits the call credentials handed to this client (callICE).
	calls *rate.Limiter

	closeOnce   sync.Once
	done        chan struct{}
	lastLimited time.Time
}

func (c *conn) close() {
	c.closeOnce.Do(func() { close(c.done) })
}

func (c *conn) run() {
	cfg := c.srv.cfg
	var wg sync.WaitGroup
	wg.Go(c.writeLoop)
	defer wg.Wait()
	defer c.close()

	c.ws.SetReadLimit(MaxMessageSize)
	_ = c.ws.SetReadDeadline(time.Now().Add(cfg.LoginTimeout))
	alive := 3 * cfg.PingInterval
	// A client's own pings prove it alive too (lanft clients ping every
	// few seconds, so a vanished client is noticed quickly).
	c.ws.SetPingHandler(func(data string) error {
		if c.key != "" {
			_ = c.ws.SetReadDeadline(time.Now().Add(alive))
		}
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(cfg.WriteTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	c.ws.SetPongHandler(func(string) error {
		if c.key != "" {
			return c.ws.SetReadDeadline(time.Now().Add(alive))
		}
		return nil
	})
	// Unblock the read when the connection is closed from elsewhere.
	stop := make(chan struct{})
	defer close(stop)
	wg.Go(func() {
		select {
		case <-c.done:
			_ = c.ws.SetReadDeadline(time.Now())
		case <-stop:
		}
	})

	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				cfg.Logger.Debug("signal: read", "name", c.name, "remote", c.remote, "err", err)
			}
			return
		}
		if !c.limiter.Allow() {
			if time.Since(c.lastLimited) > time.Second {
				c.lastLimited = time.Now()
				c.sendError("rate limit exceeded: message dropped")
			}
			continue
		}
		if c.key != "" {
			_ = c.ws.SetReadDeadline(time.Now().Add(alive))
		}
		if kind != websocket.TextMessage {
			c.sendError("binary frames are not part of the protocol: send JSON text frames")
			continue
		}
		m, err := Decode(data)
		if err != nil {
			c.sendError(err.Error())
			continue
		}
		c.handle(m)
	}
}

func (c *conn) writeLoop() {
	cfg := c.srv.cfg
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	// Fresh ICE credentials before the old ones expire, for a client that
	// stays logged in for hours (a share).
	var refresh <-chan time.Time
	if refreshes(cfg.ICE) {
		t := time.NewTicker(cfg.ICERefresh)
		defer t.Stop()
		refresh = t.C
	}
	defer c.ws.Close()
	for {
		select {
		case <-refresh:
			c.srv.mu.Lock()
			loggedIn := c.key != ""
			c.srv.mu.Unlock()
			if loggedIn {
				c.sendMsg(Message{Type: TypeLanft, Meta: c.srv.loginInfo(c.room)})
			}
		case <-c.wake:
			for _, b := range c.takeQueue() {
				_ = c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
				if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
					c.close()
					return
				}
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
				c.close()
				return
			}
		case <-c.done:
			// Flush what is queued (a final error or login reply), briefly.
			deadline := time.Now().Add(time.Second)
			for _, b := range c.takeQueue() {
				_ = c.ws.SetWriteDeadline(deadline)
				if c.ws.WriteMessage(websocket.TextMessage, b) != nil {
					return
				}
			}
			_ = c.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
			return
		}
	}
}

func (c *conn) sendMsg(m Message) {
	b, err := Encode(m)
	if err != nil {
		c.srv.cfg.Logger.Error("signal: encode reply", "err", err)
		return
	}
	c.enqueue(b)
}

func (c *conn) sendError(text string) {
	c.srv.errorsSent.Add(1)
	c.sendMsg(Message{Type: TypeError, Message: text})
}

func (c *conn) handle(m Message) {
	switch m.Type {
	case TypeLogin:
		c.login(m)
	case TypeOffer, TypeAnswer, TypeCandidate, TypeLeave:
		c.relay(m)
	case TypeLanft:
		c.callICE(m)
	default:
		c.sendError(fmt.Sprintf("unknown message type %q", m.Type))
	}
}

func (c *conn) login(m Message) {
	s := c.srv
	fail := func(why string) {
		c.sendMsg(Message{Type: TypeLogin, Success: boolPtr(false), Message: why})
		c.sendError("login failed: " + why)
	}
	if c.key != "" {
		c.sendError(fmt.Sprintf("already logged in as %q", c.name))
		return
	}
	if err := CheckName(m.Name); err != nil {
		fail(err.Error())
		return
	}
	if len(m.Meta) > MaxMetaSize || len(m.Meta) > 0 && !isJSONObject(m.Meta) {
		fail(fmt.Sprintf("the \"lanft\" field must be a JSON object of at most %d bytes", MaxMetaSize))
		return
	}
	key := names.Key(m.Name)
	taken := func(holder string) {
		if holder == m.Name {
			fail(fmt.Sprintf("name %q is taken", m.Name))
		} else {
			fail(fmt.Sprintf("name %q is too close to %q, who is online", m.Name, holder))
		}
	}
	// A name is free when it is one name (names.Same) with nobody in the
	// room. In a cluster the claim is atomic for its names.Key only; the
	// other keys are checked against the room as this node knows it (its
	// own users and the other nodes' users it has heard of), so two
	// look-alikes with different Keys (bob, ВОВ) logging in on two nodes
	// within the time a login takes to reach the other node both get in.
	var rev uint64
	if s.cfg.Cluster != nil {
		s.mu.Lock()
		other := s.rooms.closeTo(c.room, m.Name)
		why := s.admitLoginLocked(c, userCost(m.Name, m.Meta))
		s.mu.Unlock()
		if other != nil {
			taken(other.name)
			return
		}
		if why != "" {
			fail(why) // before claiming the name across the cluster
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
		var err error
		rev, err = s.cfg.Cluster.Claim(ctx, cluster.Presence{Room: c.room, Key: key, Name: m.Name, Meta: m.Meta, Addr: c.addr})
		cancel()
		var te *cluster.TakenError
		if errors.As(err, &te) {
			taken(te.Holder)
			return
		}
		if err != nil {
			s.cfg.Logger.Warn("signal: claim a name in the cluster", "name", m.Name, "err", err)
			fail("this signaling node cannot reach the rest of the service now: try again")
			return
		}
	}
	cost := userCost(m.Name, m.Meta)
	s.mu.Lock()
	if why := s.admitLoginLocked(c, cost); why != "" {
		s.mu.Unlock()
		if rev != 0 {
			s.cfg.Cluster.Release(context.Background(), cluster.Presence{Room: c.room, Key: key, Name: m.Name, Rev: rev})
		}
		s.cfg.Logger.Debug("signal: login refused", "name", m.Name, "room", c.room, "remote", c.remote, "why", why)
		fail(why)
		return
	}
	if other := s.rooms.lookup(c.room, m.Name); other != nil && rev != 0 && other.node != "" && other.rev < rev {
		// The cluster gave us the name: whoever held it before is
		// gone, only its logout has not arrived yet.
		s.leaveLocked(other)
	}
	if other := s.rooms.closeTo(c.room, m.Name); other != nil {
		s.mu.Unlock()
		if rev != 0 {
			s.cfg.Cluster.Release(context.Background(), cluster.Presence{Room: c.room, Key: key, Name: m.Name, Rev: rev})
		}
		taken(other.name)
		return
	}
	c.name, c.key, c.meta, c.rev, c.cost = m.Name, key, m.Meta, rev, cost
	r := s.rooms.join(c)
	users := make([]string, len(r.order))
	peers := make([]PeerInfo, len(r.order))
	for i, o := range r.order {
		users[i] = o.name
		peers[i] = PeerInfo{Name: o.name, Meta: o.meta}
	}
	// Queue the reply and the list before anyone else can relay to c, so
	// that c always hears "login" first.
	c.sendMsg(Message{Type: TypeLogin, Success: boolPtr(true), Meta: s.loginInfo(c.room)})
	c.sendMsg(Message{Type: TypeUserlist, Users: users, Peers: peers})
	s.broadcastLocked(r, c, Message{Type: TypeUpdata, Action: ActionLogin, Name: c.name, Meta: c.meta})
	s.mu.Unlock()
	_ = c.ws.SetReadDeadline(time.Now().Add(2*s.cfg.PingInterval + s.cfg.WriteTimeout))
	s.cfg.Logger.Info("signal: user online", "name", c.name, "room", c.room, "remote", c.remote)
}

// relay forwards offer, answer, candidate and leave to othername, stamped
// with the sender's logged-in name whatever name the message claims.
func (c *conn) relay(m Message) {
	if c.key == "" {
		c.sendError(fmt.Sprintf("log in before sending %q", m.Type))
		return
	}
	if m.OtherName == "" {
		c.sendError(fmt.Sprintf("%q needs \"othername\"", m.Type))
		return
	}
	out := Message{Type: m.Type, Name: c.name}
	var payload json.RawMessage
	switch m.Type {
	case TypeOffer:
		payload, out.Offer = m.Offer, m.Offer
	case TypeAnswer:
		payload, out.Answer = m.Answer, m.Answer
	case TypeCandidate:
		payload, out.Candidate = m.Candidate, m.Candidate
	}
	// The additive "lanft" object of an offer or answer (lanft's proof of
	// identity) or of a leave (a signed refusal) travels with it untouched.
	if m.Type != TypeCandidate && len(m.Meta) <= MaxMetaSize && isJSONObject(m.Meta) {
		out.Meta = m.Meta
	}
	if m.Type != TypeLeave && !isJSONObject(payload) {
		c.sendError(fmt.Sprintf("%q needs an object in %q", m.Type, m.Type))
		return
	}
	s := c.srv
	s.relays.Add(1)
	s.mu.Lock()
	s.relayRate.add(time.Now().Unix())
	to := s.rooms.lookup(c.room, m.OtherName)
	if to != nil && to.name == m.OtherName {
		b, err := Encode(out)
		if err == nil {
			if to.node == "" {
				if !to.enqueueRelay(c.from, b) {
					s.mu.Unlock()
					c.sendError(fmt.Sprintf("cannot send %q to %q now: %q is busy reading what you sent before; try again in a moment",
						m.Type, m.OtherName, m.OtherName))
					return
				}
			} else {
				c.relayRemote(m.OtherName, b)
			}
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if s.cfg.Cluster != nil && to == nil {
		// A login this node has not heard of yet: the shared state knows.
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
		p, ok := s.cfg.Cluster.Lookup(ctx, c.room, names.Key(m.OtherName))
		cancel()
		if ok && p.Name == m.OtherName {
			if b, err := Encode(out); err == nil {
				c.relayRemote(m.OtherName, b)
			}
			return
		}
	}
	c.sendError(fmt.Sprintf("cannot send %q: no user %q is online", m.Type, m.OtherName))
}

// relayRemote hands b to the node of user to.
func (c *conn) relayRemote(to string, b []byte) {
	if err := c.srv.cfg.Cluster.Relay(c.room, to, b); err != nil {
		c.srv.cfg.Logger.Warn("signal: relay to another node", "to", to, "err", err)
	}
}
