package direct

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/netns"
)

// TestDirectRefusesAnotherHostOnALAN: on a namespace LAN, host 3 holds
// the receiver's certificate and the token (the worst case: both stolen)
// and connects first; it is refused without a byte, because it is not the
// host the verified channel reaches. Host 2, the receiver, then gets in.
func TestDirectRefusesAnotherHostOnALAN(t *testing.T) {
	lan := netns.NewLAN(t, 3)
	rc := newCert(t)
	var l *Listener
	if err := lan.Do(1, func() (err error) {
		l, err = Listen(ListenConfig{Addr: lan.Addr(1), Peer: lan.Addr(2), PeerCert: rc.Fingerprint()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := accept(t, l, 20*time.Second)

	var raw net.Conn
	err := lan.Do(3, func() (err error) {
		raw, err = net.DialTimeout("tcp", l.Offer().Addr, 5*time.Second)
		return err
	})
	var b []byte
	switch {
	case errors.Is(err, syscall.ECONNRESET): // reset by the listener before connect returned
	case err != nil:
		t.Fatalf("host 3 could not reach the listener: %v", err)
	default:
		raw.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{rc.tls}})
		err = tc.Handshake()
		if err == nil {
			_, err = tc.Write(l.token[:])
		}
		if err == nil {
			b, err = io.ReadAll(tc)
		}
		raw.Close()
	}
	if len(b) != 0 || err == nil {
		t.Fatalf("host 3 read %q (err %v), want nothing and an error", b, err)
	}
	t.Logf("host 3 refused: %v", err)

	var c *Conn
	if err := lan.Do(2, func() (err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err = Dial(ctx, lan.Addr(2), rc, l.Offer())
		return err
	}); err != nil {
		t.Fatalf("the receiver on host 2: %v", err)
	}
	defer c.Close()
	s := <-got
	if s == nil {
		t.Fatal("the listener did not accept the receiver")
	}
	defer s.Close()
	if from := s.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); from != lan.Addr(2) {
		t.Fatalf("accepted %s, want host 2 at %s", from, lan.Addr(2))
	}
}
