// Package direct moves a transfer's bytes between two lanft peers over a
// direct TCP connection with TLS 1.3, bound to identities the peers have
// already verified on another channel (lanft's WebRTC data channel, after
// the device-key proofs, the DTLS fingerprint check and the --code check).
//
// The package knows nothing of WebRTC: it makes and checks the connection.
// What the two sides must tell each other (certificate fingerprints, a
// one-time token, the address and port) travels as the messages below over
// the verified channel, never through the signaling host:
//
//	receiver                       verified channel                    sharer
//	  NewCert ──── Hello {v, cert: fp(receiver's cert)} ─────────────────▶
//	                                                     Listen on the ICE
//	                                                     address, port :0
//	         ◀──── Offer {v, addr, cert: fp(sharer's cert), token} ───────
//	                        (an Offer without addr: no direct path)
//	  Dial addr ═════ TCP + TLS 1.3, both certificates checked ═════▶ Accept
//	            ═════ token (32 bytes) ═════════════════════════════▶ checks
//	            ◀════ 'K' ════════════════════════════════════════════
//	  ──────────── Choice {v, path: "tcp" | "datachannel"} ─────────────▶
//
// Messages on the verified channel are a u16 big-endian length and a JSON
// object of at most 4 KiB. The listener accepts connections only from the
// peer's address; the TLS handshake requires the client certificate whose
// fingerprint came in Hello (and the client requires the server's from
// Offer); the token must then arrive first, and works once. Each
// certificate is fresh for one connection (Ed25519, self-signed), so a
// fingerprint says "the peer on the verified channel, now". A connection
// failing any check is closed before a byte of the transfer is sent on it,
// and the listener keeps waiting for the right one until its deadline.
//
// The receiver decides (Choice) once its Dial has returned, so both sides
// use the same path: the direct one only if the handshake and token check
// succeeded, the verified channel otherwise.
package direct

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/lanft/lanft/bindif"
)

// Version is the version of the messages this package speaks.
const Version = 1

// Paths a Choice names.
const (
	ChoiceTCP         = "tcp"
	ChoiceDataChannel = "datachannel"
	// ChoiceRelay: the direct connection failed; both now try a TCP relay
	// (the sharer's Offer had Relay), and a second Choice follows.
	ChoiceRelay = "relay"
	// ChoiceTCPRelay: the session over the relay (Over) succeeded.
	ChoiceTCPRelay = "tcp-relay"
	// ChoiceQUIC: QUIC over a hole-punched UDP pair (internal/quicpath)
	// succeeded; offered with Hello.QUIC and Offer.QUIC.
	ChoiceQUIC = "quic"
)

const (
	tokenLen      = 32
	maxMessage    = 60 << 10 // a push offer carries a text of up to 32 KiB (DESIGN-19-20)
	maxHandshakes = 4        // concurrent handshakes per listener; more are refused
	ack           = 'K'
	// handshakeTimeout bounds one connection's TLS handshake and token.
	handshakeTimeout = 3 * time.Second
)

// ErrRefused is returned by Dial when the other end is not the peer that
// sent the Offer, or refused us.
var ErrRefused = errors.New("direct: refused")

// Hello is the receiver's first message.
type Hello struct {
	V    int    `json:"v"`
	Cert string `json:"cert"` // hex SHA-256 of the receiver's certificate (DER)
	// Relay: the receiver can move the bytes over a TCP relay (Over).
	Relay bool `json:"relay,omitempty"`
	// QUIC: the receiver can move the bytes over QUIC on a hole-punched
	// UDP pair (internal/quicpath).
	QUIC bool `json:"quic,omitempty"`
}

// Offer is the sharer's answer to Hello.
type Offer struct {
	V     int    `json:"v"`
	Addr  string `json:"addr,omitempty"` // ip:port; empty: no direct path
	Cert  string `json:"cert,omitempty"`
	Token string `json:"token,omitempty"` // hex, 32 bytes
	Why   string `json:"why,omitempty"`   // why there is no direct path
	// Relay: the sharer will try a TCP relay with Cert when there is no
	// direct path (no Addr) or the receiver's Choice is ChoiceRelay.
	Relay bool `json:"relay,omitempty"`
	// QUIC: the sharer tries QUIC with Cert on a hole-punched UDP pair;
	// both sides' quicpath.Candidate messages follow, sharer's first.
	QUIC bool `json:"quic,omitempty"`
}

