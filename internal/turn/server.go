package turn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/stun/v4"
	pionturn "github.com/pion/turn/v5"

	"github.com/lanft/lanft/rtc"
	"github.com/lanft/lanft/signal"
)

// Directory tells the relay who may be sent to: the addresses the clients
// logged in to a room connect from, by how the signaling server knows them
// (see reachable). The signaling server is one.
type Directory interface {
	RoomPeerAddrs(room string) signal.PeerAddrs
}

// Config configures a Server. PacketConn (STUN and TURN over UDP) or
// Listener (TURN over TCP), or both, must be set; the caller opens them.
type Config struct {
	PacketConn net.PacketConn
	Listener   net.Listener
	// PublicIP is the address relays are announced at (the server's
	// address as clients reach it). Required.
	PublicIP netip.Addr
	// PublicHost is the name or address in the URLs handed to clients
	// (default: PublicIP).
	PublicHost string
	// RelayIP is the local address relay sockets bind to (default:
	// PublicIP; set it when PublicIP is a NAT's, such as a cloud VM's).
	RelayIP netip.Addr
	// MinPort and MaxPort bound the relay ports (49152-65535).
	MinPort, MaxPort uint16
	// Secret signs credentials (default: random, NewSecret).
	Secret []byte
	// TTL is how long a fresh credential can allocate (DefaultTTL).
	TTL time.Duration
	// MaxAllocations per credential (DefaultMaxAllocations: one call's
	// gathering, a UDP and a TCP relay per local network); Rate in bytes
	// per second per credential, each way, shaped by delay (DefaultRate;
	// negative: no limit).
	MaxAllocations int
	Rate           int
	Directory      Directory
	Logger         *slog.Logger
	// STUNOnly answers STUN and refuses every allocation (--no-turn).
	STUNOnly bool
	// ListenPacket opens relay sockets (net.ListenPacket; tests open them
	// inside a network namespace).
	ListenPacket func(network, addr string) (net.PacketConn, error)
}

// DefaultRate is a credential's relay rate each way, in bytes a second:
// 1 Gbit/s, a server's link, so that one client cannot take all of a
// bigger one's. The relay shapes by delay (shape.go), so a rate that binds
// slows a transfer to it without costing it retransmissions.
const DefaultRate = 125_000_000

// Server is the STUN/TURN server. New validates; Run serves.
type Server struct {
	cfg Config
	own []netip.Addr // the host's own addresses (never relayed to)

	mu       sync.Mutex
	tags     map[string]tagEntry       // RoomTag -> room, filled as credentials are issued
	byClient map[string]string         // client transport address -> room
	allocSrc map[string]string         // an allocation's client transport address -> room
	relays   map[netip.AddrPort]string // live relay address -> room
	allocs   map[string]int            // username -> live allocations
	limiters map[string]*limits        // username -> relay rate, each way
}

