//go:build !linux

package host

import "syscall"

// bindToDevice binds nothing here: the socket is bound to its address
// only.
func bindToDevice(string) func(network, address string, c syscall.RawConn) error { return nil }
