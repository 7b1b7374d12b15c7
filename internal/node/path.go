package node

import (
	"fmt"
	"net/netip"

	"github.com/lanft/lanft/rtc"
)

// Two words, two types: a Mode is the path the user asked for (--path,
// LANFT_PATH), a Path the one the bytes took. decidePath is the one place
// that turns the first into the second, from both peers' preambles and
// ICE's route; ParseMode the one place that reads the flag.

// Mode is how the bytes may move, as asked for with --path or LANFT_PATH.
// The zero value is ModeAuto.
type Mode string

// The modes.
const (
	// ModeAuto tries the direct TCP path (on a LAN) or QUIC on a
	// hole-punched pair (through NATs) and falls back to the data
	// channel over the best pair ICE finds.
	ModeAuto Mode = "auto"
	// ModeDataChannel never uses the direct TCP path.
	ModeDataChannel Mode = "datachannel"
	// ModeRelay moves the bytes only through a relay: the signaling host's
	// TCP relay between two lanft CLIs, else its TURN relay (the data
	// channel always goes through TURN).
	ModeRelay Mode = "relay"
)

// ParseMode reads --path (or LANFT_PATH): auto (or empty), datachannel or
// relay.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "", ModeAuto:
		return ModeAuto, nil
	case ModeDataChannel, ModeRelay:
		return m, nil
	}
	return "", fmt.Errorf("--path %q (or LANFT_PATH): want auto, datachannel or relay", s)
}

// offersDirect reports whether m lets this side offer the direct TCP path
// (the preamble's flagDirect).
func (m Mode) offersDirect() bool { return m == "" || m == ModeAuto }

// negotiates reports whether this side speaks direct's messages after
// the preamble (the preamble's flagDirect): to offer the direct path, a
// TCP relay, or both.
func (m Mode) negotiates() bool { return m.offersDirect() || m == ModeRelay }

// relays reports whether m lets the bytes go over a TCP relay when there
// is no direct path.
func (m Mode) relays() bool { return m.negotiates() }

// relayOnly reports whether m restricts ICE to the TURN relay.
func (m Mode) relayOnly() bool { return m == ModeRelay }

// Path says how a connection's bytes move between two peers. It is the one
// vocabulary for the progress line and the --json "path" field, whichever
// part of lanft chose the path (the direct TCP path on a LAN, ICE's
// candidate pair through NATs or a TURN relay).
type Path string

// The paths, fastest first.
const (
	// PathTCP: a direct TCP connection with TLS 1.3, bound to the
	// identities verified on the data channel (both ends lanft, a route
	// between them).
	PathTCP Path = "tcp"
	// PathDataChannel: the WebRTC data channel over host candidates (the
	// same LAN, no NAT in between).
	PathDataChannel Path = "datachannel"
	// PathQUIC: QUIC with TLS 1.3 over a hole-punched UDP address pair
	// (internal/quicpath), bound to the identities verified on the data
	// channel, where ICE's route crosses NATs.
	PathQUIC Path = "quic"
	// PathNAT: the data channel through one or more NATs
	// (server-reflexive or peer-reflexive candidates).
	PathNAT Path = "datachannel-nat"
	// PathTCPRelay: TLS 1.3 between two lanft CLIs, as on the direct
	// path, over the signaling host's TCP relay (no route between them).
	PathTCPRelay Path = "tcp-relay"
	// PathLANRelay: the same through the TCP relay of a LAN instance
	// both peers reach while they cannot reach each other (client
	// isolation).
	PathLANRelay Path = "lan-relay"
	// PathRelay: the data channel relayed by a TURN server.
	PathRelay Path = "relay"
	// PathHTTP: plain HTTP between a browser page and lanft on a LAN
	// (pagepath.go): the page's download manager, or its fetches, move
	// the bytes; the capability was handed over the verified data channel.
	PathHTTP Path = "http"
)

// Describe is the path in words for the human output.
func (p Path) Describe() string {
	switch p {
	case PathTCP:
		return "direct TCP with TLS 1.3"
	case PathDataChannel:
		return "WebRTC data channel on the LAN"
	case PathQUIC:
		return "QUIC through a hole punched in the NATs"
	case PathNAT:
		return "WebRTC data channel through NAT"
	case PathTCPRelay:
		return "TLS 1.3 through the signaling host's TCP relay"
	case PathLANRelay:
		return "TLS 1.3 through a lanft on the LAN that both peers reach"
	case PathRelay:
		return "relayed through TURN"
	case PathHTTP:
		return "HTTP between the page and lanft"
	}
	return string(p)
}

