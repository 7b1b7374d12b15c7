package discovery

import (
	"errors"
	"syscall"
)

// bindDevice returns a socket control function that binds the socket to
// the interface iface (SO_BINDTODEVICE): a probe to the LAN leaves over
// that interface whatever the routes say. Where the kernel refuses it
// (without CAP_NET_RAW), the socket stays bound to its address only.
func bindDevice(iface string) func(network, address string, c syscall.RawConn) error {
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
