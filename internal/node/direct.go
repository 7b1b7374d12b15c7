package node

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/lanft/lanft/internal/direct"
	"github.com/lanft/lanft/rtc"
)

// The direct path: once a data channel is verified (link.secure), two
// lanft peers that both set flagDirect in the preamble agree over it on a
// direct TCP connection with TLS 1.3 (internal/direct's messages: Hello,
// Offer, Choice) and run the transfer there; the data channel carries the
// transfer when either side does not speak it, --path datachannel is given,
// the ICE route is not a direct one, or the connection cannot be made
// within directDeadline. The data channel stays open beside the TCP path
// until the transfer ends.

const flagDirect = 2 // preamble FLAGS bit 1

// pathAuto is --path auto, the same as an empty Config.Path.
const pathAuto Path = "auto"

const (
	// directDeadline bounds the receiver's attempt (connect, TLS, token):
	// past it the data channel carries the transfer, well within 2 s.
	directDeadline = 1500 * time.Millisecond
	// negotiateTimeout bounds the whole exchange on the data channel.
	negotiateTimeout = 10 * time.Second
)

// transport is what a transfer runs over: the data channel or the direct
// connection.
type transport interface {
	io.ReadWriteCloser
	Linger(time.Duration) error
}

// directFlag is this side's preamble flag for the direct path.
func directFlag(cfg *Config) byte {
	if cfg.Path == "" || cfg.Path == pathAuto {
		return flagDirect
	}
	return 0
}

func (l *link) setRemoteFlags(f byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remoteFlags = f
}

// directAgreed reports whether both preambles offered the direct path.
func (l *link) directAgreed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return directFlag(l.cfg) != 0 && l.remoteFlags&flagDirect != 0
}

// dataChannelPath is the Path of the data channel: ICE's selected pair
// says whether it crosses NATs or a relay.
func (l *link) dataChannelPath() Path {
	if p := l.path(); p != "" {
		return p
	}
	return PathDataChannel
}

// tcpTransport is the direct connection; ending it ends the data channel.
// It ends with the peer connection too: ICE keeps checking the route while
// the bytes go over TCP, so a peer that vanishes (a cut link, a crash) is
// noticed as fast as on the data channel, and a receiver that starts over
// ends its old transfer, as it does there.
type tcpTransport struct {
	*direct.Conn
	dc      *rtc.Stream
	once    sync.Once
	closed  chan struct{}
	watched chan struct{}
}

func newTCPTransport(conn *direct.Conn, dc *rtc.Stream, peerDone <-chan struct{}) *tcpTransport {
	t := &tcpTransport{Conn: conn, dc: dc, closed: make(chan struct{}), watched: make(chan struct{})}
	go func() {
		defer close(t.watched)
		select {
		case <-peerDone:
			conn.Close()
		case <-t.closed:
		}
	}()
	return t
}

func (t *tcpTransport) Close() error {
	err := t.Conn.Close()
	t.once.Do(func() {
		close(t.closed)
		<-t.watched
		t.dc.Close()
	})
	return err
}

func (t *tcpTransport) Linger(d time.Duration) error {
	_ = t.Conn.Linger(d)
	return t.Close()
}

// directRoute returns the local and remote addresses of the ICE route
// when it joins two host addresses, the only case a direct TCP connection
// can follow.
func (l *link) directRoute() (local, remote netip.Addr, why string) {
	r, err := l.peer.Route()
	switch {
	case err != nil:
		return local, remote, err.Error()
	case r.Local.Type != rtc.CandidateHost || r.Remote.Type != rtc.CandidateHost && r.Remote.Type != rtc.CandidatePrflx:
		return local, remote, fmt.Sprintf("the route is %s to %s, not between host addresses", r.Local.Type, r.Remote.Type)
	case r.Local.Addr.Addr().Is4() != r.Remote.Addr.Addr().Is4():
		return local, remote, "the route mixes IPv4 and IPv6"
	case r.Local.Addr.Addr().IsLinkLocalUnicast() || r.Remote.Addr.Addr().IsLinkLocalUnicast():
		return local, remote, "the route uses link-local addresses"
	}
	return r.Local.Addr.Addr(), r.Remote.Addr.Addr(), ""
}

// negotiating closes dc if ctx ends or the exchange takes too long; the
// returned func ends that (call it before cancelling anything).
func negotiating(ctx context.Context, dc io.Closer) (context.Context, func()) {
	ctx, cancel := context.WithTimeout(ctx, negotiateTimeout)
	stop := context.AfterFunc(ctx, func() { dc.Close() })
	return ctx, func() { stop(); cancel() }
}