// pathPlan is what decidePath settles once a connection is verified.
type pathPlan struct {
	// negotiate: both preambles offered the direct path, so the two sides
	// exchange direct.Hello, Offer and Choice on the data channel (even
	// when the route rules TCP out: the Offer then says why).
	negotiate bool
	// page: the remote is a page (flagPage) and this side serves pages
	// (flagServesPage), so the two sides run the HTTP path's negotiation
	// (pagepath.go) in place of the direct one (a page never offers the
	// direct path); its second message says why when the route rules
	// HTTP out.
	page bool
	// local and remote are the host addresses of ICE's route, the only
	// ones a direct TCP connection or the HTTP path may join; valid when
	// tryDirect or tryHTTP.
	local, remote netip.Addr
	// why the direct path (or, for a page, the HTTP path) is not tried,
	// for the log and direct.Offer.Why; empty when it is.
	why string
	// channel is the data channel's path, from ICE's route: the path of
	// the transfer unless the direct connection is made.
	channel Path
	// relay: a TCP relay is tried (relaypath.go) when the peer can too and
	// the data channel is not peer to peer (TURN, or no route), or with
	// --path relay. Over a LAN or hole-punched route the bytes stay peer
	// to peer: a third machine carries them only when nothing else does.
	relay bool
	// quic: the route crosses NATs without a relay, so the two sides try
	// QUIC on a fresh hole-punched UDP pair (quicpath.go) from quicLocal,
	// the route's local host address; quicWhy says why not otherwise.
	quic      bool
	quicLocal netip.Addr
	quicWhy   string
	// quicRemote is the route's remote address: the only one the peer's
	// mapping may have (punch datagrams go nowhere else).
	quicRemote netip.Addr
}

// tryDirect reports whether the direct TCP connection is attempted.
func (p pathPlan) tryDirect() bool { return p.negotiate && p.why == "" }

// tryHTTP reports whether the HTTP path is offered to the page.
func (p pathPlan) tryHTTP() bool { return p.page && p.why == "" }

// useQUIC reports whether the sharer takes the hole-punched QUIC path,
// when the receiver offers it (direct.Hello.QUIC): wherever the route
// crosses NATs, in place of the direct TCP path, which a peer-reflexive
// route would also allow but which cannot cross a NAT.
func (p pathPlan) useQUIC(peerOffers bool) bool { return p.quic && peerOffers }

// taken is the path of the transfer: PathTCP when the direct connection
// was made, the data channel's otherwise.
func (p pathPlan) taken(tcp bool) Path {
	if tcp {
		return PathTCP
	}
	return p.channel
}

// decidePath is the one place the path is decided: from this side's mode
// and preamble flags (localFlags: flagServesPage), the remote's preamble
// flags (flagDirect: it offers the direct path; flagPage: it is a page
// that takes bytes over HTTP) and ICE's selected route (routeErr when
// there is none).
func decidePath(mode Mode, localFlags, remoteFlags byte, route rtc.Route, routeErr error) pathPlan {
	p := pathPlan{channel: PathDataChannel}
	if routeErr == nil {
		p.channel = pathOf(route.Local.Type, route.Remote.Type)
	}
	p.negotiate = mode.negotiates() && remoteFlags&flagDirect != 0
	p.relay = p.negotiate && mode.relays() && (mode == ModeRelay || routeErr != nil || p.channel == PathRelay)
	p.page = localFlags&flagServesPage != 0 && remoteFlags&flagPage != 0
	p.quicLocal, p.quicWhy = quicRoute(mode, p, route)
	p.quic = p.quicWhy == ""
	if p.quic {
		p.quicRemote = route.Remote.Addr.Addr()
	}
	switch {
	case p.page:
		p.local, p.remote, p.why = directRoute(route, routeErr)
	case !mode.offersDirect():
		p.why = fmt.Sprintf("--path %s", mode)
	case remoteFlags&flagDirect == 0:
		p.why = "the peer does not offer the direct path"
	default:
		p.local, p.remote, p.why = directRoute(route, routeErr)
	}
	return p
}

// directRoute returns the local and remote addresses of route when it
// joins two host addresses, the only case a direct TCP connection can
// follow; why says what rules it out otherwise.
func directRoute(r rtc.Route, err error) (local, remote netip.Addr, why string) {
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

// quicRoute returns the local address to punch from when p's route is
// one a hole-punched QUIC path can follow (through NATs, no relay); why
// says what rules it out otherwise.
func quicRoute(mode Mode, p pathPlan, r rtc.Route) (local netip.Addr, why string) {
	switch {
	case !mode.offersDirect():
		return local, fmt.Sprintf("--path %s", mode)
	case !p.negotiate || p.page:
		return local, "the peer does not offer it"
	case p.channel != PathNAT:
		return local, fmt.Sprintf("the data channel's path is %s, not through NATs", p.channel)
	case !r.Local.Base.IsValid() || r.Local.Base.IsLoopback() || r.Local.Base.IsLinkLocalUnicast():
		return local, "the route's local address is unknown"
	case r.Local.Base.Is4() != r.Remote.Addr.Addr().Is4():
		return local, "the route mixes IPv4 and IPv6"
	}
	return r.Local.Base, ""
}

// pathOf is the data channel's path over a candidate pair of these types.
func pathOf(local, remote string) Path {
	switch {
	case local == rtc.CandidateRelay || remote == rtc.CandidateRelay:
		return PathRelay
	case local == rtc.CandidateHost && remote == rtc.CandidateHost:
		return PathDataChannel
	default:
		return PathNAT
	}
}
