//go:build !linux

package discovery

import "syscall"

// bindDevice binds nothing here: the socket is bound to its address only.
func bindDevice(string) func(network, address string, c syscall.RawConn) error { return nil }
