package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// mdnsSource is the Source on real interfaces: per interface, one mDNS
// responder (responder.go: it answers only packets that came in on that
// interface from its link, with that interface's own addresses) and a query
// sent on that interface every query interval (queryOnce: it joins no
// multicast group).
type mdnsSource struct {
	ifaces   []string
	id       string
	port     int
	interval time.Duration
	log      *slog.Logger

	addrs *addrBook

	mu    sync.Mutex
	txt   []string
	zones []*zone
}

func newMDNSSource(ifaces []string, id string, port int, interval time.Duration, logger *slog.Logger) *mdnsSource {
	return &mdnsSource{
		ifaces:   ifaces,
		addrs:    newAddrBook(ifaces),
		id:       id,
		port:     port,
		interval: interval,
		log:      logger,
	}
}

// Probe implements Source.
func (s *mdnsSource) Probe() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, z := range s.zones {
		select {
		case z.probe <- struct{}{}:
		default:
		}
	}
}

// Publish implements Source.
func (s *mdnsSource) Publish(txt []string) error {
	txt = slices.Clone(txt)
	s.mu.Lock()
	s.txt = txt
	zones := slices.Clone(s.zones)
	s.mu.Unlock()
	for _, z := range zones {
		if err := z.setTXT(txt); err != nil {
			return err
		}
	}
	return nil
}

// Run implements Source. Interfaces that cannot be used are logged and left
// out; Run fails only when none can be.
func (s *mdnsSource) Run(ctx context.Context, heard func(Sighting)) error {
	var (
		conns []*respConn
		errs  []error
		wg    sync.WaitGroup
	)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	for _, name := range s.ifaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("interface %q: %w", name, err))
			continue
		}
		z := &zone{
			iface: name,
			index: ifi.Index,
			// Names unique per instance and interface: a responder can hear
			// a query that came in on another interface of the machine,
			// and its answer must not merge with the right one.
			instance: fmt.Sprintf("%s-%d", s.id, ifi.Index),
			host:     fmt.Sprintf("lanft-%s-%d.local.", s.id, ifi.Index),
			port:     s.port,
			probe:    make(chan struct{}, 1),
			addrs:    s.addrs,
		}
		s.mu.Lock()
		z.txt = s.txt
		s.zones = append(s.zones, z)
		s.mu.Unlock()
		if _, err := z.refresh(); err != nil {
			errs = append(errs, fmt.Errorf("interface %q: %w", name, err))
			continue
		}
		cs, err := openResponder(ifi, s.log)
		if err != nil {
			errs = append(errs, fmt.Errorf("advertise on %q: %w", name, err))
			continue
		}
		conns = append(conns, cs...)
		for _, c := range cs {
			wg.Go(func() { s.serve(ctx, z, c) })
		}
		wg.Go(func() { s.browse(ctx, z, heard) })
	}
	if len(conns) == 0 {
		return fmt.Errorf("discovery: %w: %w", ErrNoInterface, errors.Join(errs...))
	}
	for _, err := range errs {
		s.log.Warn("discovery: interface left out", "err", err)
	}
	<-ctx.Done()
	return nil
}

// browse queries on one interface every interval, and at once on Probe,
// until ctx is done. A query listens for half an interval; probes come
// every quarter, so up to three can be in flight.
func (s *mdnsSource) browse(ctx context.Context, z *zone, heard func(Sighting)) {
	var queries sync.WaitGroup
	defer queries.Wait()
	var inflight atomic.Int32
	query := func() {
		if inflight.Add(1) > 3 {
			inflight.Add(-1)
			return
		}
		queries.Go(func() {
			defer inflight.Add(-1)
			s.query(ctx, z, heard)
		})
	}

	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	query()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-z.probe:
		}
		query()
	}
}

// query sends one query on z's interface (see queryOnce) and collects
// answers for half an interval (Wi-Fi stations in power save see a
// multicast query only at the next DTIM beacon, a few hundred ms later),
// or until ctx is done.
func (s *mdnsSource) query(ctx context.Context, z *zone, heard func(Sighting)) {
	ifi, err := z.refresh()
	if err != nil {
		s.log.Debug("discovery: interface unusable", "iface", z.iface, "err", err)
		return
	}
	local, ok := z.queryAddr()
	if !ok {
		return // no address yet
	}
	err = queryOnce(ctx, ifi, local, s.interval/2, z.fromLink, func(a answer) {
		if sg, ok := z.sighting(a); ok {
			heard(sg)
		} else {
			s.log.Debug("discovery: answer without an address on the interface", "iface", z.iface, "name", a.name)
		}
	}, func(from netip.AddrPort, err error) {
		s.log.Debug("discovery: ignoring packet", "iface", z.iface, "from", from, "err", err)
	})
	if err != nil && ctx.Err() == nil {
		s.log.Debug("discovery: query failed", "iface", z.iface, "err", err)
	}
}

