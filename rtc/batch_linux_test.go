package rtc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/netns"
)

// listen opens a UDP socket on addr, with lanft's buffers.
func listen(addr netip.Addr) (*net.UDPConn, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(udpBuffer)
	_ = c.SetWriteBuffer(udpBuffer)
	return c, nil
}

// listenBatch opens a batchConn on addr, or skips the test when the
// kernel has no UDP GSO. Sockets are closed when the test ends.
func listenBatch(t *testing.T, addr netip.Addr) *batchConn {
	t.Helper()
	c, err := listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	bc, ok := newBatchConn(c).(*batchConn)
	if !ok {
		c.Close()
		t.Skip("this kernel has no UDP_SEGMENT; lanft sends one datagram per system call here")
	}
	t.Cleanup(func() { bc.Close() })
	return bc
}

var lo4 = netip.MustParseAddr("127.0.0.1") // loopback, IPv4

// datagram i: its number, then a pattern derived from it, size bytes long.
func datagram(i, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p, uint32(i))
	for k := 4; k < size; k++ {
		p[k] = byte(i*31 + k)
	}
	return p
}

// sizeOf mimics SCTP over DTLS: full packets, a shorter one closing each
// message, and now and then a tiny one (a SACK).
func sizeOf(i int) int {
	switch {
	case i%97 == 0:
		return 40
	case i%47 == 46:
		return 300 + i%500
	default:
		return 1228
	}
}

type readFunc func([]byte) (int, netip.AddrPort, error)

// expect reads the datagrams numbered in want, in order, with read.
func expect(read readFunc, want []int) error {
	buf := make([]byte, 2048)
	for _, i := range want {
		n, _, err := read(buf)
		if err != nil {
			return fmt.Errorf("datagram %d: %w", i, err)
		}
		if got := int(binary.BigEndian.Uint32(buf)); got != i {
			return fmt.Errorf("got datagram %d, want %d (out of order or lost)", got, i)
		}
		if string(buf[:n]) != string(datagram(i, sizeOf(i))) {
			return fmt.Errorf("datagram %d: %d bytes differ from the %d sent", i, n, sizeOf(i))
		}
	}
	return nil
}

