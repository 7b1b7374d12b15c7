package quicpath

import (
	"net"

	"golang.org/x/sys/unix"
)

// setBuffers asks for want bytes of receive and send buffer, beyond the
// system's limits where the process may (CAP_NET_ADMIN), and returns what
// the kernel gave (it reports double the usable size; halved here).
func setBuffers(c *net.UDPConn, want int) (rcv, snd int) {
	_ = c.SetReadBuffer(want)
	_ = c.SetWriteBuffer(want)
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0
	}
	_ = raw.Control(func(fd uintptr) {
		get := func(opt int) int { v, _ := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt); return v / 2 }
		if get(unix.SO_RCVBUF) < want {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, want)
		}
		if get(unix.SO_SNDBUF) < want {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, want)
		}
		rcv, snd = get(unix.SO_RCVBUF), get(unix.SO_SNDBUF)
	})
	return rcv, snd
}
