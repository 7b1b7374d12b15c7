package quicpath

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/direct"
	"github.com/pion/stun/v4"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// stunServer answers binding requests on loopback until the test ends.
func stunServer(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { c.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if req.Decode() != nil || req.Type != stun.BindingRequest {
				continue
			}
			resp, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
				&stun.XORMappedAddress{IP: from.IP, Port: from.Port}, stun.Fingerprint)
			if err == nil {
				c.WriteToUDP(resp.Raw, from)
			}
		}
	})
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// pair opens two sockets and exchanges their candidates through STUN.
func pair(t *testing.T) (a, b *Socket, ca, cb Candidate) {
	t.Helper()
	srv := stunServer(t)
	ctx := t.Context()
	var err error
	if a, err = Open(loopback, nil); err != nil {
		t.Fatal(err)
	}
	if b, err = Open(loopback, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Socket{a, b} {
		m, err := s.Mapping(ctx, srv)
		if err != nil {
			t.Fatal(err)
		}
		if m != s.LocalAddr() {
			t.Fatalf("STUN mapping %s, want the socket's own address %s on loopback", m, s.LocalAddr())
		}
	}
	return a, b, a.Candidate(a.LocalAddr()), b.Candidate(b.LocalAddr())
}

// punchBoth punches from both sides at once.
func punchBoth(t *testing.T, a, b *Socket, ca, cb Candidate) (fromB, fromA netip.AddrPort) {
	t.Helper()
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { fromB, errA = a.Punch(t.Context(), cb) })
	wg.Go(func() { fromA, errB = b.Punch(t.Context(), ca) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("punch: %v / %v", errA, errB)
	}
	if fromB != b.LocalAddr() || fromA != a.LocalAddr() {
		t.Fatalf("punched %s and %s, want %s and %s", fromB, fromA, b.LocalAddr(), a.LocalAddr())
	}
	return fromB, fromA
}

func certs(t *testing.T) (*direct.Cert, *direct.Cert) {
	ca, err := direct.NewCert()
	if err != nil {
		t.Fatal(err)
	}
	cb, err := direct.NewCert()
	if err != nil {
		t.Fatal(err)
	}
	return ca, cb
}

// Two sockets punch, then 8 MiB cross QUIC with both certificates checked
// and arrive identical; the receiver's Linger and the sharer's Close end
// it as the transfer does.
func TestPunchAndTransfer(t *testing.T) {
	server, client, cs, cc := pair(t)
	toClient, toServer := punchBoth(t, server, client, cs, cc)
	scert, ccert := certs(t)
	var sconn *Conn
	var serr error
	var wg sync.WaitGroup
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		sconn, serr = server.Accept(ctx, scert, ccert.Fingerprint(), toClient)
	})
	cconn, err := client.Dial(t.Context(), ccert, scert.Fingerprint(), toServer)
	wg.Wait()
	if err != nil || serr != nil {
		t.Fatalf("dial: %v; accept: %v", err, serr)
	}
	data := make([]byte, 8<<20)
	rand.Read(data)
	wg.Go(func() {
		sconn.Write(data)
		var ok [2]byte
		if _, err := io.ReadFull(sconn, ok[:]); err != nil || string(ok[:]) != "OK" {
			t.Errorf("sharer: final word %q, %v", ok, err)
		}
		sconn.Close()
	})
	got := make([]byte, len(data))
	if _, err := io.ReadFull(cconn, got); err != nil {
		t.Fatal(err)
	}
	cconn.Write([]byte("OK"))
	start := time.Now()
	cconn.Linger(5 * time.Second)
	wg.Wait()
	if !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("Linger took %v: the sharer's close did not end it", took)
	}
}

