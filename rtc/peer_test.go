package rtc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lanft/lanft/internal/lanfttest"
)

// loopback keeps every ICE packet of these tests on lo.
var loopback = Config{Interfaces: []string{"lo"}}

// pair connects two in-process peers, passing signals directly (as Pion's
// own signalPair does), and returns the offerer's and answerer's streams.
func pair(t testing.TB, cfg Config) (*Stream, *Stream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var a, b *Peer
	toB := make(chan Signal, 64)
	toA := make(chan Signal, 64)
	var err error
	a, err = NewPeer(cfg, func(s Signal) error { toB <- s; return nil })
	if err != nil {
		t.Fatal(err)
	}
	b, err = NewPeer(cfg, func(s Signal) error { toA <- s; return nil })
	if err != nil {
		t.Fatal(err)
	}
	relay := func(ch chan Signal, p *Peer) {
		for {
			select {
			case s := <-ch:
				if err := p.Handle(s); err != nil {
					t.Errorf("handle %s: %v", s.Kind, err)
				}
			case <-ctx.Done():
				return
			}
		}
	}
	go relay(toB, b)
	go relay(toA, a)
	sa, sb := connect(ctx, t, a, b)
	t.Cleanup(func() { sa.Close(); sb.Close() })
	return sa, sb
}

// connect dials from a and accepts at b at once, and returns their
// streams; it fails the test when they do not connect.
func connect(ctx context.Context, t testing.TB, a, b *Peer) (*Stream, *Stream) {
	t.Helper()
	var sa, sb *Stream
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { sa, err = a.Dial(gctx); return })
	g.Go(func() (err error) { sb, err = b.Accept(gctx); return })
	if err := g.Wait(); err != nil {
		a.Close()
		b.Close()
		t.Fatalf("connect: %v", err)
	}
	return sa, sb
}

