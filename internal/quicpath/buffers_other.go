//go:build !linux

package quicpath

import "net"

// setBuffers asks for want bytes of receive and send buffer; elsewhere
// than Linux the size cannot be checked, so it reports want.
func setBuffers(c *net.UDPConn, want int) (rcv, snd int) {
	_ = c.SetReadBuffer(want)
	_ = c.SetWriteBuffer(want)
	return want, want
}