// Choice is the receiver's last message: which path both use.
type Choice struct {
	V    int    `json:"v"`
	Path string `json:"path"`
}

// WriteMessage writes v to w as one message.
func WriteMessage(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("direct: encode message: %w", err)
	}
	if len(b) > maxMessage {
		return fmt.Errorf("direct: message of %d bytes", len(b))
	}
	out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(b)), uint16(len(b)))
	if _, err := w.Write(append(out, b...)); err != nil {
		return fmt.Errorf("direct: send message: %w", err)
	}
	return nil
}

// ReadMessage reads one message from r into v.
func ReadMessage(r io.Reader, v any) error {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("direct: read message: %w", err)
	}
	n := binary.BigEndian.Uint16(hdr[:])
	if n > maxMessage {
		return fmt.Errorf("direct: message of %d bytes, more than %d", n, maxMessage)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("direct: read message: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("direct: decode message: %w", err)
	}
	return nil
}

// Cert is a fresh certificate for one connection.
type Cert struct {
	tls tls.Certificate
	fp  string
}

// NewCert makes a self-signed Ed25519 certificate.
func NewCert() (*Cert, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("direct: new key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, fmt.Errorf("direct: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("direct: certificate: %w", err)
	}
	return &Cert{tls: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, fp: fingerprint(der)}, nil
}

// Fingerprint is the hex SHA-256 of the certificate's DER encoding.
func (c *Cert) Fingerprint() string { return c.fp }

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// TLSConfig is the TLS 1.3 configuration the direct path uses, for
// another transport bound the same way (QUIC, internal/quicpath): this
// certificate, and exactly the peer certificate whose fingerprint is want.
func (c *Cert) TLSConfig(want string, server bool) *tls.Config { return tlsConfig(c, want, server) }

// tlsConfig requires TLS 1.3 and exactly the peer certificate want.
func tlsConfig(c *Cert, want string, server bool) *tls.Config {
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.tls},
		// No CA: the certificate is checked against the fingerprint that
		// came over the verified channel, which is stronger.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) != 1 {
				return fmt.Errorf("%w: %d certificates", ErrRefused, len(raw))
			}
			if got := fingerprint(raw[0]); subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				return fmt.Errorf("%w: certificate %.16s... is not the verified peer's", ErrRefused, got)
			}
			return nil
		},
	}
	if server {
		cfg.ClientAuth = tls.RequireAnyClientCert
	}
	return cfg
}

// ListenConfig says where to listen and whom to let in.
type ListenConfig struct {
	// Addr is the local address to listen on (port 0 is used).
	Addr netip.Addr
	// Peer is the only source address accepted.
	Peer netip.Addr
	// PeerCert is the fingerprint from the peer's Hello.
	PeerCert string
	Logger   *slog.Logger
}

// Listener waits for the one connection its Offer allows.
type Listener struct {
	cfg   ListenConfig
	ln    *net.TCPListener
	cert  *Cert
	token [tokenLen]byte
	offer Offer

	mu   sync.Mutex
	used bool // the token was spent

	closeOnce sync.Once
	closeErr  error
}

// Listen opens a listener on cfg.Addr and returns it with the Offer to
// send to the peer. It starts nothing: Accept does the work.
func Listen(cfg ListenConfig) (*Listener, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if !cfg.Addr.IsValid() || !cfg.Peer.IsValid() || len(cfg.PeerCert) != 2*sha256.Size {
		return nil, errors.New("direct: listen: address, peer and peer certificate are required")
	}
	cert, err := NewCert()
	if err != nil {
		return nil, err
	}
	l := &Listener{cfg: cfg, cert: cert}
	if _, err := rand.Read(l.token[:]); err != nil {
		return nil, fmt.Errorf("direct: token: %w", err)
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(cfg.Addr, 0)))
	if err != nil {
		return nil, fmt.Errorf("direct: listen: %w", err)
	}
	l.ln = ln
	l.offer = Offer{V: Version, Addr: ln.Addr().(*net.TCPAddr).AddrPort().String(), Cert: cert.Fingerprint(), Token: hex.EncodeToString(l.token[:])}
	return l, nil
}

// Offer is what the peer needs to Dial this listener.
func (l *Listener) Offer() Offer { return l.offer }

// Cert is the listener's certificate, the one its Offer names (for a
// session Over a relay when the direct connection fails).
func (l *Listener) Cert() *Cert { return l.cert }