func TestStreamCarriesBytesBothWays(t *testing.T) {
	a, b := pair(t, loopback)
	// 8 MiB plus an odd tail, written in sizes that straddle message boundaries.
	data := make([]byte, 8<<20+12345)
	rand.Read(data)
	want := sha256.Sum256(data)

	var g errgroup.Group
	g.Go(func() error {
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 100_000)
			if _, err := a.Write(rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		// The reply proves the other direction works too.
		reply := make([]byte, 2)
		if _, err := io.ReadFull(a, reply); err != nil {
			return err
		}
		if string(reply) != "ok" {
			return errors.New("bad reply " + string(reply))
		}
		return nil
	})
	g.Go(func() error {
		h := sha256.New()
		// A small read buffer exercises the split of one message over reads.
		if _, err := io.CopyBuffer(h, io.LimitReader(b, int64(len(data))), make([]byte, 1000)); err != nil {
			return err
		}
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			return errors.New("received bytes differ from sent bytes")
		}
		_, err := b.Write([]byte("ok"))
		return err
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseDeliversLastWriteThenEOF(t *testing.T) {
	a, b := pair(t, loopback)
	msg := bytes.Repeat([]byte("x"), 300_000)
	if _, err := a.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(b)
	if len(got) != len(msg) {
		t.Fatalf("got %d bytes before close (err %v), want %d", len(got), err, len(msg))
	}
}

func TestWriteBlocksWhenReceiverStalls(t *testing.T) {
	a, b := pair(t, Config{Interfaces: []string{"lo"}, ReceiveBuffer: 256 << 10})
	// Nobody reads b: the writer must stall instead of buffering without bound.
	var wrote int64
	done := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for i := 0; i < 4096; i++ { // 256 MiB would be far past any buffer
			n, err := a.Write(chunk)
			wrote += int64(n)
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		t.Fatalf("writer finished 256 MiB to a reader that never reads (err %v)", err)
	case <-time.After(2 * time.Second):
	}
	// Reading drains it and the writer makes progress again.
	go io.Copy(io.Discard, b)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("writer did not finish after the reader started reading")
	}
}

func TestHandleRejectsBadSignals(t *testing.T) {
	p, err := NewPeer(loopback, func(Signal) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tests := []struct {
		name string
		sig  Signal
		want string
	}{
		{"not json", Signal{KindOffer, []byte("{")}, "decode offer"},
		{"answer in offer", Signal{KindOffer, []byte(`{"type":"answer","sdp":"v=0"}`)}, "description of type"},
		{"bad candidate", Signal{KindCandidate, []byte(`[]`)}, "decode candidate"},
		{"unknown kind", Signal{"bye", nil}, "unknown signal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Handle(tt.sig)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestAcceptGivesUpWhenContextEnds(t *testing.T) {
	p, err := NewPeer(loopback, func(Signal) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := p.Accept(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
}

func BenchmarkStream(b *testing.B) {
	a, r := pair(b, loopback)
	chunk := make([]byte, 256<<10)
	b.SetBytes(int64(len(chunk)))
	done := make(chan int64)
	go func() {
		n, _ := io.CopyBuffer(io.Discard, io.LimitReader(r, int64(b.N)*int64(len(chunk))), make([]byte, 256<<10))
		done <- n
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	<-done
}

func TestFingerprintsMatchAcrossTheConnection(t *testing.T) {
	a, b := pair(t, loopback)
	ra, err := a.peer.RemoteFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.peer.RemoteFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	if ra != b.peer.LocalFingerprint() || rb != a.peer.LocalFingerprint() {
		t.Fatalf("remote fingerprints %q / %q, want %q / %q", ra, rb, b.peer.LocalFingerprint(), a.peer.LocalFingerprint())
	}
	if !strings.HasPrefix(ra, "sha-256 ") || len(ra) != len("sha-256 ")+32*3-1 {
		t.Fatalf("fingerprint %q is not a sha-256 one", ra)
	}
}

func TestSDPFingerprint(t *testing.T) {
	const fp = "AB:CD"
	tests := []struct {
		name, sdp, want, err string
	}{
		{"one", "v=0\r\na=fingerprint:sha-256 ab:cd\r\n", "sha-256 " + fp, ""},
		{"repeated alike", "a=fingerprint:sha-256 AB:CD\na=fingerprint:sha-256 ab:cd\n", "sha-256 " + fp, ""},
		{"two different", "a=fingerprint:sha-256 AB:CD\na=fingerprint:sha-256 EF:01\n", "", "several"},
		{"none", "v=0\r\n", "", "none"},
		{"other algorithm", "a=fingerprint:sha-1 AB\n", "", "unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, _ := json.Marshal(map[string]string{"type": "offer", "sdp": tt.sdp})
			got, err := SDPFingerprint(payload)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %q, %v; want an error saying %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestLingerLetsTheLastMessageArrive(t *testing.T) {
	a, b := pair(t, loopback)
	// b speaks last: its final message must reach a even though b closes
	// right after writing it.
	if _, err := b.Write([]byte("OK")); err != nil {
		t.Fatal(err)
	}
	lingered := make(chan error, 1)
	go func() { lingered <- b.Linger(5 * time.Second) }()
	got := make([]byte, 2)
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "OK" {
		t.Fatalf("got %q, %v", got, err)
	}
	start := time.Now()
	a.Close()
	if err := <-lingered; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Linger took %v after the remote closed", d)
	}
}

// Connecting, moving a few bytes and closing log no warning: what
// --log-level warn shows a user is worth reading (Pion warned "didn't
// Detach" on every connection while lanft detached after its OnOpen
// callback, and SCTP that it could not write once DTLS had closed).
func TestConnectingLogsNoWarnings(t *testing.T) {
	var logs lanfttest.SyncBuffer
	cfg := loopback
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, b := pair(t, cfg)
	if _, err := a.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	<-a.peer.Done()
	<-b.peer.Done()
	time.Sleep(100 * time.Millisecond) // Pion's loops end after Close returns
	if s := logs.String(); s != "" {
		t.Errorf("connecting logged warnings:\n%s", s)
	}
}
