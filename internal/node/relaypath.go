package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/lanft/lanft/internal/direct"
	"github.com/lanft/lanft/internal/relay"
	"github.com/lanft/lanft/rtc"
)

// The relayed TCP path: two lanft CLIs whose data channel is not peer to
// peer (it goes through TURN: symmetric NATs, client isolation), or with
// --path relay (decidePath's relay), ask the signaling host
// for a TCP relay to each other (signal's relay tokens), connect out to it
// (internal/relay), and run the direct path's TLS 1.3 session over the
// spliced connection (direct.Over), bound to the certificates exchanged on
// the verified data channel: the relay sees ciphertext only, and a relay
// that splices the wrong connection gets a failed handshake. It extends
// direct's exchange additively:
//
//	receiver                 data channel                        sharer
//	  ── Hello {cert, relay: true} ───────────────────────────────▶
//	  ◀── Offer {cert, relay: true, addr?} ─────────────────────────
//	     (with addr: the direct attempt; if it fails ─ Choice "relay" ─▶)
//	  both: host ⇄ {"relay":{"peer"}} → token; relay.Dial; direct.Over
//	  ── Choice {"tcp-relay" | "datachannel"} ─────────────────────▶
//
// The data channel carries the transfer when the relay cannot (the host
// has none, refuses with --no-relay, is at its limits, or the peer never
// arrives); both sides say why.

// relayDeadline bounds a relay attempt: the token (both ask within the
// host's pairing window), the connection and the TLS handshake. It stays
// within negotiateTimeout after a failed direct attempt.
const relayDeadline = 6 * time.Second

// relayOffered reports whether the sharer offers a TCP relay: both sides
// may use one and there is a host to ask.
func (l *link) relayOffered(plan pathPlan, hello direct.Hello) bool {
	return plan.relay && hello.Relay && l.current() != nil
}

// shareRelayOffer offers the relay alone (no direct path), then runs it.
func (l *link) shareRelayOffer(ctx context.Context, dc *rtc.Stream, plan pathPlan, hello direct.Hello, why string) (transport, Path, error) {
	cert, err := direct.NewCert()
	if err != nil {
		return nil, "", err
	}
	l.cfg.Logger.Info("node: no direct path; trying a TCP relay", "peer", l.remote, "why", why)
	if err := direct.WriteMessage(dc, direct.Offer{V: direct.Version, Cert: cert.Fingerprint(), Why: why, Relay: true}); err != nil {
		return nil, "", err
	}
	return l.shareRelay(ctx, dc, plan, cert, hello)
}

// shareRelay is the sharer's side: it connects through the relay (as the
// TLS server, with cert) while it waits for the receiver's Choice.
func (l *link) shareRelay(ctx context.Context, dc *rtc.Stream, plan pathPlan, cert *direct.Cert, hello direct.Hello) (transport, Path, error) {
	rctx, cancel := context.WithTimeout(ctx, relayDeadline)
	defer cancel()
	var conn *direct.Conn
	var path Path
	var rerr error
	var wg sync.WaitGroup
	wg.Go(func() { conn, path, rerr = l.dialRelay(rctx, cert, hello.Cert, true) })
	var choice direct.Choice
	err := direct.ReadMessage(dc, &choice)
	if err != nil || choice.Path != direct.ChoiceTCPRelay {
		// The host tells both why it gives no relay: a moment for its
		// answer, then give up.
		settled := make(chan struct{})
		go func() { wg.Wait(); close(settled) }()
		select {
		case <-settled:
		case <-time.After(time.Second):
		}
		cancel()
	}
	wg.Wait()
	switch {
	case err != nil:
		err = fmt.Errorf("node: relay path: %w", err)
	case choice.Path != direct.ChoiceTCPRelay:
		if conn != nil {
			conn.Close()
		}
		l.relayUnavailable(rerr)
		return dc, plan.taken(false), nil
	case conn == nil:
		err = fmt.Errorf("node: %s chose the TCP relay, but no verified connection came through it: %w", l.remote, rerr)
	default:
		return newTCPTransport(conn, dc, l.peer.Done()), path, nil
	}
	if conn != nil {
		conn.Close()
	}
	return nil, "", err
}

// receiveRelayAfter tells the sharer that the direct attempt failed and
// tries the relay (when the sharer offered both: a direct address and,
// under the same plan, the relay).
func (l *link) receiveRelayAfter(ctx context.Context, dc *rtc.Stream, plan pathPlan, cert *direct.Cert, offer direct.Offer, derr error) (transport, Path, error) {
	if err := direct.WriteMessage(dc, direct.Choice{V: direct.Version, Path: direct.ChoiceRelay}); err != nil {
		return nil, "", err
	}
	l.cfg.Logger.Info("node: direct TCP path unavailable; trying a TCP relay", "peer", l.remote, "err", derr)
	return l.receiveRelay(ctx, dc, plan, cert, offer, derr.Error())
}

// receiveRelay is the receiver's side: it connects through the relay (as
// the TLS client) and tells the sharer whether that worked.
func (l *link) receiveRelay(ctx context.Context, dc *rtc.Stream, plan pathPlan, cert *direct.Cert, offer direct.Offer, why string) (transport, Path, error) {
	rctx, cancel := context.WithTimeout(ctx, relayDeadline)
	conn, path, err := l.dialRelay(rctx, cert, offer.Cert, false)
	cancel()
	if werr := tellChoice(dc, direct.ChoiceTCPRelay, conn, err); werr != nil {
		return nil, "", werr
	}
	if err != nil {
		l.relayUnavailable(err)
		return dc, plan.taken(false), nil
	}
	l.cfg.Logger.Info("node: using a TCP relay", "peer", l.remote, "path", path, "no direct path because", why)
	return newTCPTransport(conn, dc, l.peer.Done()), path, nil
}

// dialRelay gets a token for the remote from the host, connects to the
// relay and runs TLS over it: as the server (the sharer) or the client.
func (l *link) dialRelay(ctx context.Context, cert *direct.Cert, want string, server bool) (*direct.Conn, Path, error) {
	c := l.current()
	if c == nil {
		return nil, "", errors.New("no signaling host to ask for a relay")
	}
	t, err := c.Relay(ctx, l.remote)
	if err != nil {
		return nil, "", err
	}
	var raw net.Conn
	if t.URL != "" { // a wss:// host: through TLS, as the signaling
		raw, err = relay.DialURL(ctx, t.URL, t.TLS, relay.Token(t.Token))
	} else {
		raw, err = relay.Dial(ctx, t.Addr, relay.Token(t.Token))
	}
	if err != nil {
		return nil, "", err
	}
	conn, err := direct.Over(ctx, raw, cert, want, server)
	if err != nil {
		return nil, "", err
	}
	if t.LAN {
		return conn, PathLANRelay, nil
	}
	return conn, PathTCPRelay, nil
}

// relayUnavailable tells the user why the relay was not used.
func (l *link) relayUnavailable(err error) {
	why := "the peer could not use it"
	if err != nil && !errors.Is(err, context.Canceled) {
		why = err.Error()
	}
	l.cfg.Events(Event{Kind: EventInfo, Peer: l.remote, Text: fmt.Sprintf("no TCP relay to %s (%s); using the data channel", l.remote, why)})
}

// lanHost reports whether the host in use is one found on the LAN.
func lanHost(h Hosts) bool {
	s, ok := h.(iceScope)
	return ok && s.ICEInterfaces() != nil
}
