package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/lanft/lanft/internal/direct"
	"github.com/lanft/lanft/internal/quicpath"
	"github.com/lanft/lanft/rtc"
)

// The hole-punched QUIC path: when ICE's route crosses NATs without a
// relay (decidePath's quic), two lanft CLIs move the bytes over QUIC on a
// fresh UDP socket pair, punched through the same NATs (internal/quicpath),
// with TLS 1.3 bound to the certificates exchanged on the verified data
// channel, as on the direct TCP path. It extends direct's exchange
// additively:
//
//	receiver                 data channel                        sharer
//	  ── Hello {cert, quic: true} ────────────────────────────────▶
//	  ◀── Offer {cert, quic: true, why} ───────────────────────────
//	  ◀── quicpath.Candidate {addr: STUN mapping, nonce} ──────────
//	  ── quicpath.Candidate {addr, nonce} (or {why}) ─────────────▶
//	  punch ⇄ punch; Dial QUIC ═══════════════════════════▶ Accept
//	  ── Choice {"quic" | "datachannel"} ─────────────────────────▶
//	     (no Choice when either Candidate has no addr)
//
// The data channel carries the transfer when there is no STUN server, the
// NATs map per destination (punching fails within quicpath.PunchTimeout),
// or the handshake fails; both sides say why.

// quicDeadline bounds the sharer's wait for a QUIC connection after the
// candidates: the punch and the handshake.
const quicDeadline = quicpath.PunchTimeout + quicpath.HandshakeTimeout + time.Second

// openPunch opens this side's socket and learns its mapping; on failure
// the Candidate says why and the socket is nil.
func (l *link) openPunch(ctx context.Context, plan pathPlan) (*quicpath.Socket, quicpath.Candidate) {
	no := func(why string) (*quicpath.Socket, quicpath.Candidate) {
		return nil, quicpath.Candidate{V: quicpath.Version, Why: why}
	}
	if !plan.quic {
		return no(plan.quicWhy)
	}
	server, err := l.stunServer(ctx, plan.quicLocal)
	if err != nil {
		return no(err.Error())
	}
	sock, err := quicpath.Open(plan.quicLocal, l.cfg.Logger.With("peer", l.remote))
	if err != nil {
		return no(err.Error())
	}
	mapping, err := sock.Mapping(ctx, server)
	if err != nil {
		sock.Close()
		return no(err.Error())
	}
	return sock, sock.Candidate(mapping)
}

// stunServer is the first STUN server the signaling host offers, in the
// address family of local.
func (l *link) stunServer(ctx context.Context, local netip.Addr) (netip.AddrPort, error) {
	c := l.current()
	if c == nil {
		return netip.AddrPort{}, errors.New("no signaling host to ask for a STUN server")
	}
	for _, s := range c.ICEServers() {
		for _, u := range s.URLs {
			hostport, ok := strings.CutPrefix(u, "stun:")
			if !ok {
				continue
			}
			hostport, _, _ = strings.Cut(hostport, "?")
			if _, _, err := net.SplitHostPort(hostport); err != nil {
				hostport = net.JoinHostPort(hostport, "3478")
			}
			network := "udp4"
			if local.Is6() {
				network = "udp6"
			}
			ap, err := resolveUDP(ctx, network, hostport)
			if err != nil {
				continue
			}
			return ap, nil
		}
	}
	return netip.AddrPort{}, errors.New("the signaling host offers no STUN server")
}

