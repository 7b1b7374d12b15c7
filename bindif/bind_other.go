//go:build !linux

package bindif

import "syscall"

func control(string) func(network, address string, c syscall.RawConn) error { return nil }
