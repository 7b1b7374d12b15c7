package rtc

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/pion/webrtc/v4"
)

// Candidate types of a Route's ends, as ICE names them.
const (
	CandidateHost  = "host"
	CandidateSrflx = "srflx"
	CandidatePrflx = "prflx"
	CandidateRelay = "relay"
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

// Route returns the selected candidate pair, once connected.
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
	return Route{Local: local, Remote: remote}, nil
}

func endpoint(c *webrtc.ICECandidate) (Endpoint, error) {
	a, err := netip.ParseAddr(c.Address)
	if err != nil {
		return Endpoint{}, fmt.Errorf("rtc: candidate address %q: %w", c.Address, err)
	}
	return Endpoint{Addr: netip.AddrPortFrom(a.Unmap(), c.Port), Type: c.Typ.String()}, nil
}
