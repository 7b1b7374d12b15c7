package bindif

import (
	"errors"
	"syscall"
)

func control(iface string) func(network, address string, c syscall.RawConn) error {
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
