package rtc

import "net"

// BatchUDP returns c with the batched I/O of the data channel's own
// sockets where the kernel has it (Linux UDP segmentation offload and
// receive coalescing, see batch_linux.go), for UDP sockets outside a peer
// connection: a TURN server's. Close the result, not c.
func BatchUDP(c *net.UDPConn) net.PacketConn { return newBatchConn(c) }
