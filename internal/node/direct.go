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
	if cfg.Mode.negotiates() {
		return flagDirect
	}
	return 0
}

func (l *link) setRemoteFlags(f byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remoteFlags = f
}

// pathPlan decides the path (decidePath) from this side's mode, the
// remote's preamble and ICE's route as it is now.
func (l *link) pathPlan() pathPlan {
	l.mu.Lock()
	flags := l.remoteFlags
	l.mu.Unlock()
	r, err := l.peer.Route()
	return decidePath(l.cfg.Mode, l.preambleFlags(), flags, r, err)
}

// tcpTransport is the direct connection; ending it ends the data channel.
// It ends with the peer connection too: ICE keeps checking the route while
// the bytes go over TCP, so a peer that vanishes (a cut link, a crash) is
// noticed as fast as on the data channel, and a receiver that starts over
// ends its old transfer, as it does there.
type tcpTransport struct {
	transport // a *direct.Conn, or a *quicpath.Conn
	dc        *rtc.Stream
	once      sync.Once
	closed    chan struct{}
	watched   chan struct{}
}

func newTCPTransport(conn transport, dc *rtc.Stream, peerDone <-chan struct{}) *tcpTransport {
	t := &tcpTransport{transport: conn, dc: dc, closed: make(chan struct{}), watched: make(chan struct{})}
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
	err := t.transport.Close()
	t.once.Do(func() {
		close(t.closed)
		<-t.watched
		t.dc.Close()
	})
	return err
}