// Close stops listening. It is idempotent.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		if err := l.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			l.closeErr = fmt.Errorf("direct: close listener: %w", err)
		}
	})
	return l.closeErr
}

// Accept returns the first connection that passes every check, and closes
// the listener: the Offer works once. Connections from another address,
// with another certificate or without the token are closed and logged;
// Accept keeps waiting until ctx ends.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	won := make(chan *Conn, 1)
	sem := make(chan struct{}, maxHandshakes)
	var wg sync.WaitGroup
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			break
		}
		from := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		if from != l.cfg.Peer {
			l.cfg.Logger.Warn("direct: refusing a connection from another host", "from", from, "want", l.cfg.Peer)
			c.SetLinger(0)
			c.Close()
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			l.cfg.Logger.Warn("direct: refusing a connection: too many handshakes at once", "from", from)
			c.Close()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			tc, err := l.handshake(ctx, c)
			if err != nil {
				l.cfg.Logger.Warn("direct: refusing a connection", "from", from, "err", err)
				return
			}
			won <- tc // the token works once: only one connection gets here
			cancel()
		})
	}
	wg.Wait()
	l.Close()
	select {
	case c := <-won:
		return c, nil
	default:
		return nil, fmt.Errorf("direct: no verified connection: %w", context.Cause(ctx))
	}
}

// handshake runs TLS, reads and spends the token, and acknowledges it.
func (l *Listener) handshake(ctx context.Context, c *net.TCPConn) (*Conn, error) {
	tc := tls.Server(c, tlsConfig(l.cert, l.cfg.PeerCert, true))
	ok := false
	defer func() {
		if !ok {
			tc.Close()
		}
	}()
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	if err := tc.HandshakeContext(ctx); err != nil {
		stop()
		return nil, fmt.Errorf("direct: handshake: %w", err)
	}
	var got [tokenLen]byte
	_, err := io.ReadFull(tc, got[:])
	if !stop() {
		return nil, fmt.Errorf("direct: %w", context.Cause(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("direct: read token: %w", err)
	}
	l.mu.Lock()
	valid := !l.used && subtle.ConstantTimeCompare(got[:], l.token[:]) == 1
	if valid {
		l.used = true
	}
	l.mu.Unlock()
	if !valid {
		return nil, fmt.Errorf("%w: wrong or spent token", ErrRefused)
	}
	if _, err := tc.Write([]byte{ack}); err != nil {
		return nil, fmt.Errorf("direct: acknowledge: %w", err)
	}
	c.SetDeadline(time.Time{})
	ok = true
	return newConn(tc, c), nil
}

// Dial connects to the sharer's Offer from local (the address the
// verified channel uses here; invalid: any) with cert, and returns once the
// sharer has checked the token.
func Dial(ctx context.Context, local netip.Addr, cert *Cert, o Offer) (*Conn, error) {
	if o.V < 1 || o.Addr == "" {
		return nil, errors.New("direct: the offer has no address")
	}
	token, err := hex.DecodeString(o.Token)
	if err != nil || len(token) != tokenLen {
		return nil, errors.New("direct: the offer's token is malformed")
	}
	d := net.Dialer{}
	if local.IsValid() {
		// From the verified channel's address, over its interface: a VPN
		// route over the LAN's range does not take the connection.
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
		d.Control = bindif.Control(bindif.IfaceOf(local))
	}
	raw, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("direct: %w", err)
	}
	c := raw.(*net.TCPConn)
	tc := tls.Client(c, tlsConfig(cert, o.Cert, false))
	ok := false
	defer func() {
		if !ok {
			tc.Close()
		}
	}()
	if dl, has := ctx.Deadline(); has {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("direct: handshake: %w", err)
	}
	if _, err := tc.Write(token); err != nil {
		return nil, fmt.Errorf("direct: send token: %w", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(tc, b[:]); err != nil {
		return nil, fmt.Errorf("%w: no acknowledgement (%v)", ErrRefused, err)
	}
	if b[0] != ack {
		return nil, fmt.Errorf("%w: unexpected acknowledgement 0x%02x", ErrRefused, b[0])
	}
	if !stop() {
		return nil, fmt.Errorf("direct: %w", ctx.Err())
	}
	c.SetDeadline(time.Time{})
	ok = true
	return newConn(tc, c), nil
}

// Over runs the direct path's TLS 1.3 session over raw, a connection
// that is already there (a TCP relay's, spliced to the peer): server is
// the sharer's end. Each end requires the other's certificate (want, its
// fingerprint from the verified channel), and the server acknowledges once
// its handshake is done, so that the client's success means both ends'.
// raw is closed on failure.
func Over(ctx context.Context, raw net.Conn, cert *Cert, want string, server bool) (*Conn, error) {
	var tc *tls.Conn
	if server {
		tc = tls.Server(raw, tlsConfig(cert, want, true))
	} else {
		tc = tls.Client(raw, tlsConfig(cert, want, false))
	}
	ok := false
	defer func() {
		if !ok {
			tc.Close()
		}
	}()
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Now()) })
	defer stop()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("direct: handshake over the relay: %w", err)
	}
	var b [1]byte
	if server {
		if _, err := tc.Write([]byte{ack}); err != nil {
			return nil, fmt.Errorf("direct: acknowledge: %w", err)
		}
	} else if _, err := io.ReadFull(tc, b[:]); err != nil || b[0] != ack {
		return nil, fmt.Errorf("%w: no acknowledgement over the relay (%v)", ErrRefused, err)
	}
	if !stop() {
		return nil, fmt.Errorf("direct: %w", ctx.Err())
	}
	raw.SetDeadline(time.Time{})
	ok = true
	return newConn(tc, raw), nil
}

