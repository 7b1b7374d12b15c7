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
	if remote.Type == CandidatePrflx {
		p.mu.Lock()
		known := slices.Contains(p.remoteHosts, fmt.Sprintf("%s %d", pair.Remote.Address, pair.Remote.Port))
		p.mu.Unlock()
		// Its host candidate may not have arrived yet (candidates trickle):
		// an address on our own link is a host all the same.
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
	return Endpoint{Addr: netip.AddrPortFrom(a.Unmap(), c.Port), Type: c.Typ.String()}, nil
}

// onLink reports whether remote is on the network of the interface that
// holds local (no router between them).
func onLink(local, remote netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		prefix, ok := netip.AddrFromSlice(ipn.IP)
		if !ok || prefix.Unmap() != local {
			continue
		}
		ones, _ := ipn.Mask.Size()
		return netip.PrefixFrom(local, ones).Contains(remote)
	}
	return false
}