func (t *tcpTransport) Linger(d time.Duration) error {
	_ = t.transport.Linger(d)
	return t.Close()
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
	plan := l.pathPlan()
	if !plan.negotiate {
		return dc, plan.taken(false), nil
	}
	ctx, done := negotiating(ctx, dc)
	defer done()
	var hello direct.Hello
	if err := direct.ReadMessage(dc, &hello); err != nil {
		return nil, "", fmt.Errorf("node: direct path: %w", err)
	}
	why := plan.why
	if plan.useQUIC(hello.QUIC) && why == "" {
		why = "the route crosses NATs: QUIC on a hole-punched pair instead"
	}
	var ln *direct.Listener
	if plan.tryDirect() && !plan.useQUIC(hello.QUIC) {
		var err error
		ln, err = direct.Listen(direct.ListenConfig{Addr: plan.local, Peer: plan.remote, PeerCert: hello.Cert, Logger: l.cfg.Logger.With("peer", l.remote)})
		if err != nil {
			why = err.Error()
		}
	}
	if ln == nil && plan.useQUIC(hello.QUIC) {
		return l.shareQUIC(ctx, dc, plan, hello, why)
	}
	if ln == nil && l.relayOffered(plan, hello) {
		return l.shareRelayOffer(ctx, dc, plan, hello, why)
	}
	if ln == nil {
		l.cfg.Logger.Info("node: no direct path; using the data channel", "peer", l.remote, "why", why)
		if err := direct.WriteMessage(dc, direct.Offer{V: direct.Version, Why: why}); err != nil {
			return nil, "", err
		}
		return dc, plan.taken(false), nil
	}
	defer ln.Close()
	actx, cancel := context.WithCancel(ctx)
	var conn *direct.Conn
	var aerr error
	var wg sync.WaitGroup
	wg.Go(func() { conn, aerr = ln.Accept(actx) })
	offer := ln.Offer()
	offer.Relay = l.relayOffered(plan, hello)
	err := direct.WriteMessage(dc, offer)
	var choice direct.Choice
	if err == nil {
		err = direct.ReadMessage(dc, &choice)
	}
	cancel()
	wg.Wait()
	switch {
	case err != nil:
		err = fmt.Errorf("node: direct path: %w", err)
	case choice.Path == direct.ChoiceRelay && offer.Relay:
		if conn != nil {
			conn.Close()
		}
		return l.shareRelay(ctx, dc, plan, ln.Cert(), hello)
	case choice.Path != direct.ChoiceTCP:
		l.cfg.Logger.Info("node: the receiver could not use the direct path; using the data channel", "peer", l.remote)
		if conn != nil {
			conn.Close()
		}
		return dc, plan.taken(false), nil
	case conn == nil:
		err = fmt.Errorf("node: %s chose the direct path, but no verified connection arrived: %w", l.remote, aerr)
	default:
		return newTCPTransport(conn, dc, l.peer.Done()), plan.taken(true), nil
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
	plan := l.pathPlan()
	if !plan.negotiate {
		return dc, plan.taken(false), nil
	}
	start := time.Now()
	if !plan.quic && plan.channel != PathDataChannel {
		l.cfg.Logger.Info("node: no hole-punched QUIC path", "peer", l.remote, "why", plan.quicWhy)
	}
	ctx, done := negotiating(ctx, dc)
	defer done()
	cert, err := direct.NewCert()
	if err != nil {
		return nil, "", err
	}
	if err := direct.WriteMessage(dc, direct.Hello{V: direct.Version, Cert: cert.Fingerprint(), Relay: plan.relay, QUIC: plan.quic}); err != nil {
		return nil, "", err
	}
	var offer direct.Offer
	if err := direct.ReadMessage(dc, &offer); err != nil {
		return nil, "", fmt.Errorf("node: direct path: %w", err)
	}
	if offer.Addr == "" && offer.QUIC {
		return l.receiveQUIC(ctx, dc, plan, cert, offer)
	}
	if offer.Addr == "" && offer.Relay && plan.relay {
		return l.receiveRelay(ctx, dc, plan, cert, offer, offer.Why)
	}
	if offer.Addr == "" {
		l.cfg.Logger.Info("node: the sharer offers no direct path; using the data channel", "peer", l.remote, "why", offer.Why)
		return dc, plan.taken(false), nil
	}
	conn, err := dialDirect(ctx, plan, cert, offer)
	if err != nil && offer.Relay && plan.relay {
		return l.receiveRelayAfter(ctx, dc, plan, cert, offer, err)
	}
	if werr := tellChoice(dc, direct.ChoiceTCP, conn, err); werr != nil {
		return nil, "", werr
	}
	if err != nil {
		l.cfg.Events(Event{Kind: EventInfo, Peer: l.remote, Text: fmt.Sprintf(
			"direct TCP path to %s unavailable after %s (%v); using the data channel", l.remote, time.Since(start).Round(time.Millisecond), err)})
		return dc, plan.taken(false), nil
	}
	return newTCPTransport(conn, dc, l.peer.Done()), plan.taken(true), nil
}

// tellChoice writes the receiver's Choice on dc: path where its dial
// worked (dialErr is nil), the data channel where it did not. Where the
// write fails it closes conn, if the dial made one, and returns the write
// error: the sharer cannot learn the path, so neither side may use it.
func tellChoice[T any, C interface {
	*T
	io.Closer
}](dc io.Writer, path string, conn C, dialErr error) error {
	choice := direct.Choice{V: direct.Version, Path: path}
	if dialErr != nil {
		choice.Path = direct.ChoiceDataChannel
	}
	err := direct.WriteMessage(dc, choice)
	if err != nil && conn != nil {
		conn.Close()
	}
	return err
}

// dialDirect connects to the offer, only at the address the verified
// connection already reaches the sharer on.
func dialDirect(ctx context.Context, plan pathPlan, cert *direct.Cert, offer direct.Offer) (*direct.Conn, error) {
	if !plan.tryDirect() {
		return nil, fmt.Errorf("no direct route: %s", plan.why)
	}
	to, err := netip.ParseAddrPort(offer.Addr)
	if err != nil || to.Addr().Unmap() != plan.remote {
		return nil, fmt.Errorf("the sharer offered %q, not its address %s", offer.Addr, plan.remote)
	}
	ctx, cancel := context.WithTimeout(ctx, directDeadline)
	defer cancel()
	return direct.Dial(ctx, plan.local, cert, offer)
}
