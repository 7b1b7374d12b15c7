//go:build !linux

package rtc

import (
	"net"

	"github.com/pion/transport/v5"
)

// newBatchConn returns c: segmentation offload is Linux-only.
func newBatchConn(c *net.UDPConn) transport.UDPConn { return c }
