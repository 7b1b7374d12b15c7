package rtc

import (
	"errors"
	"fmt"
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
		if slices.Contains(p.remoteHosts, fmt.Sprintf("%s %d", pair.Remote.Address, pair.Remote.Port)) {
			remote.Type = CandidateHost
		}
		p.mu.Unlock()
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