// sharePath agrees with the receiver, after secure, on the stream the
// transfer runs over.
func (l *link) sharePath(ctx context.Context, dc *rtc.Stream) (transport, Path, error) {
	if !l.directAgreed() {
		return dc, l.dataChannelPath(), nil
	}
	ctx, done := negotiating(ctx, dc)
	defer done()
	var hello direct.Hello
	if err := direct.ReadMessage(dc, &hello); err != nil {
		return nil, "", fmt.Errorf("node: direct path: %w", err)
	}
	local, remote, why := l.directRoute()
	var ln *direct.Listener
	if why == "" {
		var err error
		ln, err = direct.Listen(direct.ListenConfig{Addr: local, Peer: remote, PeerCert: hello.Cert, Logger: l.cfg.Logger.With("peer", l.remote)})
		if err != nil {
			why = err.Error()
		}
	}
	if ln == nil {
		l.cfg.Logger.Info("node: no direct path; using the data channel", "peer", l.remote, "why", why)
		if err := direct.WriteMessage(dc, direct.Offer{V: direct.Version, Why: why}); err != nil {
			return nil, "", err
		}
		return dc, l.dataChannelPath(), nil
	}
	defer ln.Close()
	actx, cancel := context.WithCancel(ctx)
	var conn *direct.Conn
	var aerr error
	var wg sync.WaitGroup
	wg.Go(func() { conn, aerr = ln.Accept(actx) })
	err := direct.WriteMessage(dc, ln.Offer())
	var choice direct.Choice
	if err == nil {
		err = direct.ReadMessage(dc, &choice)
	}
	cancel()
	wg.Wait()
	switch {
	case err != nil:
		err = fmt.Errorf("node: direct path: %w", err)
	case choice.Path != direct.ChoiceTCP:
		l.cfg.Logger.Info("node: the receiver could not use the direct path; using the data channel", "peer", l.remote)
		if conn != nil {
			conn.Close()
		}
		return dc, l.dataChannelPath(), nil
	case conn == nil:
		err = fmt.Errorf("node: %s chose the direct path, but no verified connection arrived: %w", l.remote, aerr)
	default:
		return newTCPTransport(conn, dc, l.peer.Done()), PathTCP, nil
	}
	if conn != nil {
		conn.Close()
	}
	return nil, "", err
}

// receivePath agrees with the sharer, after secure, on the stream the
// transfer runs over: it tries the direct path for directDeadline and
// tells the sharer which one won.
func (l *link) receivePath(ctx context.Context, dc *rtc.Stream) (transport, Path, error) {
	if !l.directAgreed() {
		return dc, l.dataChannelPath(), nil
	}
	start := time.Now()
	ctx, done := negotiating(ctx, dc)
	defer done()
	cert, err := direct.NewCert()
	if err != nil {
		return nil, "", err
	}
	if err := direct.WriteMessage(dc, direct.Hello{V: direct.Version, Cert: cert.Fingerprint()}); err != nil {
		return nil, "", err
	}
	var offer direct.Offer
	if err := direct.ReadMessage(dc, &offer); err != nil {
		return nil, "", fmt.Errorf("node: direct path: %w", err)
	}
	if offer.Addr == "" {
		l.cfg.Logger.Info("node: the sharer offers no direct path; using the data channel", "peer", l.remote, "why", offer.Why)
		return dc, l.dataChannelPath(), nil
	}
	conn, err := l.dialDirect(ctx, cert, offer)
	choice := direct.Choice{V: direct.Version, Path: direct.ChoiceTCP}
	if err != nil {
		choice.Path = direct.ChoiceDataChannel
	}
	if werr := direct.WriteMessage(dc, choice); werr != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, "", werr
	}
	if err != nil {
		l.cfg.Events(Event{Kind: "info", Peer: l.remote, Text: fmt.Sprintf(
			"direct TCP path to %s unavailable after %s (%v); using the data channel", l.remote, time.Since(start).Round(time.Millisecond), err)})
		return dc, l.dataChannelPath(), nil
	}
	return newTCPTransport(conn, dc, l.peer.Done()), PathTCP, nil
}

// dialDirect connects to the offer, only at the address the verified
// connection already reaches the sharer on.
func (l *link) dialDirect(ctx context.Context, cert *direct.Cert, offer direct.Offer) (*direct.Conn, error) {
	local, remote, why := l.directRoute()
	if why != "" {
		return nil, fmt.Errorf("no direct route: %s", why)
	}
	to, err := netip.ParseAddrPort(offer.Addr)
	if err != nil || to.Addr().Unmap() != remote {
		return nil, fmt.Errorf("the sharer offered %q, not its address %s", offer.Addr, remote)
	}
	ctx, cancel := context.WithTimeout(ctx, directDeadline)
	defer cancel()
	return direct.Dial(ctx, local, cert, offer)
}
