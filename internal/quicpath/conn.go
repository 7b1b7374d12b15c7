package quicpath

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/lanft/lanft/internal/direct"
	"github.com/quic-go/quic-go"
)

const (
	alpn = "lanft-quic/1"
	// HandshakeTimeout bounds the QUIC and TLS handshake and the stream's
	// acknowledgement.
	HandshakeTimeout = 3 * time.Second
	hello            = 'H'
	ack              = 'K'
)

// quicConfig is tuned for one bulk stream: windows large enough for a
// gigabit path with tens of milliseconds of delay, a keep-alive well
// within the idle timeout.
func quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           HandshakeTimeout,
		MaxIdleTimeout:                 30 * time.Second,
		KeepAlivePeriod:                5 * time.Second,
		InitialStreamReceiveWindow:     8 << 20,
		MaxStreamReceiveWindow:         32 << 20,
		InitialConnectionReceiveWindow: 12 << 20,
		MaxConnectionReceiveWindow:     48 << 20,
		MaxIncomingStreams:             1,
		MaxIncomingUniStreams:          -1,
	}
}

func tlsFor(cert *direct.Cert, want string, server bool) *tls.Config {
	c := cert.TLSConfig(want, server)
	c.NextProtos = []string{alpn}
	return c
}

// Conn is a verified QUIC connection's one stream. It owns the socket.
type Conn struct {
	*quic.Stream
	conn   *quic.Conn
	tr     *quic.Transport
	logger *slog.Logger

	closeOnce sync.Once
}

// Accept waits, as the sharer, for the peer's QUIC connection on the
// punched socket: only from peer, with the certificate want. Connections
// that fail a check are closed; Accept keeps waiting until ctx ends. On
// failure the socket is closed.
func (s *Socket) Accept(ctx context.Context, cert *direct.Cert, want string, peer netip.AddrPort) (*Conn, error) {
	tr := &quic.Transport{Conn: s.udp}
	ln, err := tr.Listen(tlsFor(cert, want, true), quicConfig())
	if err != nil {
		s.closeTransport(tr)
		return nil, fmt.Errorf("quicpath: listen: %w", err)
	}
	for {
		qc, err := ln.Accept(ctx)
		if err != nil {
			ln.Close()
			s.closeTransport(tr)
			return nil, fmt.Errorf("quicpath: no verified connection: %w", err)
		}
		from := qc.RemoteAddr().(*net.UDPAddr).AddrPort()
		if from.Addr().Unmap() != peer.Addr() {
			s.logger.Warn("quicpath: refusing a connection from another host", "from", from, "want", peer)
			qc.CloseWithError(1, "not the peer")
			continue
		}
		st, err := acceptHello(ctx, qc)
		if err != nil {
			s.logger.Warn("quicpath: refusing a connection", "from", from, "err", err)
			qc.CloseWithError(1, "no hello")
			continue
		}
		ln.Close() // this connection stays
		return &Conn{Stream: st, conn: qc, tr: tr, logger: s.logger}, nil
	}
}

// acceptHello takes the peer's stream and acknowledges its first byte.
func acceptHello(ctx context.Context, qc *quic.Conn) (*quic.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, HandshakeTimeout)
	defer cancel()
	st, err := qc.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	st.SetReadDeadline(time.Now().Add(HandshakeTimeout))
	var b [1]byte
	if _, err := io.ReadFull(st, b[:]); err != nil || b[0] != hello {
		return nil, fmt.Errorf("read hello: %v (0x%02x)", err, b[0])
	}
	st.SetReadDeadline(time.Time{})
	if _, err := st.Write([]byte{ack}); err != nil {
		return nil, err
	}
	return st, nil
}

// Dial connects, as the receiver, to the sharer at peer on the punched
// socket and returns once the sharer acknowledged (so its checks passed).
// On failure the socket is closed.
func (s *Socket) Dial(ctx context.Context, cert *direct.Cert, want string, peer netip.AddrPort) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, HandshakeTimeout)
	defer cancel()
	tr := &quic.Transport{Conn: s.udp}
	qc, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(peer), tlsFor(cert, want, false), quicConfig())
	if err != nil {
		s.closeTransport(tr)
		return nil, fmt.Errorf("quicpath: handshake: %w", err)
	}
	c, err := dialHello(ctx, qc)
	if err != nil {
		qc.CloseWithError(1, "refused")
		s.closeTransport(tr)
		return nil, err
	}
	return &Conn{Stream: c, conn: qc, tr: tr, logger: s.logger}, nil
}

func dialHello(ctx context.Context, qc *quic.Conn) (*quic.Stream, error) {
	st, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("quicpath: open stream: %w", err)
	}
	if _, err := st.Write([]byte{hello}); err != nil {
		return nil, fmt.Errorf("quicpath: hello: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetReadDeadline(dl)
	}
	var b [1]byte
	if _, err := io.ReadFull(st, b[:]); err != nil {
		return nil, fmt.Errorf("%w: no acknowledgement (%v)", direct.ErrRefused, err)
	}
	if b[0] != ack {
		return nil, fmt.Errorf("%w: unexpected acknowledgement 0x%02x", direct.ErrRefused, b[0])
	}
	st.SetReadDeadline(time.Time{})
	return st, nil
}

func (s *Socket) closeTransport(tr *quic.Transport) {
	tr.Close()
	s.udp.Close()
}

// Read reads the stream; the peer closing the connection after its last
// words reads as the end of the stream.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Stream.Read(p)
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == 0 {
		err = io.EOF
	}
	return n, err
}

// Close closes the connection and the socket. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		st := c.conn.ConnectionStats()
		c.logger.Info("quicpath: closed", "sent", st.BytesSent, "packets", st.PacketsSent, "lost", st.PacketsLost,
			"received", st.BytesReceived, "rtt", st.SmoothedRTT, "min_rtt", st.MinRTT, "cwnd", st.CongestionWindow)
		c.conn.CloseWithError(0, "")
		c.tr.Close()
		c.tr.Conn.Close()
	})
	return nil
}

// Linger ends our side of the stream, then waits up to d for the peer to
// end its side or close, discarding what still arrives, and closes. The
// side that speaks last uses it so that its last words are read.
func (c *Conn) Linger(d time.Duration) error {
	_ = c.Stream.Close()
	_ = c.Stream.SetReadDeadline(time.Now().Add(d))
	_, _ = io.Copy(io.Discard, c)
	return c.Close()
}
