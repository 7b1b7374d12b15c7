package turn

import (
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"time"

	pionturn "github.com/pion/turn/v5"
	"golang.org/x/time/rate"
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
	return &relayConn{PacketConn: pc, s: g.s, room: roomName, limit: g.s.limiter(conf.UserID),
		addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, addr, nil
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
// datagrams are dropped both ways.
type relayConn struct {
	net.PacketConn
	s     *Server
	room  string
	addr  netip.AddrPort
	limit *rate.Limiter
}

func (c *relayConn) WriteTo(p []byte, to net.Addr) (int, error) {
	ap, err := netip.ParseAddrPort(to.String())
	if err != nil || !c.s.allowedDst(c.room, ap) {
		c.s.cfg.Logger.Debug("turn: dropped a datagram to a destination outside the room", "to", to)
		return len(p), nil
	}
	if c.limit != nil && !c.limit.AllowN(time.Now(), len(p)) {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, to)
}

func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.limit == nil || c.limit.AllowN(time.Now(), n) {
			return n, from, err
		}
	}
}

func (c *relayConn) Close() error {
	c.s.forgetRelay(c.addr)
	return c.PacketConn.Close()
}

// udpBuffer is asked for on the server's UDP sockets: at relay speed the
// kernel's default (about 208 KiB) overflows, and every lost datagram
// costs the peers' SCTP a retransmission and a smaller window.
const udpBuffer = 4 << 20

// bigBuffers enlarges pc's socket buffers (best effort: the kernel caps
// them at net.core.rmem_max and wmem_max).
func bigBuffers(pc net.PacketConn) {
	if u, ok := pc.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(udpBuffer)
		_ = u.SetWriteBuffer(udpBuffer)
	}
}