// zone is what is advertised on one interface: the current records under a
// lock, replaced when the TXT record or the interface's addresses change.
type zone struct {
	iface    string
	index    int // the interface's index when Run started
	instance string
	host     string
	port     int
	probe    chan struct{} // capacity 1: query now
	addrs    *addrBook     // told of the interface's addresses at each refresh

	mu       sync.RWMutex
	txt      []string
	prefixes []netip.Prefix // the interface's addresses with their prefix length
	svc      *service       // nil: nothing to answer with
}

// records returns the records that answer q (see records.go), none while
// the interface has no address or no TXT record is published.
func (z *zone) records(q dns.Question) []dns.RR {
	z.mu.RLock()
	svc := z.svc
	z.mu.RUnlock()
	if svc == nil {
		return nil
	}
	return svc.records(q)
}

func (z *zone) setTXT(txt []string) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.txt = txt
	return z.rebuildLocked()
}

// refresh re-reads the interface and its addresses, rebuilds the record
// if they changed, and tells the address book. An interface that is gone
// has no addresses: the record is dropped until it comes back.
func (z *zone) refresh() (*net.Interface, error) {
	ifi, err := net.InterfaceByName(z.iface)
	var prefixes []netip.Prefix
	if err == nil {
		prefixes, err = ifacePrefixes(ifi)
	}
	z.addrs.set(z.iface, appendLocal(nil, z.iface, prefixes))
	z.mu.Lock()
	defer z.mu.Unlock()
	if err != nil {
		z.prefixes, z.svc = nil, nil
		return nil, err
	}
	if slices.Equal(prefixes, z.prefixes) && (z.svc != nil || len(prefixes) == 0) {
		return ifi, nil
	}
	z.prefixes = prefixes
	return ifi, z.rebuildLocked()
}

func (z *zone) rebuildLocked() error {
	if len(z.prefixes) == 0 || len(z.txt) == 0 {
		z.svc = nil
		return nil
	}
	if z.port < 1 || z.port > 65535 || z.instance == "" || z.host == "" {
		return fmt.Errorf("discovery: mdns record on %q: port %d, instance %q, host %q", z.iface, z.port, z.instance, z.host)
	}
	svc := &service{
		instance: z.instance + "." + browseName,
		host:     z.host,
		port:     uint16(z.port),
		txt:      z.txt,
	}
	for _, p := range z.prefixes {
		if len(svc.addrs) == maxHostAddrs {
			break // what a querier keeps (answers.go)
		}
		svc.addrs = append(svc.addrs, p.Addr())
	}
	z.svc = svc
	return nil
}

// queryAddr returns the local address of z's queries: its first IPv4
// address, else (an IPv6-only interface) the IPv6 unspecified address. ok is
// false when the interface has no address.
func (z *zone) queryAddr() (local netip.Addr, ok bool) {
	z.mu.RLock()
	defer z.mu.RUnlock()
	for _, p := range z.prefixes {
		if p.Addr().Is4() {
			return p.Addr(), true
		}
	}
	if len(z.prefixes) > 0 {
		return netip.IPv6Unspecified(), true
	}
	return netip.Addr{}, false
}

// fromLink reports whether a packet from addr comes from z's link: from one
// of its prefixes, or from a link-local IPv6 address on its interface (RFC
// 6762 section 11).
func (z *zone) fromLink(from netip.AddrPort) bool {
	a := from.Addr().Unmap()
	if a.Is6() && a.IsLinkLocalUnicast() {
		return a.Zone() == z.iface
	}
	return z.onLink(a.WithZone(""))
}

// onLink reports whether a is in one of the interface's prefixes.
func (z *zone) onLink(a netip.Addr) bool {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return slices.ContainsFunc(z.prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
}

// sighting turns an answer heard on z's interface into a Sighting. Only
// addresses usable from this interface are kept: IPv4 and global IPv6 in
// one of its prefixes, and link-local IPv6 (zoned to it). An answer with no
// such address (one leaked from another interface of the answering machine)
// is dropped.
func (z *zone) sighting(a answer) (Sighting, bool) {
	var addrs []netip.Addr
	for _, ad := range a.addrs {
		ad = ad.Unmap().WithZone("")
		switch {
		case ad.Is6() && ad.IsLinkLocalUnicast():
			addrs = append(addrs, ad.WithZone(z.iface))
		case z.onLink(ad):
			addrs = append(addrs, ad)
		}
	}
	if len(addrs) == 0 {
		return Sighting{}, false
	}
	return Sighting{Iface: z.iface, Addrs: addrs, TXT: slices.Clone(a.txt)}, true
}
