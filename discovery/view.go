package discovery

import (
	"cmp"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"time"
)

// seen is what one interface last heard of one instance.
type seen struct {
	addrs []netip.Addr
	at    time.Time
}

// entry is one other instance in the view.
type entry struct {
	rec    record
	recAt  time.Time       // when rec was heard
	ifaces map[string]seen // by interface name
}

// maxPeers bounds the other instances in a view. Answers are unauthenticated
// (anyone on the LAN can send thousands with made-up IDs); past the bound the
// instance heard longest ago makes room, never the elected host.
const maxPeers = 256

// view is one instance's picture of the LAN: itself plus at most maxPeers
// instances heard within the expiry time. It is owned by one goroutine.
type view struct {
	self     record
	selfSeen map[string]seen // our own answers, heard back: our addresses
	others   map[string]*entry
	// host is the ID of the host elected last (the one clients log in
	// to): a flood of new instances does not push it out.
	host string
	// forgotten holds, for each instance dropped by forget, until when
	// its answers are ignored: an answer it sent just before it died may
	// still be on its way.
	forgotten map[string]time.Time
	// hostAfter, when longer than expire's after, is the elected host's
	// expiry (Config.HostExpireAfter); quiet is how long a forgotten
	// instance's answers are ignored.
	hostAfter, quiet time.Duration
}

func newView(self record) *view {
	return &view{self: self, selfSeen: map[string]seen{}, others: map[string]*entry{}, forgotten: map[string]time.Time{}}
}

// observe adds one answer heard at now. It returns the record heard and
// whether it is a new instance in the view, or the parse error of an answer
// that is ignored.
func (v *view) observe(s Sighting, now time.Time) (rec record, added bool, err error) {
	rec, err = parseTXT(s.TXT)
	if err != nil {
		return record{}, false, err
	}
	addrs := normAddrs(s.Addrs)
	if rec.ID == v.self.ID {
		// Our own answer, looped back: it only tells our addresses. Our
		// record is what we advertise, never what the network says.
		v.selfSeen[s.Iface] = seen{addrs: addrs, at: now}
		return rec, false, nil
	}
	if until, ok := v.forgotten[rec.ID]; ok && now.Before(until) {
		return rec, false, nil
	}
	e := v.others[rec.ID]
	if e == nil {
		if len(v.others) >= maxPeers && !v.evict() {
			return rec, false, errViewFull
		}
		e = &entry{ifaces: map[string]seen{}}
		v.others[rec.ID] = e
		added = true
	}
	if !now.Before(e.recAt) {
		e.rec, e.recAt = rec, now
	}
	e.ifaces[s.Iface] = seen{addrs: addrs, at: now}
	return rec, added, nil
}

// errViewFull: a new instance found no room (every entry is protected).
var errViewFull = errors.New("too many instances on the network: ignoring a new one")

// evict drops the instance heard longest ago (then the largest ID), but
// the elected host, and reports whether one was dropped.
func (v *view) evict() bool {
	var (
		victim string
		oldest time.Time
	)
	for id, e := range v.others {
		if id == v.host {
			continue
		}
		at := e.lastHeard()
		if victim == "" || at.Before(oldest) || at.Equal(oldest) && id > victim {
			victim, oldest = id, at
		}
	}
	if victim == "" {
		return false
	}
	delete(v.others, victim)
	return true
}

// lastHeard is when any interface last heard e.
func (e *entry) lastHeard() time.Time {
	var t time.Time
	for _, s := range e.ifaces {
		if s.at.After(t) {
			t = s.at
		}
	}
	return t
}

// forget drops another instance at once; it returns if it answers again
// after v.quiet (answers heard before then are taken as sent before it was
// forgotten).
func (v *view) forget(id string, now time.Time) {
	delete(v.others, id)
	if v.quiet > 0 {
		v.forgotten[id] = now.Add(v.quiet)
	}
}

// expire drops what was not heard for longer than after (the elected host:
// v.hostAfter, if longer), and returns the IDs of the instances that left.
func (v *view) expire(now time.Time, after time.Duration) (gone []string) {
	maps.DeleteFunc(v.forgotten, func(_ string, until time.Time) bool { return !now.Before(until) })
	maps.DeleteFunc(v.selfSeen, func(_ string, s seen) bool { return now.Sub(s.at) > after })
	for id, e := range v.others {
		limit := after
		if id == v.host {
			limit = max(after, v.hostAfter)
		}
		maps.DeleteFunc(e.ifaces, func(_ string, s seen) bool { return now.Sub(s.at) > limit })
		if len(e.ifaces) == 0 {
			delete(v.others, id)
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	return gone
}

// peers returns the view, self included, sorted by name then ID.
func (v *view) peers(now time.Time) []Peer {
	out := make([]Peer, 0, len(v.others)+1)
	self := peerOf(v.self, v.selfSeen)
	self.Self, self.LastSeen = true, now
	out = append(out, self)
	for _, e := range v.others {
		out = append(out, peerOf(e.rec, e.ifaces))
	}
	slices.SortFunc(out, func(a, b Peer) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func peerOf(r record, ifaces map[string]seen) Peer {
	p := Peer{
		ID:        r.ID,
		Name:      r.Name,
		Port:      r.Port,
		Priority:  r.Priority,
		Version:   ProtocolVersion,
		Host:      r.Host,
		HostSince: r.HostSince,
	}
	for name, s := range ifaces {
		// The first interface by name, so that the choice is stable.
		if p.Iface == "" || name < p.Iface {
			p.Iface = name
		}
		if s.at.After(p.LastSeen) {
			p.LastSeen = s.at
		}
		p.Addrs = append(p.Addrs, s.addrs...)
	}
	p.Addrs = normAddrs(p.Addrs)
	return p
}

// normAddrs returns valid addresses without duplicates, IPv4 first, then
// global IPv6, then link-local IPv6, each group in address order.
func normAddrs(in []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(in))
	for _, a := range in {
		if a.IsValid() {
			out = append(out, a.Unmap())
		}
	}
	rank := func(a netip.Addr) int {
		switch {
		case a.Is4():
			return 0
		case !a.IsLinkLocalUnicast():
			return 1
		default:
			return 2
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), a.Compare(b))
	})
	return slices.Compact(out)
}