// New checks cfg; it opens nothing.
func New(cfg Config) (*Server, error) {
	if cfg.PacketConn == nil && cfg.Listener == nil {
		return nil, errors.New("turn: neither a UDP socket nor a TCP listener")
	}
	if !cfg.PublicIP.IsValid() || cfg.PublicIP.IsUnspecified() {
		return nil, errors.New("turn: no public address: set the address clients reach this host at")
	}
	if cfg.Directory == nil {
		return nil, errors.New("turn: no directory of logged-in clients")
	}
	if cfg.PublicHost == "" {
		cfg.PublicHost = cfg.PublicIP.String()
	}
	if !cfg.RelayIP.IsValid() {
		cfg.RelayIP = cfg.PublicIP
	}
	if cfg.MinPort == 0 {
		cfg.MinPort = 49152
	}
	if cfg.MaxPort == 0 {
		cfg.MaxPort = 65535
	}
	if cfg.MinPort > cfg.MaxPort {
		return nil, fmt.Errorf("turn: relay port range %d-%d is empty", cfg.MinPort, cfg.MaxPort)
	}
	if len(cfg.Secret) == 0 {
		cfg.Secret = NewSecret()
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxAllocations == 0 {
		cfg.MaxAllocations = DefaultMaxAllocations
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ListenPacket == nil {
		cfg.ListenPacket = net.ListenPacket
	}
	s := &Server{
		cfg:      cfg,
		own:      ownAddrs(),
		tags:     make(map[string]tagEntry),
		byClient: make(map[string]string),
		allocSrc: make(map[string]string),
		relays:   make(map[netip.AddrPort]string),
		allocs:   make(map[string]int),
		limiters: make(map[string]*limits),
	}
	s.own = append(s.own, cfg.PublicIP.Unmap(), cfg.RelayIP.Unmap())
	if cfg.PacketConn != nil {
		bigBuffers(cfg.PacketConn)
	}
	return s, nil
}

// ownAddrs lists the addresses of this host's interfaces.
func ownAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

// tagEntry is a room a credential was issued for, and when the last one was.
type tagEntry struct {
	room   string
	issued time.Time
}

// maxTags bounds the rooms remembered; past it, rooms without a credential
// issued for TTL+1h are forgotten (a room gets one at each call; a running
// allocation's refreshes need its room's tag, so it is kept an hour more).
const maxTags = 10000

// Credentials issues a credential for a client of room.
func (s *Server) Credentials(room string, now time.Time) Credential {
	tag := RoomTag(s.cfg.Secret, room)
	s.mu.Lock()
	if len(s.tags) >= maxTags {
		for t, e := range s.tags {
			if now.Sub(e.issued) > s.cfg.TTL+time.Hour {
				delete(s.tags, t)
			}
		}
	}
	if e, ok := s.tags[tag]; !ok || now.After(e.issued) {
		s.tags[tag] = tagEntry{room: room, issued: now}
	}
	s.mu.Unlock()
	return Issue(s.cfg.Secret, room, s.cfg.TTL, now)
}

// roomOf returns the room of a credential's tag.
func (s *Server) roomOf(tag string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.tags[tag]
	return e.room, ok
}

// ICEServers is what a login reply carries: this server as STUN, and no
// credential (signal.CallICEProvider): a login alone can allocate nothing.
func (s *Server) ICEServers(string) []signal.ICEServer {
	if s.cfg.PacketConn == nil {
		return nil
	}
	return []signal.ICEServer{{URLs: []string{"stun:" + hostPort(s.cfg.PublicHost, portOf(s.cfg.PacketConn.LocalAddr()))}}}
}

// CallICEServers gives a client of room, about to make one call, this
// server as STUN and TURN (UDP and TCP, as configured) with a fresh
// credential: valid TTL for allocating, MaxAllocations allocations.
func (s *Server) CallICEServers(room string) []signal.ICEServer {
	out := s.ICEServers(room)
	if s.cfg.STUNOnly {
		return out
	}
	c := s.Credentials(room, time.Now())
	var turnURLs []string
	if s.cfg.PacketConn != nil {
		turnURLs = append(turnURLs, "turn:"+hostPort(s.cfg.PublicHost, portOf(s.cfg.PacketConn.LocalAddr()))+"?transport=udp")
	}
	if s.cfg.Listener != nil {
		turnURLs = append(turnURLs, "turn:"+hostPort(s.cfg.PublicHost, portOf(s.cfg.Listener.Addr()))+"?transport=tcp")
	}
	return append(out, signal.ICEServer{URLs: turnURLs, Username: c.Username, Credential: c.Password})
}

// ICEServers makes External a signal.CallICEProvider: the login gets its
// stun: URLs, as they are.
func (e External) ICEServers(string) []signal.ICEServer {
	stunURLs, _ := e.split()
	if len(stunURLs) == 0 {
		return nil
	}
	return []signal.ICEServer{{URLs: stunURLs}}
}

// CallICEServers gives one call the stun: URLs and the turn: ones with a
// fresh credential.
func (e External) CallICEServers(room string) []signal.ICEServer {
	out := e.ICEServers(room)
	if _, turnURLs := e.split(); len(turnURLs) > 0 {
		c := e.Credentials(room, time.Now())
		out = append(out, signal.ICEServer{URLs: turnURLs, Username: c.Username, Credential: c.Password})
	}
	return out
}

// split sorts e.URLs into STUN and TURN ones.
func (e External) split() (stunURLs, turnURLs []string) {
	for _, u := range e.URLs {
		if strings.HasPrefix(u, "stun:") || strings.HasPrefix(u, "stuns:") {
			stunURLs = append(stunURLs, u)
		} else {
			turnURLs = append(turnURLs, u)
		}
	}
	return stunURLs, turnURLs
}

func portOf(a net.Addr) int {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.Port
	case *net.TCPAddr:
		return a.Port
	}
	return 0
}

// Run serves until ctx is cancelled, then closes the sockets it was given
// and every allocation. It returns nil on a clean cancel.
func (s *Server) Run(ctx context.Context) error {
	gen := &relayGen{s: s}
	sc := pionturn.ServerConfig{
		Realm:         Realm,
		AuthHandler:   s.auth,
		QuotaHandler:  s.quota,
		LoggerFactory: rtc.PionLogs(s.cfg.Logger),
		EventHandler: pionturn.EventHandler{
			OnAllocationCreated: s.allocated,
			OnAllocationDeleted: s.deleted,
		},
	}
	if s.cfg.PacketConn != nil {
		sc.PacketConnConfigs = []pionturn.PacketConnConfig{{
			PacketConn: batched(s.cfg.PacketConn), RelayAddressGenerator: gen, PermissionHandler: s.permit,
		}}
	}
	if s.cfg.Listener != nil {
		sc.ListenerConfigs = []pionturn.ListenerConfig{{
			Listener: s.cfg.Listener, RelayAddressGenerator: gen, PermissionHandler: s.permit,
		}}
	}
	srv, err := pionturn.NewServer(sc)
	if err != nil {
		return fmt.Errorf("turn: start: %w", err)
	}
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		s.cfg.Logger.Debug("turn: close", "err", err)
	}
	return nil
}

