package host

import (
	"errors"
	"syscall"
)

// bindToDevice returns a socket control function that binds the socket to
// the interface iface (SO_BINDTODEVICE), so that it takes only packets
// that came in over that interface. An empty iface binds nothing. Where
// the kernel refuses it (older than 5.7, without CAP_NET_RAW), the socket
// stays bound to its address only.
func bindToDevice(iface string) func(network, address string, c syscall.RawConn) error {
	if iface == "" {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, iface)
		}); err != nil {
			return err
		}
		if errors.Is(serr, syscall.EPERM) {
			return nil
		}
		return serr
	}
}
