package rtc

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// noteRemote records the type (and, for host candidates, the address) of
// a candidate the remote sent, under p.mu.
func (p *Peer) noteRemote(candidate string) {
	f := strings.Fields(strings.TrimPrefix(candidate, "candidate:"))
	// foundation component transport priority address port "typ" type ...
	if len(f) < 8 || f[6] != "typ" {
		return
	}
	if !slices.Contains(p.remoteTypes, f[7]) {
		p.remoteTypes = append(p.remoteTypes, f[7])
	}
	if f[7] == CandidateHost && len(p.remoteHosts) < 64 {
		p.remoteHosts = append(p.remoteHosts, f[4]+" "+f[5])
	}
}

// ErrNoPair: ICE found no candidate pair that connects.
var ErrNoPair = errors.New("no network path between the peers")

// explain says why a connection attempt found no path, from the candidate
// types gathered on each side.
func (p *Peer) explain() error {
	p.mu.Lock()
	local, remote := slices.Clone(p.localTypes), slices.Clone(p.remoteTypes)
	p.mu.Unlock()
	list := func(ts []string) string {
		if len(ts) == 0 {
			return "none"
		}
		return strings.Join(ts, ", ")
	}
	why := "no candidate pair answered"
	switch {
	case len(local) == 0 || len(remote) == 0:
		why = "a side has no usable network address (check --interface)"
	case !slices.Contains(local, CandidateRelay) && !slices.Contains(remote, CandidateRelay) && !HasTURN(p.cfg.ICEServers) && p.cfg.NoRelay != "":
		why = "the signaling host relays nothing: " + p.cfg.NoRelay + "; and the network lets no direct path through (client isolation, a symmetric NAT or a firewall)"
	case !slices.Contains(local, CandidateRelay) && !slices.Contains(remote, CandidateRelay) && !HasTURN(p.cfg.ICEServers):
		why = "no TURN relay is offered (the signaling host runs without TURN, or this is a LAN host), and the networks let no direct path through (a symmetric NAT or a firewall)"
	case !slices.Contains(local, CandidateRelay) && !slices.Contains(remote, CandidateRelay):
		why = "neither side got a relay from the TURN server, and the networks let no direct path through (a symmetric NAT or a firewall)"
	}
	return fmt.Errorf("%w: %s (candidates here: %s; from the peer: %s)", ErrNoPair, why, list(local), list(remote))
}

// HasTURN reports whether servers include a TURN server.
func HasTURN(servers []ICEServer) bool {
	for _, s := range servers {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
				return true
			}
		}
	}
	return false
}
