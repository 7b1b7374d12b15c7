package discovery

// Election is the outcome of Elect for one instance.
type Election struct {
	// Host is the elected host; it is meaningful only when HasHost is true.
	Host Peer
	// HasHost is true when some peer in the view claims to be host: the
	// winner among the claimants is Host. It is false while nobody claims.
	HasHost bool
	// Claim tells the instance that ran Elect whether it should advertise
	// itself as host: keep claiming when it is the winning claimant, start
	// claiming when nobody claims and it is the candidate.
	Claim bool
}

// Elect applies the election rule to one view of the LAN, which includes
// the instance itself (selfID). It is a pure function: every instance that
// holds the same view reaches the same Host.
//
//  1. If any peer claims to be host, the claimant with the smallest HostSince
//     wins (then the smallest ID). A claimant that does not win must step
//     down (Claim is false for it): after a partition heals, the newer host
//     yields to the older one.
//  2. If nobody claims, the candidate is the peer with the highest Priority
//     (then the smallest ID). HasHost stays false; if the candidate is selfID
//     and mayClaim is true, Claim is true and the instance starts claiming,
//     which the others see on their next query. mayClaim is false during the
//     settle time after start, so that a new instance hears an existing host
//     before it may claim.
//
// Priority matters only in step 2: a working host is never deposed by a
// newcomer, whatever its priority (the rule is sticky).
//
// IDs are unique within a view.
func Elect(view []Peer, selfID string, mayClaim bool) Election {
	var best *Peer
	for i := range view {
		p := &view[i]
		if p.Host && (best == nil || claimBefore(p, best)) {
			best = p
		}
	}
	if best != nil {
		return Election{Host: *best, HasHost: true, Claim: best.ID == selfID}
	}
	var cand *Peer
	for i := range view {
		p := &view[i]
		if cand == nil || candidateBefore(p, cand) {
			cand = p
		}
	}
	return Election{Claim: mayClaim && cand != nil && cand.ID == selfID}
}

// claimBefore orders host claimants: the oldest claim, then the lowest ID.
func claimBefore(a, b *Peer) bool {
	if a.HostSince != b.HostSince {
		return a.HostSince < b.HostSince
	}
	return a.ID < b.ID
}

// candidateBefore orders candidates when nobody claims: the highest
// priority, then the lowest ID.
func candidateBefore(a, b *Peer) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.ID < b.ID
}
