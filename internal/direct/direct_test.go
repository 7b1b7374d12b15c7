package direct

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// pair is a listener for a receiver with cert rc, and its offer.
func listen(t *testing.T, rc *Cert) *Listener {
	t.Helper()
	l, err := Listen(ListenConfig{Addr: loopback, Peer: loopback, PeerCert: rc.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func newCert(t *testing.T) *Cert {
	t.Helper()
	c, err := NewCert()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// accept runs l.Accept in the background; the result arrives on the channel.
func accept(t *testing.T, l *Listener, d time.Duration) <-chan *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	out := make(chan *Conn, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		c, err := l.Accept(ctx)
		if err != nil {
			t.Logf("accept: %v", err)
		}
		out <- c
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

// connect dials l from loopback with the receiver's certificate rc and
// returns both ends; the test fails unless the listener accepts it.
func connect(t *testing.T, l *Listener, rc *Cert) (c, s *Conn) {
	t.Helper()
	return connectAccepted(t, l, rc, accept(t, l, 10*time.Second))
}

// connectAccepted is connect with the listener's accepting already started.
func connectAccepted(t *testing.T, l *Listener, rc *Cert, got <-chan *Conn) (c, s *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, loopback, rc, l.Offer())
	if err != nil {
		t.Fatalf("dial the listener: %v", err)
	}
	if s = <-got; s == nil {
		t.Fatal("the listener did not accept the receiver")
	}
	return c, s
}

func TestDirectRoundTrip(t *testing.T) {
	rc := newCert(t)
	l := listen(t, rc)
	c, s := connect(t, l, rc)
	msg := bytes.Repeat([]byte("lanft"), 100000)
	go func() { s.Write(msg); s.Linger(time.Second) }()
	b, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(b, msg) {
		t.Fatalf("read %d bytes, %v; want %d identical bytes", len(b), err, len(msg))
	}
	c.Close()
	if s.ConnectionState().Version != tls.VersionTLS13 {
		t.Fatalf("TLS version %x, want 1.3", s.ConnectionState().Version)
	}
}

// attack connects to l's address with cert and token as given, from
// local, and returns what it could read (nothing, if refused) and the error.
func attack(t *testing.T, l *Listener, local netip.Addr, cert *Cert, token []byte) ([]byte, error) {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
	raw, err := d.Dial("tcp", l.Offer().Addr)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(4 * time.Second))
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert.tls}})
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	if _, err := tc.Write(token); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(tc)
	if err == nil {
		err = io.EOF
	}
	return b, err
}

// TestDirectRefusesOthers: a client with the wrong certificate (and the
// stolen token), with a wrong token, or from another address gets no byte;
// the listener keeps waiting, and the real receiver still gets in.
func TestDirectRefusesOthers(t *testing.T) {
	rc := newCert(t)
	tests := []struct {
		name  string
		from  netip.Addr
		cert  *Cert
		token func(l *Listener) []byte
	}{
		{"wrong certificate with the stolen token", loopback, newCert(t), func(l *Listener) []byte { return l.token[:] }},
		{"right certificate, wrong token", loopback, rc, func(*Listener) []byte { return make([]byte, tokenLen) }},
		{"another host with certificate and token", netip.MustParseAddr("127.0.0.2"), rc, func(l *Listener) []byte { return l.token[:] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t, rc)
			got := accept(t, l, 10*time.Second)
			b, err := attack(t, l, tt.from, tt.cert, tt.token(l))
			if len(b) != 0 || err == nil || errors.Is(err, io.EOF) && len(b) > 0 {
				t.Fatalf("attacker read %q (err %v), want nothing and an error", b, err)
			}
			t.Logf("attacker refused: %v", err)
			c, s := connectAccepted(t, l, rc, got)
			c.Close()
			s.Close()
		})
	}
}

// TestDirectTokenWorksOnce: once the receiver is in, the same offer (its
// certificate and token, replayed) gets nowhere.
func TestDirectTokenWorksOnce(t *testing.T) {
	rc := newCert(t)
	l := listen(t, rc)
	c, s := connect(t, l, rc)
	defer c.Close()
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, loopback, rc, l.Offer()); err == nil {
		t.Fatal("a replayed offer connected")
	} else {
		t.Logf("replay refused: %v", err)
	}
	// And the token check itself: spent.
	if b, err := attack(t, l, loopback, rc, l.token[:]); err == nil || len(b) > 0 {
		t.Fatalf("replayed token read %q, %v", b, err)
	}
}

// TestDirectReceiverChecksSharer: a server at the offered address with any
// other certificate is refused by the receiver, which never sends it the
// token.
func TestDirectReceiverChecksSharer(t *testing.T) {
	rc, impostor, real := newCert(t), newCert(t), newCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			seen <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{impostor.tls}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS13})
		b, _ := io.ReadAll(tc)
		seen <- b
	}()
	offer := Offer{V: Version, Addr: ln.Addr().String(), Cert: real.Fingerprint(), Token: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, loopback, rc, offer); !errors.Is(err, ErrRefused) {
		t.Fatalf("got %v, want %v", err, ErrRefused)
	}
	if b := <-seen; len(b) != 0 {
		t.Fatalf("the impostor received %q", b)
	}
}

func TestMessages(t *testing.T) {
	var buf bytes.Buffer
	in := Offer{V: 1, Addr: "10.0.0.1:4242", Cert: "ab", Token: "cd"}
	if err := WriteMessage(&buf, in); err != nil {
		t.Fatal(err)
	}
	var out Offer
	if err := ReadMessage(&buf, &out); err != nil || out != in {
		t.Fatalf("got %+v, %v; want %+v", out, err, in)
	}
	big := []byte{0xff, 0xff}
	if err := ReadMessage(bytes.NewReader(big), &out); err == nil {
		t.Fatal("a 64 KiB message length was accepted")
	}
}