// resolveUDP resolves host:port, a name or an address, in network.
func resolveUDP(ctx context.Context, network, hostport string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := net.DefaultResolver.LookupPort(ctx, network, port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, map[string]string{"udp4": "ip4", "udp6": "ip6"}[network], host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: %v", host, err)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(p)), nil
}

// shareQUIC is the sharer's side: its Offer and Candidate, the receiver's
// Candidate, then the punch and Accept while it waits for the Choice.
func (l *link) shareQUIC(ctx context.Context, dc *rtc.Stream, plan pathPlan, hello direct.Hello, why string) (transport, Path, error) {
	cert, err := direct.NewCert()
	if err != nil {
		return nil, "", err
	}
	sock, mine := l.openPunch(ctx, plan)
	closeSock := func() {
		if sock != nil {
			sock.Close()
		}
	}
	err = direct.WriteMessage(dc, direct.Offer{V: direct.Version, Cert: cert.Fingerprint(), Why: why, QUIC: true})
	if err == nil {
		err = direct.WriteMessage(dc, mine)
	}
	var theirs quicpath.Candidate
	if err == nil {
		err = direct.ReadMessage(dc, &theirs)
	}
	if err != nil {
		closeSock()
		return nil, "", fmt.Errorf("node: QUIC path: %w", err)
	}
	if sock == nil || theirs.Addr == "" { // both know: no Choice follows
		closeSock()
		l.quicUnavailable(mine, theirs, nil)
		return dc, plan.taken(false), nil
	}
	theirs, err = plan.punchTarget(theirs)
	if err != nil {
		// The receiver punches in vain, then chooses the data channel.
		sock.Close()
		var choice direct.Choice
		if rerr := direct.ReadMessage(dc, &choice); rerr != nil {
			return nil, "", fmt.Errorf("node: QUIC path: %w", rerr)
		}
		l.quicUnavailable(mine, theirs, err)
		return dc, plan.taken(false), nil
	}
	actx, cancel := context.WithTimeout(ctx, quicDeadline)
	defer cancel()
	var conn *quicpath.Conn
	var qerr error
	var wg sync.WaitGroup
	wg.Go(func() {
		from, err := sock.Punch(actx, theirs)
		if err != nil {
			sock.Close()
			qerr = err
			return
		}
		conn, qerr = sock.Accept(actx, cert, hello.Cert, from)
	})
	var choice direct.Choice
	err = direct.ReadMessage(dc, &choice)
	if err != nil || choice.Path != direct.ChoiceQUIC {
		cancel()
	}
	wg.Wait()
	switch {
	case err != nil:
		err = fmt.Errorf("node: QUIC path: %w", err)
	case choice.Path != direct.ChoiceQUIC:
		if conn != nil {
			conn.Close()
		}
		l.cfg.Logger.Info("node: the receiver could not use the QUIC path; using the data channel", "peer", l.remote, "here", qerr)
		return dc, plan.taken(false), nil
	case conn == nil:
		err = fmt.Errorf("node: %s chose the QUIC path, but no verified connection arrived: %w", l.remote, qerr)
	default:
		l.cfg.Logger.Info("node: using QUIC on a hole-punched UDP path", "peer", l.remote, "local", mine.Addr, "remote", theirs.Addr)
		return newTCPTransport(conn, dc, l.peer.Done()), PathQUIC, nil
	}
	if conn != nil {
		conn.Close()
	}
	return nil, "", err
}

// receiveQUIC is the receiver's side: the sharer's Candidate, its own,
// then the punch and Dial, and the Choice.
func (l *link) receiveQUIC(ctx context.Context, dc *rtc.Stream, plan pathPlan, cert *direct.Cert, offer direct.Offer) (transport, Path, error) {
	start := time.Now()
	var theirs quicpath.Candidate
	if err := direct.ReadMessage(dc, &theirs); err != nil {
		return nil, "", fmt.Errorf("node: QUIC path: %w", err)
	}
	sock, mine := l.openPunch(ctx, plan)
	if sock != nil && theirs.Addr != "" {
		var err error
		if theirs, err = plan.punchTarget(theirs); err != nil {
			mine = quicpath.Candidate{V: quicpath.Version, Why: err.Error()}
		}
	}
	if sock != nil && (theirs.Addr == "" || mine.Addr == "") {
		sock.Close()
		sock = nil
	}
	if err := direct.WriteMessage(dc, mine); err != nil {
		if sock != nil {
			sock.Close()
		}
		return nil, "", err
	}
	if sock == nil {
		l.quicUnavailable(mine, theirs, nil)
		return dc, plan.taken(false), nil
	}
	var conn *quicpath.Conn
	from, err := sock.Punch(ctx, theirs)
	if err == nil {
		conn, err = sock.Dial(ctx, cert, offer.Cert, from)
	} else {
		sock.Close()
	}
	if werr := tellChoice(dc, direct.ChoiceQUIC, conn, err); werr != nil {
		return nil, "", werr
	}
	if err != nil {
		l.quicUnavailable(mine, theirs, fmt.Errorf("after %s: %w", time.Since(start).Round(time.Millisecond), err))
		return dc, plan.taken(false), nil
	}
	l.cfg.Logger.Info("node: using QUIC on a hole-punched UDP path", "peer", l.remote, "local", mine.Addr, "remote", from,
		"after", time.Since(start).Round(time.Millisecond))
	return newTCPTransport(conn, dc, l.peer.Done()), PathQUIC, nil
}

// punchTarget is the peer's Candidate aimed at the one of its addresses
// that is at the address the verified connection reaches it on: its
// mapping through NATs, its own address where no NAT is between us (a
// routed LAN). Punch datagrams go nowhere else.
func (p pathPlan) punchTarget(c quicpath.Candidate) (quicpath.Candidate, error) {
	for _, s := range []string{c.Addr, c.Local} {
		if a, err := netip.ParseAddrPort(s); err == nil && a.Addr().Unmap() == p.quicRemote {
			c.Addr = s
			return c, nil
		}
	}
	return c, fmt.Errorf("the peer's mapping %q is not at the address ICE reaches it on (%s)", c.Addr, p.quicRemote)
}

// quicUnavailable tells the user why the QUIC path was not used.
func (l *link) quicUnavailable(mine, theirs quicpath.Candidate, err error) {
	var why string
	switch {
	case err != nil:
		why = err.Error()
	case mine.Why != "":
		why = mine.Why
	case theirs.Why != "":
		why = fmt.Sprintf("%s cannot: %s", l.remote, theirs.Why)
	default:
		why = "no candidate"
	}
	l.cfg.Logger.Info("node: no hole-punched QUIC path; using the data channel", "peer", l.remote, "why", why)
	l.cfg.Events(Event{Kind: EventInfo, Peer: l.remote, Text: fmt.Sprintf(
		"no hole-punched QUIC path to %s (%s); using the data channel", l.remote, why)})
}