// auth checks a REST credential. Allocate needs one that has not expired;
// the other methods (refresh, permission, channel bind) of an allocation
// made in time accept it after expiry, so a running relay is not cut.
func (s *Server) auth(ra *pionturn.RequestAttributes) (string, []byte, bool) {
	if s.cfg.STUNOnly {
		return "", nil, false
	}
	exp, tag, err := parseUsername(ra.Username)
	if err != nil {
		return "", nil, false
	}
	room, known := s.roomOf(tag)
	if !known {
		// Not issued by this host since it started (another host's secret
		// gives another tag, so it lands here too).
		s.cfg.Logger.Debug("turn: unknown credential", "from", ra.SrcAddr)
		return "", nil, false
	}
	if ra.Method == stun.MethodAllocate && time.Now().After(exp) {
		s.cfg.Logger.Debug("turn: expired credential", "from", ra.SrcAddr)
		return "", nil, false
	}
	s.mu.Lock()
	s.byClient[ra.SrcAddr.String()] = room
	s.mu.Unlock()
	return ra.Username, pionturn.GenerateAuthKey(ra.Username, ra.Realm, Password(s.cfg.Secret, ra.Username)), true
}

func (s *Server) quota(user, _ string, _ net.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allocs[user] < s.cfg.MaxAllocations
}

