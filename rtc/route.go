package rtc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/pion/webrtc/v4"
)

// Endpoint is one end of the candidate pair ICE selected.
type Endpoint struct {
	Addr netip.AddrPort
	Type string // CandidateHost, ...
	// Base is the host address the candidate's packets leave from: Addr's
	// for a host candidate, the related address for a reflexive or relay
	// one (invalid when the candidate does not say).
	Base netip.Addr
}

// Route is the candidate pair the connection's packets use.
type Route struct {
	Local, Remote Endpoint
}

// ErrNoRoute is returned by Route before ICE has selected a pair.
var ErrNoRoute = errors.New("rtc: no selected candidate pair")

// Route returns the selected candidate pair, once connected. A
// peer-reflexive remote that is one of the remote's host candidates (its
// checks arrived before its candidate did) counts as a host candidate.
func (p *Peer) Route() (Route, error) {
	sctp := p.pc.SCTP()
	if sctp == nil || sctp.Transport() == nil || sctp.Transport().ICETransport() == nil {
		return Route{}, ErrNoRoute
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil {
		return Route{}, fmt.Errorf("rtc: selected candidate pair: %w", err)
	}
	if pair == nil || pair.Local == nil || pair.Remote == nil {
		return Route{}, ErrNoRoute
	}
	local, err := endpoint(pair.Local)
	if err != nil {
		return Route{}, err
	}
	remote, err := endpoint(pair.Remote)
	if err != nil {
		return Route{}, err
	}
	// Reflexive candidates that are host addresses in disguise: with a STUN
	// server on an open network, our server-reflexive address is our own
	// host address, and a peer's checks may arrive (peer-reflexive) before
	// its host candidate trickles in. On one link they are host candidates.
	if local.Type == CandidateSrflx || local.Type == CandidatePrflx {
		if isLocalAddr(local.Addr.Addr()) {
			local.Type = CandidateHost
		}
	}
	if remote.Type == CandidatePrflx || remote.Type == CandidateSrflx {
		p.mu.Lock()
		known := slices.Contains(p.remoteHosts, fmt.Sprintf("%s %d", pair.Remote.Address, pair.Remote.Port))
		p.mu.Unlock()
		if known || local.Type == CandidateHost && onLink(local.Addr.Addr(), remote.Addr.Addr()) {
			remote.Type = CandidateHost
		}
	}
	return Route{Local: local, Remote: remote}, nil
}

func endpoint(c *webrtc.ICECandidate) (Endpoint, error) {
	a, err := netip.ParseAddr(c.Address)
	if err != nil {
		return Endpoint{}, fmt.Errorf("rtc: candidate address %q: %w", c.Address, err)
	}
	e := Endpoint{Addr: netip.AddrPortFrom(a.Unmap(), c.Port), Type: c.Typ.String(), Base: a.Unmap()}
	if c.Typ != webrtc.ICECandidateTypeHost {
		e.Base = netip.Addr{}
		if b, err := netip.ParseAddr(c.RelatedAddress); err == nil {
			e.Base = b.Unmap()
		}
	}
	return e, nil
}

// onLink reports whether remote is on the network of the interface that
// holds local (no router between them).
func onLink(local, remote netip.Addr) bool {
	prefix, ok := localPrefix(local)
	return ok && prefix.Contains(remote)
}

// isLocalAddr reports whether a is an address of this machine.
func isLocalAddr(a netip.Addr) bool {
	_, ok := localPrefix(a)
	return ok
}

// localPrefix is the network of the interface address a, if a is one.
func localPrefix(a netip.Addr) (netip.Prefix, bool) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Prefix{}, false
	}
	for _, ad := range addrs {
		ipn, ok := ad.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok || ip.Unmap() != a {
			continue
		}
		ones, _ := ipn.Mask.Size()
		return netip.PrefixFrom(a, ones), true
	}
	return netip.Prefix{}, false
}
