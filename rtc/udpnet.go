package rtc

import (
	"context"
	"net"
	"net/netip"
	"slices"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"

	"github.com/lanft/lanft/bindif"
)

// udpBuffer is the socket buffer asked for on ICE's UDP sockets. The
// kernel's default (about 208 KiB) overflows at data-channel speed: lost
// datagrams cost SCTP retransmissions and a smaller window. The kernel caps
// the request at net.core.rmem_max / wmem_max.
const udpBuffer = 4 << 20

// bufferedNet is the standard network with larger UDP socket buffers.
// With bind set (ICE restricted to the LAN's interfaces), a socket on an
// address of one of those interfaces is bound to it (bindif), so that its
// datagrams leave over the LAN even where a VPN's route covers the LAN's
// range.
type bufferedNet struct {
	*stdnet.Net
	bind []string
}

func newBufferedNet(bind []string) (transport.Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return bufferedNet{n, slices.Clone(bind)}, nil
}

// ListenPacket opens the socket a TURN client speaks to its server on
// (ICE opens it so): its relayed datagrams get the same buffers and
// batching as host candidates' (one system call for a run of them, not one
// each).
func (n bufferedNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	if uc, ok := c.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(udpBuffer)
		_ = uc.SetWriteBuffer(udpBuffer)
		return newBatchConn(uc), nil
	}
	return c, nil
}

// ListenUDP opens the socket and enlarges its buffers (best effort).
func (n bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.listenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	if uc, ok := c.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(udpBuffer)
		_ = uc.SetWriteBuffer(udpBuffer)
		return newBatchConn(uc), nil
	}
	return c, nil
}

// listenUDP opens the socket, bound to its address's interface when that
// is one of n.bind.
func (n bufferedNet) listenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	if laddr == nil || len(n.bind) == 0 {
		return n.Net.ListenUDP(network, laddr)
	}
	a, ok := netip.AddrFromSlice(laddr.IP)
	iface := ""
	if ok {
		iface = bindif.IfaceOf(a)
	}
	if !slices.Contains(n.bind, iface) {
		return n.Net.ListenUDP(network, laddr)
	}
	lc := net.ListenConfig{Control: bindif.Control(iface)}
	pc, err := lc.ListenPacket(context.Background(), network, laddr.String())
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}
