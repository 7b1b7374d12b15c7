package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// serve runs a relay with cfg on a loopback listener and returns it and
// its address; the test's cleanup stops it.
func serve(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Serve(ctx, ln) })
	t.Cleanup(func() { cancel(); wg.Wait(); s.Close() })
	return s, ln.Addr().String()
}

// dialPair dials both halves at once and returns both connections.
func dialPair(t *testing.T, addr string, ta, tb Token) (net.Conn, net.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ca, cb net.Conn
	var ea, eb error
	var wg sync.WaitGroup
	wg.Go(func() { ca, ea = Dial(ctx, addr, ta) })
	wg.Go(func() { cb, eb = Dial(ctx, addr, tb) })
	wg.Wait()
	if ea != nil || eb != nil {
		t.Fatalf("dial the pair: %v, %v", ea, eb)
	}
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// send writes b to c and half-closes it; recv reads c to its end.
func send(c net.Conn, b []byte) error {
	if _, err := c.Write(b); err != nil {
		return err
	}
	return c.(*net.TCPConn).CloseWrite()
}

func TestPairRelaysBothWays(t *testing.T) {
	s, addr := serve(t, Config{})
	ta, tb, err := s.Issue("room", "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := dialPair(t, addr, ta, tb)
	up, down := random(t, 3<<20), random(t, 1<<20)
	var wg sync.WaitGroup
	var gotUp, gotDown []byte
	wg.Go(func() { gotUp, _ = io.ReadAll(cb) })
	wg.Go(func() { gotDown, _ = io.ReadAll(ca) })
	if err := send(ca, up); err != nil {
		t.Fatal(err)
	}
	if err := send(cb, down); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
		t.Fatalf("got %d and %d bytes, want %d and %d identical", len(gotUp), len(gotDown), len(up), len(down))
	}
	waitFor(t, func() bool {
		st := s.Stats()
		return st.Relays == 1 && st.Active == 0 && st.Bytes == uint64(len(up)+len(down))
	},
		"the relay ended, counted once with every byte")
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// attempt connects, sends payload, and returns everything the relay sends
// back before it closes (within 10 s).
func attempt(t *testing.T, addr string, payload []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if len(payload) > 0 {
		c.Write(payload)
	}
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the relay kept the connection open for 10 s (read %q)", got)
	}
	return got
}

func hello(tok Token) []byte { return append([]byte(Magic), tok[:]...) }

// Every way in without a valid token of a waiting pair is refused, and no
// byte of anyone's relay reaches it.
func TestRefusals(t *testing.T) {
	s, addr := serve(t, Config{HandshakeTimeout: 300 * time.Millisecond, PairTimeout: 500 * time.Millisecond})
	ta, tb, err := s.Issue("room", "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := dialPair(t, addr, ta, tb)
	// The relay runs and carries bytes while the others try.
	secret := random(t, 64<<10)
	go func() {
		for {
			if _, err := ca.Write(secret); err != nil {
				return
			}
		}
	}()
	go io.Copy(io.Discard, cb)
	var forged Token
	rand.Read(forged[:])
	tests := []struct {
		name    string
		payload []byte
		want    []byte
		reason  string
	}{
		{"plain TCP connect, nothing sent", nil, nil, RefusedNoToken},
		{"an HTTP request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), nil, RefusedNoToken},
		{"the magic and half a token", hello(forged)[:20], nil, RefusedNoToken},
		{"a forged token", hello(forged), []byte{StatusRefused}, RefusedUnknown},
		{"a third client with alice's token", hello(ta), []byte{StatusRefused}, RefusedSpent},
		{"a third client with bob's token", hello(tb), []byte{StatusRefused}, RefusedSpent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Stats().Refused[tt.reason]
			got := attempt(t, addr, tt.payload)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got %q back, want %q (the status byte only)", got, tt.want)
			}
			if n := s.Stats().Refused[tt.reason]; n != before+1 {
				t.Errorf("refusals %q: %d, want %d", tt.reason, n, before+1)
			}
		})
	}
	t.Run("a token of another room, and a replay once the pair ended", func(t *testing.T) {
		// room1's alice and room2's bob: each a valid half, not of one pair.
		a1, _, _ := s.Issue("room1", "alice", "bob")
		_, b2, _ := s.Issue("room2", "alice", "bob")
		var got1, got2 []byte
		var wg sync.WaitGroup
		wg.Go(func() { got1 = attempt(t, addr, hello(a1)) })
		wg.Go(func() { got2 = attempt(t, addr, hello(b2)) })
		wg.Wait()
		if !bytes.Equal(got1, []byte{StatusTimeout}) || !bytes.Equal(got2, []byte{StatusTimeout}) {
			t.Fatalf("got %q and %q, want a timeout status each, nothing relayed", got1, got2)
		}
		// The pair is spent: its halves are refused from now on.
		if got := attempt(t, addr, hello(a1)); !bytes.Equal(got, []byte{StatusRefused}) {
			t.Fatalf("replayed token: got %q, want %q", got, []byte{StatusRefused})
		}
	})
	if st := s.Stats(); st.Relays != 1 {
		t.Errorf("relays %d, want 1 (only the real pair)", st.Relays)
	}
}

// Dial tells the refusals apart.
func TestDialErrors(t *testing.T) {
	s, addr := serve(t, Config{PairTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var forged Token
	if _, err := Dial(ctx, addr, forged); !errors.Is(err, ErrRefused) {
		t.Errorf("forged token: %v, want ErrRefused", err)
	}
	ta, _, _ := s.Issue("room", "alice", "bob")
	if _, err := Dial(ctx, addr, ta); !errors.Is(err, ErrNoPartner) {
		t.Errorf("alone: %v, want ErrNoPartner", err)
	}
	if _, err := Dial(ctx, addr, ta); !errors.Is(err, ErrRefused) {
		t.Errorf("replayed: %v, want ErrRefused", err)
	}
}

// A user at MaxPerClient relays gets no new pair.
func TestPerClientLimit(t *testing.T) {
	s, addr := serve(t, Config{MaxPerClient: 1})
	ta, tb, _ := s.Issue("room", "alice", "bob")
	dialPair(t, addr, ta, tb)
	waitFor(t, func() bool { return s.Stats().Active == 1 }, "one relay active")
	if _, _, err := s.Issue("room", "alice", "carol"); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second relay for alice: %v, want ErrBusy", err)
	}
	if _, _, err := s.Issue("room", "dave", "carol"); err != nil {
		t.Fatalf("a relay for others: %v", err)
	}
	if _, _, err := s.Issue("other", "alice", "carol"); err != nil {
		t.Fatalf("another room's alice: %v", err)
	}
}

// 1,000 connections that never send a token do not stop a new relay, and
// are closed after the handshake deadline.
func TestHalfOpenConnectionsDoNotBlock(t *testing.T) {
	s, addr := serve(t, Config{HandshakeTimeout: 3 * time.Second})
	var half []net.Conn
	defer func() {
		for _, c := range half {
			c.Close()
		}
	}()
	for i := range 1000 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("half-open connection %d: %v", i, err)
		}
		if i%2 == 1 {
			c.Write([]byte(Magic[:3])) // some start, none finish
		}
		half = append(half, c)
	}
	start := time.Now()
	ta, tb, _ := s.Issue("room", "alice", "bob")
	ca, cb := dialPair(t, addr, ta, tb)
	msg := random(t, 1<<20)
	go send(ca, msg)
	got, _ := io.ReadAll(cb)
	if !bytes.Equal(got, msg) {
		t.Fatalf("got %d bytes, want %d identical", len(got), len(msg))
	}
	took := time.Since(start)
	if took > 2*time.Second {
		t.Errorf("the relay took %v beside 1,000 half-open connections, want well within their 3 s deadline", took)
	}
	// Each half-open connection is closed by the relay.
	for i, c := range half {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
			t.Fatalf("half-open connection %d: read %q, %v; want closed with no byte", i, b, err)
		}
	}
	if n := s.Stats().Refused[RefusedNoToken]; n != 1000 {
		t.Errorf("refused without a token: %d, want 1000", n)
	}
	if n := s.Stats().Refused[RefusedFull]; n != 0 {
		t.Errorf("refused as full: %d, want 0 (1,000 is within the limits)", n)
	}
	t.Logf("relay set up and 1 MiB moved in %v beside 1,000 half-open connections", took.Round(time.Millisecond))
}