// Conn is a verified direct connection. Its reads run ahead: a goroutine
// of its own reads and decrypts the next records while the caller hashes
// and writes the last ones, so that a receiver uses two cores.
type Conn struct {
	*tls.Conn
	tcp net.Conn

	full chan chunk    // read ahead, in order
	free chan []byte   // buffers to read into
	stop chan struct{} // closed by Close
	done chan struct{} // the reading goroutine ended
	cur  chunk         // what Read returns next
	err  error         // the reading goroutine's last error, once cur is drained

	closeOnce sync.Once
	closeErr  error
}

type chunk struct {
	buf []byte // the whole buffer, to give back
	b   []byte // the unread part
	err error
}

const (
	readAheadBuffers = 4
	readAheadSize    = 256 << 10
)

func newConn(tc *tls.Conn, c net.Conn) *Conn {
	conn := &Conn{Conn: tc, tcp: c,
		full: make(chan chunk, readAheadBuffers), free: make(chan []byte, readAheadBuffers),
		stop: make(chan struct{}), done: make(chan struct{})}
	for range readAheadBuffers {
		conn.free <- make([]byte, readAheadSize)
	}
	go conn.readAhead()
	return conn
}

// readAhead reads into free buffers until an error (the end of the
// stream, or Close).
func (c *Conn) readAhead() {
	defer close(c.done)
	for {
		var buf []byte
		select {
		case buf = <-c.free:
		case <-c.stop:
			return
		}
		n, err := c.Conn.Read(buf)
		c.full <- chunk{buf: buf, b: buf[:n], err: err} // room for every buffer: never blocks
		if err != nil {
			return
		}
	}
}

// Read returns bytes read ahead, in order.
func (c *Conn) Read(p []byte) (int, error) {
	for len(c.cur.b) == 0 {
		if c.cur.buf != nil {
			if c.cur.err != nil {
				return 0, c.cur.err
			}
			c.free <- c.cur.buf
			c.cur = chunk{}
		}
		if c.err != nil {
			return 0, c.err
		}
		select {
		case c.cur = <-c.full:
		case <-c.done:
			select { // the last chunk may be queued
			case c.cur = <-c.full:
			default:
				c.err = net.ErrClosed
			}
		}
		if len(p) == 0 {
			return 0, nil
		}
	}
	n := copy(p, c.cur.b)
	c.cur.b = c.cur.b[n:]
	return n, nil
}

// Close closes the connection and waits for the reading goroutine. It is
// idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		c.closeErr = c.Conn.Close()
		<-c.done
	})
	return c.closeErr
}

// Linger ends our side (a TLS close_notify), then waits up to d for the
// peer to close its side, discarding what still arrives, and closes. The
// side that speaks last uses it so that its last words are read.
func (c *Conn) Linger(d time.Duration) error {
	_ = c.Conn.CloseWrite()
	_ = c.tcp.SetReadDeadline(time.Now().Add(d))
	_, _ = io.Copy(io.Discard, c)
	return c.Close()
}
