package rtc

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pion/transport/v5"
	"golang.org/x/sys/unix"
)

// Linux UDP segmentation offload (UDP_SEGMENT, 4.18) and receive
// coalescing (UDP_GRO, 5.0).
//
// A data channel moves datagrams of about 1.2 KB, and each one used to cost
// a system call and a trip through the network stack on both sides: most of
// lanft's CPU time, on a machine where the CPU, not the link, set the speed.
// Writers now queue datagrams and return; one goroutine per socket sends
// each run of equal-sized datagrams to one address (the last may be shorter)
// in one sendmsg, as one large packet that the kernel or the NIC cuts up as
// late as possible. On the receiving side the kernel hands such a run to one
// recvmsg, and ReadFrom returns its datagrams one by one. The wire carries
// the same datagrams either way, so a peer without GSO sees no difference.
const (
	maxSegments  = 64          // the kernel's UDP_MAX_SEGMENTS
	runCap       = 64 << 10    // bytes of one run's buffer
	maxRunBytes  = 63 << 10    // payload of one GSO send, under UDP's 65,507 bytes
	queueRuns    = 64          // runs waiting before a writer blocks (about 4 MiB)
	refusals     = 8           // consecutive refused GSO sends before giving up on GSO
	groBuffer    = 64 << 10    // the most the kernel coalesces into one read, and the largest datagram
	drainTimeout = time.Second // for what is queued when the socket closes
)

// run is datagrams to one address stored back to back: all but the last
// are seg bytes long.
type run struct {
	addr   netip.AddrPort
	seg    int
	n      int  // datagrams
	closed bool // the last datagram was shorter than seg: nothing may follow
	buf    []byte
}

// batchStats counts the system calls the socket made, for tests and
// profiling (the callers know how many datagrams they wrote and read).
type batchStats struct {
	sends int64 // sendmsg calls
	reads int64 // recvmsg calls
}

// batchConn is a UDP socket that sends with GSO and reads with GRO.
type batchConn struct {
	*net.UDPConn

	mu      sync.Mutex
	cond    *sync.Cond // the queue changed or the socket closed
	queue   []*run
	free    []*run
	closed  bool
	held    bool      // tests: the sender waits, so that runs form deterministically
	wdl     time.Time // callers' write deadline: it bounds queueing, not sending
	gso     bool      // false once the kernel kept refusing segmented sends
	refused int       // consecutive refusals
	done    chan struct{}

	sends, reads atomic.Int64 // see batchStats

	rmu   sync.Mutex // one reader at a time
	rbuf  []byte
	roob  []byte
	rdata []byte // datagrams of the last read not yet returned
	rseg  int
	raddr netip.AddrPort
}

// newBatchConn wraps c when the kernel supports UDP GSO; otherwise it
// returns c unchanged.
func newBatchConn(c *net.UDPConn) transport.UDPConn {
	raw, err := c.SyscallConn()
	if err != nil {
		return c
	}
	supported := false
	_ = raw.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		supported = err == nil
		if supported {
			// Best effort: without GRO the kernel splits runs on arrival.
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1)
		}
	})
	if !supported {
		return c
	}
	b := &batchConn{
		UDPConn: c,
		gso:     true,
		done:    make(chan struct{}),
		rbuf:    make([]byte, groBuffer),
		roob:    make([]byte, 4*unix.CmsgSpace(4)),
	}
	b.cond = sync.NewCond(&b.mu)
	go b.sendLoop()
	return b
}

// WriteToAddrPort queues p and returns: datagrams leave in order, from the
// sending goroutine. A full queue blocks the writer as a full socket buffer
// would. Send errors are not reported: a datagram may be lost anyway, and
// SCTP and ICE retransmit.
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.closed && len(b.queue) >= queueRuns {
		b.cond.Wait()
	}
	if b.closed {
		return 0, net.ErrClosed
	}
	if !b.wdl.IsZero() && !time.Now().Before(b.wdl) {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: b.LocalAddr(), Addr: net.UDPAddrFromAddrPort(addr), Err: os.ErrDeadlineExceeded}
	}
	var r *run
	if k := len(b.queue); k > 0 {
		r = b.queue[k-1]
		if r.closed || r.addr != addr || len(p) > r.seg || r.n >= maxSegments || len(r.buf)+len(p) > maxRunBytes ||
			len(p) == 0 && r.seg > 0 { // GSO has no empty segments
			r = nil
		}
	}
	if r == nil {
		r = b.newRun(addr, len(p))
		b.queue = append(b.queue, r)
	}
	r.buf = append(r.buf, p...)
	r.n++
	r.closed = len(p) < r.seg || len(p) > maxRunBytes
	b.cond.Broadcast()
	return len(p), nil
}

func (b *batchConn) newRun(addr netip.AddrPort, seg int) *run {
	var r *run
	if k := len(b.free); k > 0 {
		r, b.free = b.free[k-1], b.free[:k-1]
		r.buf = r.buf[:0]
	} else {
		r = &run{buf: make([]byte, 0, runCap)}
	}
	r.addr, r.seg, r.n, r.closed = addr, seg, 0, false
	return r
}

// WriteToUDPAddrPort and WriteToUDP queue too, so that no write overtakes
// the queue.
func (b *batchConn) WriteToUDPAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	return b.WriteToAddrPort(p, addr)
}