// The rate shapes each direction by delaying: every byte arrives, at about
// the rate.
func TestRateDelaysNotDrops(t *testing.T) {
	const rate = 4e6
	s, addr := serve(t, Config{Rate: rate})
	ta, tb, _ := s.Issue("room", "alice", "bob")
	ca, cb := dialPair(t, addr, ta, tb)
	msg := random(t, 8<<20)
	back := random(t, 8<<20)
	start := time.Now()
	var got, gotBack []byte
	var tookUp, tookDown time.Duration
	var wg sync.WaitGroup
	wg.Go(func() { got, _ = io.ReadAll(cb); tookUp = time.Since(start) })
	wg.Go(func() { gotBack, _ = io.ReadAll(ca); tookDown = time.Since(start) })
	go send(ca, msg)
	go send(cb, back)
	wg.Wait()
	if !bytes.Equal(got, msg) || !bytes.Equal(gotBack, back) {
		t.Fatalf("got %d and %d bytes, want %d each, identical (nothing dropped)", len(got), len(gotBack), len(msg))
	}
	for _, tt := range []struct {
		dir  string
		took time.Duration
	}{{"up", tookUp}, {"down", tookDown}} {
		r := float64(len(msg)) / tt.took.Seconds()
		t.Logf("%s: %.2f MB/s at a rate of %.2f MB/s each way", tt.dir, r/1e6, rate/1e6)
		// One burst comes free; a loaded machine is slower, never faster.
		if r > 1.2*rate || r < 0.3*rate {
			t.Errorf("%s: %.2f MB/s, want about %.2f MB/s (each direction its own bucket)", tt.dir, r/1e6, rate/1e6)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	s, addr := serve(t, Config{IdleTimeout: 300 * time.Millisecond})
	ta, tb, _ := s.Issue("room", "alice", "bob")
	ca, _ := dialPair(t, addr, ta, tb)
	start := time.Now()
	ca.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(ca); len(b) != 0 || err != nil {
		t.Fatalf("idle relay: read %q, %v; want the relay to close it", b, err)
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("closed after %v, want after its 300 ms idle timeout", took)
	}
}

func TestMaxDuration(t *testing.T) {
	s, addr := serve(t, Config{MaxDuration: 500 * time.Millisecond, IdleTimeout: time.Minute})
	ta, tb, _ := s.Issue("room", "alice", "bob")
	ca, cb := dialPair(t, addr, ta, tb)
	start := time.Now()
	go func() { // never idle
		for {
			if _, err := ca.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	cb.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, cb)
	if err != nil {
		t.Fatalf("read: %v, want the relay to end it", err)
	}
	if took := time.Since(start); took < 500*time.Millisecond || took > 5*time.Second || n == 0 {
		t.Errorf("ended after %v with %d bytes, want after 500 ms with bytes moved", took, n)
	}
}

// On a sniffing listener, HTTP and the relay share one port.
func TestSniffSharesAPort(t *testing.T) {
	s, err := New(Config{HandshakeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := s.Sniff(raw)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page") })}
	var wg sync.WaitGroup
	wg.Go(func() { hs.Serve(ln) })
	defer func() { hs.Close(); ln.Close(); wg.Wait(); s.Close() }()
	addr := raw.Addr().String()
	// A silent connection first: nobody waits for it.
	silent, _ := net.Dial("tcp", addr)
	defer silent.Close()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "page" {
		t.Fatalf("HTTP on the shared port: %q", body)
	}
	ta, tb, _ := s.Issue("room", "alice", "bob")
	ca, cb := dialPair(t, addr, ta, tb)
	go send(ca, []byte("through"))
	if got, _ := io.ReadAll(cb); string(got) != "through" {
		t.Fatalf("relay on the shared port: %q", got)
	}
}

// FuzzHandshake: whatever a connection sends, it is never paired unless
// it presents a live half, and it gets at most one status byte back.
func FuzzHandshake(f *testing.F) {
	var zero Token
	f.Add([]byte{})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte(Magic))
	f.Add(hello(zero))
	f.Add(append(hello(zero), "trailing bytes"...))
	f.Add([]byte("\x00LANFTR2" + string(zero[:])))
	s, err := New(Config{HandshakeTimeout: 20 * time.Millisecond, PairTimeout: 20 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	s.Issue("room", "alice", "bob") // a live pair nobody can guess
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		defer a.Close()
		s.ServeConn(b, nil)
		go a.Write(in)
		a.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(a)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the relay kept a connection that sent %q", in)
		}
		if len(got) > 1 || len(got) == 1 && got[0] == StatusPaired {
			t.Fatalf("sent %q, got %q back", in, got)
		}
	})
}

// One address holds at most a quarter of the handshakes: past it its new
// connections are closed at once, while another address still gets in.
func TestHandshakesPerAddress(t *testing.T) {
	s, addr := serve(t, Config{MaxHandshakes: 8, HandshakeTimeout: 10 * time.Second})
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.perAddr[netip.MustParseAddr("127.0.0.1")] == 2 }, "two handshakes held")
	if got := attempt(t, addr, nil); len(got) != 0 {
		t.Fatalf("a third connection from one address got %q", got)
	}
	if n := s.Stats().Refused[RefusedFull]; n != 1 {
		t.Fatalf("refused as full: %d, want 1", n)
	}
	// Another address of this machine is not held back.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("no second loopback address here: %v", err)
	}
	defer c.Close()
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.perAddr[netip.MustParseAddr("127.0.0.2")] == 1 }, "another address's handshake held")
}
