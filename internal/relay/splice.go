package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// splice joins a and b, the two halves of p, until both directions end,
// one breaks, or a timeout (idle, total) ends them.
func (s *Server) splice(a, b net.Conn, p *pair) {
	defer s.release(b)
	if !s.admit(p) {
		s.refuse(a, RefusedBusy)
		s.refuse(b, RefusedBusy)
		return
	}
	defer s.leave(p)
	defer s.release(a)
	s.relays.Add(1)
	who := Relayed{Room: p.room, A: p.a, B: p.b}
	for _, c := range []net.Conn{a, b} {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte{StatusPaired}); err != nil {
			s.cfg.Logger.Info("relay: a paired client went away", "room", p.room, "err", err)
			return
		}
		c.SetDeadline(time.Time{})
	}
	if s.cfg.Started != nil {
		s.cfg.Started(who)
	}
	s.cfg.Logger.Info("relay: relaying", "room", p.room, "a", p.a, "b", p.b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var moved atomic.Uint64
	var wg sync.WaitGroup
	wg.Go(func() { s.pipe(ctx, b, a, &last, &moved) })
	wg.Go(func() { s.pipe(ctx, a, b, &last, &moved) })
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	s.watch(done, &last, func() { cancel(); a.Close(); b.Close() })
	<-done
	st := Stats{Relays: 1, Bytes: moved.Load()}
	s.cfg.Logger.Info("relay: relay ended", "room", p.room, "a", p.a, "b", p.b, "bytes", st.Bytes)
	if s.cfg.Ended != nil {
		s.cfg.Ended(who, st)
	}
}

// watch calls end once no byte moved for IdleTimeout or the relay ran for
// MaxDuration, unless done closes first.
func (s *Server) watch(done <-chan struct{}, last *atomic.Int64, end func()) {
	start := time.Now()
	tick := time.NewTicker(max(min(s.cfg.IdleTimeout, s.cfg.MaxDuration)/8, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			idle := now.Sub(time.Unix(0, last.Load()))
			if idle >= s.cfg.IdleTimeout || now.Sub(start) >= s.cfg.MaxDuration {
				s.cfg.Logger.Info("relay: ending a relay", "idle", idle.Round(time.Millisecond), "for", now.Sub(start).Round(time.Second))
				end()
				return
			}
		}
	}
}

// pipe copies src to dst, shaped, until src ends (then dst's write side is
// closed, so that the far end reads the end too) or either breaks (then
// both are closed).
func (s *Server) pipe(ctx context.Context, dst, src net.Conn, last *atomic.Int64, moved *atomic.Uint64) {
	lim := s.shaper()
	size := chunk
	if lim != nil {
		size = min(size, lim.Burst())
	}
	buf := make([]byte, size)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if werr := s.forward(ctx, dst, buf[:n], lim); werr != nil {
				src.Close()
				dst.Close()
				return
			}
			last.Store(time.Now().UnixNano())
			moved.Add(uint64(n))
			s.bytes.Add(uint64(n))
		}
		if errors.Is(err, io.EOF) {
			closeWrite(dst)
			return
		}
		if err != nil {
			src.Close()
			dst.Close()
			return
		}
	}
}

// forward waits for the bucket, then writes b.
func (s *Server) forward(ctx context.Context, dst net.Conn, b []byte, lim *rate.Limiter) error {
	if lim != nil {
		if err := lim.WaitN(ctx, len(b)); err != nil {
			return err
		}
	}
	_, err := dst.Write(b)
	return err
}

// closeWrite half-closes c where it can, closes it otherwise.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// Dial connects to the relay at addr (host:port), presents tok and returns
// once the relay paired it with the peer's connection: then the
// connection's bytes are the peer's. A refusal returns ErrRefused, ErrBusy
// or ErrNoPartner. ctx bounds the whole wait.
func Dial(ctx context.Context, addr string, tok Token) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("relay: connect to %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	return handshakeClient(ctx, c, addr, tok, stop)
}

// handshakeClient presents tok on c and waits for the relay's status;
// stop ends the context's hold on c's deadline. c is closed on failure.
func handshakeClient(ctx context.Context, c net.Conn, addr string, tok Token, stop func() bool) (net.Conn, error) {
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	if _, err := c.Write(append([]byte(Magic), tok[:]...)); err != nil {
		return nil, fmt.Errorf("relay: send the token to %s: %w", addr, err)
	}
	var st [1]byte
	if _, err := io.ReadFull(c, st[:]); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("relay: waiting at %s for the peer: %w", addr, ctx.Err())
		}
		return nil, fmt.Errorf("relay: %s closed the connection: %w", addr, err)
	}
	switch st[0] {
	case StatusPaired:
	case StatusBusy:
		return nil, ErrBusy
	case StatusTimeout:
		return nil, ErrNoPartner
	default:
		return nil, ErrRefused
	}
	if !stop() {
		return nil, fmt.Errorf("relay: %w", ctx.Err())
	}
	c.SetDeadline(time.Time{})
	ok = true
	return c, nil
}
