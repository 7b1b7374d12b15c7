package rtc

import (
	"net"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// udpBuffer is the socket buffer asked for on ICE's UDP sockets. The
// kernel's default (about 208 KiB) overflows at data-channel speed: lost
// datagrams cost SCTP retransmissions and a smaller window. The kernel caps
// the request at net.core.rmem_max / wmem_max.
const udpBuffer = 4 << 20

// bufferedNet is the standard network with larger UDP socket buffers.
type bufferedNet struct {
	*stdnet.Net
}

func newBufferedNet() (transport.Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return bufferedNet{n}, nil
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
	c, err := n.Net.ListenUDP(network, laddr)
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