// TestBatchConnDelivers sends runs of datagrams with shorter tails, tiny
// ones and changes of destination, to a GRO reader and to a plain socket,
// on loopback over IPv4 and IPv6 (the kernel segments each in its own
// code): see checkDelivery.
func TestBatchConnDelivers(t *testing.T) {
	for _, addr := range []netip.Addr{lo4, netip.IPv6Loopback()} {
		t.Run(addr.String(), func(t *testing.T) {
			if c, err := listen(addr); err != nil {
				t.Skipf("no %s here: %v", addr, err)
			} else {
				c.Close()
			}
			send, gro := listenBatch(t, addr), listenBatch(t, addr)
			plain, err := listen(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			checkDelivery(t, send, gro, plain)
		})
	}
}

// TestBatchConnAcrossLAN is TestBatchConnDelivers between two hosts of a
// namespace LAN: through a veth, a bridge and another veth, as on a real
// network, segmented sends and coalesced reads still deliver every datagram
// whole and in order.
func TestBatchConnAcrossLAN(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	var (
		send, gro net.PacketConn
		plain     *net.UDPConn
	)
	if err := lan.Do(1, func() error {
		c, err := listen(lan.Addr(1))
		send = newBatchConn(c)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := lan.Do(2, func() error {
		c, err := listen(lan.Addr(2))
		if err != nil {
			return err
		}
		gro = newBatchConn(c)
		plain, err = listen(lan.Addr(2))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	defer gro.Close()
	defer plain.Close()
	s, ok1 := send.(*batchConn)
	g, ok2 := gro.(*batchConn)
	if !ok1 || !ok2 {
		t.Skip("this kernel has no UDP_SEGMENT")
	}
	checkDelivery(t, s, g, plain)
}

// checkDelivery sends 6,000 datagrams shaped like SCTP's from send, every
// tenth to plain and the others to gro, and checks that every datagram
// arrives whole and in order, that the sender sent runs (a run ends at each
// change of destination, short datagram or tiny one: about one sendmsg per
// four datagrams here, asked to be under one per three), and that the GRO
// reader got runs in fewer reads than datagrams. The sender is held while
// each window is written, so runs form whatever the scheduler does.
func checkDelivery(t *testing.T, send, gro *batchConn, plain *net.UDPConn) {
	t.Helper()
	groAddr := gro.LocalAddr().(*net.UDPAddr).AddrPort()
	plainAddr := plain.LocalAddr().(*net.UDPAddr)

	const total, window = 6000, 100 // a window stays well under the socket buffer
	var toGROTotal int64
	for start := 0; start < total; start += window {
		var toGRO, toPlain []int
		send.hold(true) // the window queues up whatever the scheduler does
		for i := start; i < start+window; i++ {
			var err error
			if i%10 == 9 { // it splits a run
				toPlain = append(toPlain, i)
				_, err = send.WriteTo(datagram(i, sizeOf(i)), plainAddr)
			} else {
				toGRO = append(toGRO, i)
				_, err = send.WriteToAddrPort(datagram(i, sizeOf(i)), groAddr)
			}
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		send.hold(false)
		gro.SetReadDeadline(time.Now().Add(5 * time.Second))
		plain.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := expect(gro.ReadFromAddrPort, toGRO); err != nil {
			t.Fatalf("GRO reader: %v", err)
		}
		toGROTotal += int64(len(toGRO))
		if err := expect(plain.ReadFromUDPAddrPort, toPlain); err != nil {
			t.Fatalf("plain reader: %v", err)
		}
	}
	send.Close() // waits for the sending goroutine: its counters are final
	s, r := send.Stats(), gro.Stats()
	t.Logf("sender: %d datagrams in %d sendmsg; GRO reader: %d datagrams from %d recvmsg", total, s.sends, toGROTotal, r.reads)
	if s.sends*3 > total {
		t.Errorf("%d sendmsg calls for %d datagrams: runs are not being coalesced", s.sends, total)
	}
	if r.reads >= toGROTotal {
		t.Errorf("%d recvmsg calls for %d datagrams: the kernel never coalesced a run", r.reads, toGROTotal)
	}
}

// TestBatchConnWithoutGSO covers the path taken when the kernel refuses
// segmented sends: one sendmsg per datagram, nothing lost.
func TestBatchConnWithoutGSO(t *testing.T) {
	send, recv := listenBatch(t, lo4), listenBatch(t, lo4)
	send.mu.Lock()
	send.gso = false
	send.mu.Unlock()
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	var want []int
	for i := range 200 {
		want = append(want, i)
		if _, err := send.WriteToAddrPort(datagram(i, sizeOf(i)), to); err != nil {
			t.Fatal(err)
		}
	}
	recv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := expect(recv.ReadFromAddrPort, want); err != nil {
		t.Fatal(err)
	}
	send.Close()
	if s := send.Stats(); s.sends != int64(len(want)) {
		t.Errorf("without GSO: %d sendmsg calls for %d datagrams", s.sends, len(want))
	}
}

// TestBatchConnCloseFlushes: what was queued before Close leaves (a DTLS
// close_notify may be in it); writes after Close fail.
func TestBatchConnCloseFlushes(t *testing.T) {
	send, recv := listenBatch(t, lo4), listenBatch(t, lo4)
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	var want []int
	for i := range 100 {
		want = append(want, i)
		if _, err := send.WriteToAddrPort(datagram(i, sizeOf(i)), to); err != nil {
			t.Fatal(err)
		}
	}
	if err := send.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := send.WriteToAddrPort(datagram(0, 10), to); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after Close: %v, want net.ErrClosed", err)
	}
	recv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := expect(recv.ReadFromAddrPort, want); err != nil {
		t.Fatal(err)
	}
}

// TestBatchConnEmptyDatagrams: a datagram of no bytes is a datagram too.
func TestBatchConnEmptyDatagrams(t *testing.T) {
	send, recv := listenBatch(t, lo4), listenBatch(t, lo4)
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, p := range [][]byte{{}, {}, datagram(1, 100), {}, datagram(2, 100), datagram(3, 100)} {
		if _, err := send.WriteToAddrPort(p, to); err != nil {
			t.Fatal(err)
		}
	}
	recv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	for i, want := range []int{0, 0, 100, 0, 100, 100} {
		n, _, err := recv.ReadFromAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if n != want {
			t.Fatalf("datagram %d: %d bytes, want %d", i, n, want)
		}
	}
}

// TestBatchConnDeadline: datagrams queued before a write deadline passes
// are still sent (Pion sets one in the past right after queueing a DTLS
// close_notify); writes after it fail with a timeout, and clearing it lets
// writes through again.
func TestBatchConnDeadline(t *testing.T) {
	send, recv := listenBatch(t, lo4), listenBatch(t, lo4)
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	var want []int
	send.hold(true)
	for i := range 50 {
		want = append(want, i)
		if _, err := send.WriteToAddrPort(datagram(i, sizeOf(i)), to); err != nil {
			t.Fatal(err)
		}
	}
	send.SetWriteDeadline(time.Now().Add(-time.Second))
	send.hold(false)
	if _, err := send.WriteToAddrPort(datagram(50, 100), to); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after the deadline: %v, want a timeout", err)
	}
	send.SetWriteDeadline(time.Time{})
	want = append(want, 51)
	if _, err := send.WriteToAddrPort(datagram(51, sizeOf(51)), to); err != nil {
		t.Fatalf("write with the deadline cleared: %v", err)
	}
	recv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := expect(recv.ReadFromAddrPort, want); err != nil {
		t.Fatal(err)
	}
}

// TestBatchConnEveryWriteQueues: every write method goes through the queue,
// so none overtakes datagrams queued before it, and every read method splits
// coalesced reads.
func TestBatchConnEveryWriteQueues(t *testing.T) {
	send, recv := listenBatch(t, lo4), listenBatch(t, lo4)
	to := recv.LocalAddr().(*net.UDPAddr)
	writes := []func([]byte) (int, error){
		func(p []byte) (int, error) { return send.WriteToAddrPort(p, to.AddrPort()) },
		func(p []byte) (int, error) { return send.WriteToUDP(p, to) },
		func(p []byte) (int, error) { return send.WriteTo(p, to) },
		func(p []byte) (int, error) { return send.WriteToUDPAddrPort(p, to.AddrPort()) },
	}
	reads := []readFunc{
		recv.ReadFromAddrPort,
		recv.ReadFromUDPAddrPort,
		func(p []byte) (int, netip.AddrPort, error) {
			n, a, err := recv.ReadFromUDP(p)
			if err != nil {
				return n, netip.AddrPort{}, err
			}
			return n, a.AddrPort(), nil
		},
		func(p []byte) (int, netip.AddrPort, error) {
			n, a, err := recv.ReadFrom(p)
			if err != nil {
				return n, netip.AddrPort{}, err
			}
			return n, a.(*net.UDPAddr).AddrPort(), nil
		},
	}
	send.hold(true) // all queued first: a write that bypassed the queue would arrive first
	for i := range 40 {
		if _, err := writes[i%len(writes)](datagram(i, 1228)); err != nil {
			t.Fatal(err)
		}
	}
	send.hold(false)
	recv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	for i := range 40 {
		n, _, err := reads[i%len(reads)](buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if got := int(binary.BigEndian.Uint32(buf)); n != 1228 || got != i {
			t.Fatalf("read %d: got datagram %d of %d bytes, want datagram %d of 1228", i, got, n, i)
		}
	}
}