func (s *Server) allocated(src, _ net.Addr, _, user, _ string, relay net.Addr, _ int) {
	ap, err := netip.ParseAddrPort(relay.String())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allocs[user]++
	if room, ok := s.byClient[src.String()]; ok && err == nil {
		s.relays[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = room
		s.allocSrc[src.String()] = room
	}
}

func (s *Server) deleted(src, _ net.Addr, _, user, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.allocs[user]--; s.allocs[user] <= 0 {
		delete(s.allocs, user)
		delete(s.limiters, user)
	}
	delete(s.byClient, src.String())
	delete(s.allocSrc, src.String())
}

// forgetRelay is called when a relay socket closes.
func (s *Server) forgetRelay(ap netip.AddrPort) {
	s.mu.Lock()
	delete(s.relays, ap)
	s.mu.Unlock()
}

// permit is Pion's permission handler: may the client at clientAddr's
// allocation exchange datagrams with peer?
func (s *Server) permit(clientAddr net.Addr, peer net.IP) bool {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	s.mu.Lock()
	room, known := s.byClient[clientAddr.String()]
	s.mu.Unlock()
	ok = known && s.allowedIP(room, ip.Unmap())
	if !ok {
		s.cfg.Logger.Info("turn: refused a permission", "client", clientAddr, "peer", ip)
	}
	return ok
}

// allowedIP: a client of room, or a relay of room; nothing of the host's
// own but relays.
func (s *Server) allowedIP(room string, ip netip.Addr) bool {
	s.mu.Lock()
	for ap, r := range s.relays {
		if r == room && ap.Addr() == ip {
			s.mu.Unlock()
			return true
		}
	}
	s.mu.Unlock()
	return s.reachable(room, ip)
}

// allowedDst is allowedIP for a datagram's destination: an address of the
// host itself only at a live relay port of the room.
func (s *Server) allowedDst(room string, dst netip.AddrPort) bool {
	ip := dst.Addr().Unmap()
	s.mu.Lock()
	r, isRelay := s.relays[netip.AddrPortFrom(ip, dst.Port())]
	s.mu.Unlock()
	if isRelay {
		return r == room
	}
	return s.reachable(room, ip)
}

// reachable is the one rule for an address outside this server's relays:
// never the host's own, loopback, link-local or multicast; a user's
// address the signaling server's own socket saw, or another node's relay;
// an address the server was only told (by a proxy header or the cluster)
// if it is public, or if a client of the room holds an allocation here from
// it. A private address (RFC 1918, ULA, CGNAT) is the host's own network:
// someone who can write a header, or a cluster node, must not open it.
func (s *Server) reachable(room string, ip netip.Addr) bool {
	if s.forbidden(ip) {
		return false
	}
	a := s.cfg.Directory.RoomPeerAddrs(room)
	switch {
	case slices.Contains(a.Seen, ip), slices.Contains(a.Relays, ip):
		return true
	case !slices.Contains(a.Told, ip):
		return false
	case !private(ip):
		return true
	}
	return s.allocatedFrom(room, ip)
}

// allocatedFrom reports whether a client of room holds an allocation made
// from ip (a source this server's own TURN socket saw).
func (s *Server) allocatedFrom(room string, ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for src, r := range s.allocSrc {
		if ap, err := netip.ParseAddrPort(src); err == nil && r == room && ap.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}

// cgnat is RFC 6598's shared address space.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// private reports whether ip is of a private network: RFC 1918, ULA
// (fc00::/7) or CGNAT (100.64.0.0/10).
func private(ip netip.Addr) bool {
	return ip.IsPrivate() || cgnat.Contains(ip)
}

func (s *Server) forbidden(ip netip.Addr) bool {
	return !ip.IsValid() || ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() ||
		slices.Contains(s.own, ip)
}

// limits returns user's buckets (shared by the allocations of one
// credential), or nil without a limit.
func (s *Server) limits(user string) *limits {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Rate < 0 {
		return nil
	}
	l := s.limiters[user]
	if l == nil {
		l = newLimits(s.cfg.Rate)
		s.limiters[user] = l
	}
	return l
}