// A dialer with a certificate other than the one the sharer was told of
// gets no connection, and neither does the sharer; a sharer with another
// certificate than the one the receiver was told of is refused too.
func TestWrongCertificateRefused(t *testing.T) {
	for _, tt := range []struct {
		name            string
		wrongAtSharer   bool
		wrongAtReceiver bool
	}{{"receiver's certificate", true, false}, {"sharer's certificate", false, true}} {
		t.Run(tt.name, func(t *testing.T) {
			server, client, cs, cc := pair(t)
			toClient, toServer := punchBoth(t, server, client, cs, cc)
			scert, ccert := certs(t)
			other, _ := certs(t)
			wantAtSharer, wantAtReceiver := ccert.Fingerprint(), scert.Fingerprint()
			if tt.wrongAtSharer {
				wantAtSharer = other.Fingerprint()
			}
			if tt.wrongAtReceiver {
				wantAtReceiver = other.Fingerprint()
			}
			var sconn *Conn
			var serr error
			var wg sync.WaitGroup
			ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
			defer cancel()
			wg.Go(func() { sconn, serr = server.Accept(ctx, scert, wantAtSharer, toClient) })
			cconn, err := client.Dial(t.Context(), ccert, wantAtReceiver, toServer)
			if err == nil {
				cconn.Close()
				t.Fatal("the receiver got a connection with a certificate the other side was not told of")
			}
			if !errors.Is(err, direct.ErrRefused) && !strings.Contains(err.Error(), "not the verified peer's") {
				t.Errorf("receiver's error %v, want a refusal naming the certificate", err)
			}
			cancel()
			wg.Wait()
			if serr == nil {
				sconn.Close()
				t.Fatal("the sharer accepted a connection with a certificate it was not told of")
			}
			t.Logf("refused: receiver %v; sharer %v", err, serr)
		})
	}
}

// A peer that never punches back: Punch gives up within its bound and
// says so.
func TestPunchFailsWhenThePeerIsSilent(t *testing.T) {
	a, b, _, cb := pair(t)
	defer a.Close()
	b.Close() // nothing answers at b's address
	start := time.Now()
	_, err := a.Punch(t.Context(), cb)
	took := time.Since(start)
	if !errors.Is(err, ErrNoPunch) {
		t.Fatalf("err %v, want ErrNoPunch", err)
	}
	if took < PunchTimeout || took > PunchTimeout+2*time.Second {
		t.Errorf("gave up after %v, want about %v", took, PunchTimeout)
	}
}

// Datagrams from others (a wrong nonce, garbage) do not end the punch.
func TestPunchIgnoresStrangers(t *testing.T) {
	a, b, _, cb := pair(t)
	defer a.Close()
	defer b.Close()
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	forged := append(append([]byte("LFP1"), flagHeard), make([]byte, nonceLen)...)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		to := net.UDPAddrFromAddrPort(a.LocalAddr())
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			stranger.WriteToUDP(forged, to)
			stranger.WriteToUDP([]byte("garbage"), to)
		}
	})
	_, err = a.Punch(t.Context(), cb) // b does not punch
	close(done)
	wg.Wait()
	if !errors.Is(err, ErrNoPunch) {
		t.Fatalf("err %v, want ErrNoPunch: a stranger's datagram ended the punch", err)
	}
}

func FuzzStunAnswer(f *testing.F) {
	m, _ := stun.Build(stun.TransactionID, stun.BindingSuccess, &stun.XORMappedAddress{IP: net.IPv4(10, 0, 0, 1), Port: 5})
	f.Add(m.Raw)
	f.Add([]byte("LFP1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		stunAnswer(b, m.TransactionID)
		p := &puncher{peerNonce: make([]byte, nonceLen)}
		p.parse(b)
	})
}

// BenchmarkLoopback moves b.N × 1 MiB over one QUIC stream on loopback,
// after punching, and reports MB/s.
func BenchmarkLoopback(b *testing.B) {
	server, client, cs, cc := pairB(b)
	var wg sync.WaitGroup
	var fromA, fromB netip.AddrPort
	wg.Go(func() { fromB, _ = server.Punch(b.Context(), cc) })
	wg.Go(func() { fromA, _ = client.Punch(b.Context(), cs) })
	wg.Wait()
	scert, _ := direct.NewCert()
	ccert, _ := direct.NewCert()
	var sconn *Conn
	wg.Go(func() { sconn, _ = server.Accept(b.Context(), scert, ccert.Fingerprint(), fromB) })
	cconn, err := client.Dial(b.Context(), ccert, scert.Fingerprint(), fromA)
	wg.Wait()
	if err != nil || sconn == nil {
		b.Fatal(err)
	}
	defer cconn.Close()
	defer sconn.Close()
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	wg.Go(func() {
		for range b.N {
			sconn.Write(buf)
		}
	})
	got := make([]byte, 256<<10)
	for n := 0; n < b.N*len(buf); {
		m, err := cconn.Read(got)
		if err != nil {
			b.Fatal(err)
		}
		n += m
	}
	wg.Wait()
}

func pairB(b *testing.B) (x, y *Socket, cx, cy Candidate) {
	var err error
	if x, err = Open(loopback, nil); err != nil {
		b.Fatal(err)
	}
	if y, err = Open(loopback, nil); err != nil {
		b.Fatal(err)
	}
	return x, y, x.Candidate(x.LocalAddr()), y.Candidate(y.LocalAddr())
}