func (b *batchConn) WriteToUDP(p []byte, addr *net.UDPAddr) (int, error) {
	return b.WriteToAddrPort(p, addr.AddrPort())
}

// SetWriteDeadline makes later writes fail once t has passed. Datagrams
// queued before then are still sent: Pion sets a deadline in the past to
// unblock writers when it closes, right after queueing its last words (a
// DTLS close_notify), and those must leave. A writer blocked on a full queue
// is not woken by the deadline; the queue drains in microseconds.
func (b *batchConn) SetWriteDeadline(t time.Time) error {
	b.mu.Lock()
	b.wdl = t
	b.mu.Unlock()
	return nil
}

// SetDeadline sets the socket's read deadline and the write deadline above.
func (b *batchConn) SetDeadline(t time.Time) error {
	if err := b.UDPConn.SetReadDeadline(t); err != nil {
		return err
	}
	return b.SetWriteDeadline(t)
}

// WriteTo is WriteToAddrPort for a net.Addr.
func (b *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: net.UnknownNetworkError(addr.Network())}
	}
	return b.WriteToAddrPort(p, ua.AddrPort())
}

// sendLoop sends whatever the writers queued, a run per sendmsg.
func (b *batchConn) sendLoop() {
	defer close(b.done)
	var batch []*run
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.IPPROTO_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	for {
		b.mu.Lock()
		for (len(b.queue) == 0 || b.held) && !b.closed {
			b.cond.Wait()
		}
		if len(b.queue) == 0 { // closed, and everything sent
			b.mu.Unlock()
			return
		}
		batch, b.queue = b.queue, batch[:0]
		gso := b.gso
		b.cond.Broadcast() // room for blocked writers
		b.mu.Unlock()

		var sends int64
		refusedNow, accepted := 0, false
		for _, r := range batch {
			if r.n > 1 && r.seg > 0 && gso {
				binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(r.seg))
				_, _, err := b.UDPConn.WriteMsgUDPAddrPort(r.buf, oob, r.addr)
				sends++
				// EIO: no checksum offload on the route; EINVAL: a
				// segment over the route's MTU, or an old kernel.
				if !errors.Is(err, unix.EIO) && !errors.Is(err, unix.EINVAL) {
					accepted = true
					continue
				}
				refusedNow++
			}
			for k := range r.n { // one by one; empty datagrams included
				off := k * r.seg
				_, _ = b.UDPConn.WriteToUDPAddrPort(r.buf[off:min(off+r.seg, len(r.buf))], r.addr)
				sends++
			}
		}

		b.mu.Lock()
		switch {
		case refusedNow > 0 && !accepted:
			b.refused += refusedNow
			if b.refused >= refusals {
				b.gso = false
			}
		case accepted:
			b.refused = 0
		}
		b.free = append(b.free, batch...)
		b.mu.Unlock()
		b.sends.Add(sends)
		clear(batch)
	}
}

// Close sends what is queued (a DTLS close_notify may be among it), then
// closes the socket. Later writes fail with net.ErrClosed.
func (b *batchConn) Close() error {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
	_ = b.UDPConn.SetWriteDeadline(time.Now().Add(drainTimeout)) // a stuck socket cannot hold Close
	<-b.done
	return b.UDPConn.Close()
}

// ReadFromAddrPort returns one datagram, splitting the runs the kernel
// coalesced.
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	if len(b.rdata) == 0 {
		n, oobn, _, addr, err := b.UDPConn.ReadMsgUDPAddrPort(b.rbuf, b.roob)
		if err != nil {
			return 0, addr, err
		}
		b.rdata, b.raddr, b.rseg = b.rbuf[:n], addr, groSize(b.roob[:oobn])
		if b.rseg <= 0 || b.rseg > n {
			b.rseg = n
		}
		b.reads.Add(1)
	}
	seg := b.rdata[:min(b.rseg, len(b.rdata))]
	b.rdata = b.rdata[len(seg):]
	return copy(p, seg), b.raddr, nil
}

// ReadFrom is ReadFromAddrPort with a net.Addr.
func (b *batchConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := b.ReadFromUDP(p)
	if err != nil {
		return n, nil, err // not a typed nil *net.UDPAddr
	}
	return n, a, nil
}

// hold stops (true) or restarts (false) the sender; for tests.
func (b *batchConn) hold(on bool) {
	b.mu.Lock()
	b.held = on
	b.cond.Broadcast()
	b.mu.Unlock()
}

// Stats returns the counters so far.
func (b *batchConn) Stats() batchStats {
	return batchStats{sends: b.sends.Load(), reads: b.reads.Load()}
}

// ReadFromUDPAddrPort and ReadFromUDP split coalesced reads too.
func (b *batchConn) ReadFromUDPAddrPort(p []byte) (int, netip.AddrPort, error) {
	return b.ReadFromAddrPort(p)
}

func (b *batchConn) ReadFromUDP(p []byte) (int, *net.UDPAddr, error) {
	n, ap, err := b.ReadFromAddrPort(p)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// groSize is the segment size the kernel reports for a coalesced read, or 0.
func groSize(oob []byte) int {
	for len(oob) >= unix.CmsgLen(0) {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && len(data) >= 4 {
			return int(binary.NativeEndian.Uint32(data))
		}
		oob = rest
	}
	return 0
}
