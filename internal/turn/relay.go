package turn

import (
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	pionturn "github.com/pion/turn/v5"

	"github.com/lanft/lanft/rtc"
)

// relayGen allocates UDP relay sockets in the port range and wraps each in
// a relayConn that enforces the room and the rate. TURN-TCP relays
// (RFC 6062) are not offered.
type relayGen struct {
	s *Server
}

var errNoTCPRelay = errors.New("turn: TCP relays are not offered")

func (g *relayGen) Validate() error { return nil }

func (g *relayGen) AllocatePacketConn(conf pionturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	cfg := g.s.cfg
	if conf.Network != "udp4" && conf.Network != "udp6" && conf.Network != "udp" {
		return nil, nil, fmt.Errorf("turn: relay network %q not offered", conf.Network)
	}
	_, tag, _ := parseUsername(conf.UserID)
	roomName, ok := g.s.roomOf(tag)
	if !ok {
		return nil, nil, errors.New("turn: relay for a credential of no known room")
	}
	span := int(cfg.MaxPort) - int(cfg.MinPort) + 1
	var pc net.PacketConn
	var err error
	for range 16 {
		port := int(cfg.MinPort) + mrand.IntN(span)
		pc, err = cfg.ListenPacket("udp", netip.AddrPortFrom(cfg.RelayIP, uint16(port)).String())
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("turn: no free relay port in %d-%d: %w", cfg.MinPort, cfg.MaxPort, err)
	}
	bigBuffers(pc)
	addr := &net.UDPAddr{IP: cfg.PublicIP.AsSlice(), Port: portOf(pc.LocalAddr())}
	ap, _ := netip.ParseAddrPort(addr.String())
	return newRelayConn(g.s, batched(pc), roomName, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), g.s.limits(conf.UserID)), addr, nil
}

func (g *relayGen) AllocateListener(pionturn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errNoTCPRelay
}

func (g *relayGen) AllocateConn(pionturn.AllocateConnConfig) (net.Conn, error) {
	return nil, errNoTCPRelay
}

// relayConn is one allocation's relay socket. Every datagram it sends is
// checked against the room (Pion's permissions are per IP; this is per
// address and port, and sees the host's own addresses); past the rate,
// datagrams wait (shape.go).
type relayConn struct {
	net.PacketConn
	s     *Server
	room  string
	addr  netip.AddrPort
	lim   *limits // nil: no limit
	done  chan struct{}
	once  sync.Once
	timer *time.Timer // ReadFrom's wait

	outMu  sync.Mutex
	out    *shaper // towards peers, made once the rate binds
	closed bool

	mu      sync.Mutex
	allowed netip.AddrPort // the last destination found in the room
	until   time.Time      // when to ask the room again
}

// recheck is how long a destination found in the room stays allowed
// without asking again: the room check costs a lookup in the signaling
// server, too much for every datagram, and a client that leaves the room
// is cut off within this long.
const recheck = time.Second

func newRelayConn(s *Server, pc net.PacketConn, room string, addr netip.AddrPort, lim *limits) *relayConn {
	c := &relayConn{PacketConn: pc, s: s, room: room, addr: addr, lim: lim, done: make(chan struct{}),
		timer: time.NewTimer(time.Hour)}
	c.timer.Stop()
	return c
}

// allowedTo is the room check of one datagram, on the destination's
// address and port: no parsing, no allocation.
func (c *relayConn) allowedTo(to net.Addr, now time.Time) bool {
	ua, ok := to.(*net.UDPAddr)
	if !ok {
		return false
	}
	ap := ua.AddrPort()
	c.mu.Lock()
	hit := ap == c.allowed && now.Before(c.until)
	c.mu.Unlock()
	if hit {
		return true
	}
	if !c.s.allowedDst(c.room, ap) {
		return false
	}
	c.mu.Lock()
	c.allowed, c.until = ap, now.Add(recheck)
	c.mu.Unlock()
	return true
}

func (c *relayConn) WriteTo(p []byte, to net.Addr) (int, error) {
	now := time.Now()
	if !c.allowedTo(to, now) {
		c.s.cfg.Logger.Debug("turn: dropped a datagram to a destination outside the room", "to", to)
		return len(p), nil
	}
	if c.lim == nil {
		return c.PacketConn.WriteTo(p, to)
	}
	d := c.lim.toPeer.take(now, len(p))
	c.outMu.Lock()
	out, closed := c.out, c.closed
	if d >= minPause && out == nil && !closed {
		out = newShaper(c.PacketConn, c.s.cfg.Logger)
		c.out = out
	}
	c.outMu.Unlock()
	switch {
	case closed:
		return 0, net.ErrClosed
	case d < minPause && out.idle():
		return c.PacketConn.WriteTo(p, to)
	}
	out.send(p, to, now.Add(d))
	return len(p), nil
}

// ReadFrom returns the next datagram from a peer, once the rate towards the
// client lets it go.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := c.PacketConn.ReadFrom(p)
	if err != nil || c.lim == nil {
		return n, from, err
	}
	if !pause(c.timer, c.lim.toClient.take(time.Now(), n), c.done) {
		return 0, nil, net.ErrClosed
	}
	return n, from, nil
}

func (c *relayConn) Close() error {
	c.once.Do(func() { close(c.done) })
	c.outMu.Lock()
	out := c.out
	c.closed = true
	c.outMu.Unlock()
	if out != nil {
		out.close()
	}
	c.s.forgetRelay(c.addr)
	return c.PacketConn.Close()
}

// udpBuffer is asked for on the server's UDP sockets: at relay speed the
// kernel's default (about 208 KiB) overflows, and every lost datagram
// costs the peers' SCTP a retransmission and a smaller window.
const udpBuffer = 4 << 20

// batched gives a UDP socket the data channel's batched I/O (see
// rtc.BatchUDP): a run of datagrams to one address costs one system call.
func batched(pc net.PacketConn) net.PacketConn {
	if u, ok := pc.(*net.UDPConn); ok {
		return rtc.BatchUDP(u)
	}
	return pc
}

// bigBuffers enlarges pc's socket buffers (best effort: the kernel caps
// them at net.core.rmem_max and wmem_max).
func bigBuffers(pc net.PacketConn) {
	if u, ok := pc.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(udpBuffer)
		_ = u.SetWriteBuffer(udpBuffer)
	}
}
