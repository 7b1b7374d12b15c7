package discovery

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/mdns"
	"github.com/miekg/dns"
)

// mdnsSource is the Source on real interfaces: per interface, one mDNS
// responder (hashicorp/mdns Server bound to that interface, answering with
// that interface's own addresses) and a query sent on that interface every
// query interval.
type mdnsSource struct {
	ifaces   []string
	id       string
	port     int
	interval time.Duration
	log      *slog.Logger
	libLog   *log.Logger // the library's log lines, at debug level

	mu    sync.Mutex
	txt   []string
	zones []*zone
}

func newMDNSSource(ifaces []string, id string, port int, interval time.Duration, logger *slog.Logger) *mdnsSource {
	return &mdnsSource{
		ifaces:   ifaces,
		id:       id,
		port:     port,
		interval: interval,
		log:      logger,
		libLog:   log.New(libWriter{logger}, "", 0),
	}
}

// libWriter passes the library's log lines to the logger at debug level,
// less the one it prints on every query when IPv6 is disabled on purpose.
type libWriter struct{ log *slog.Logger }

func (w libWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if !strings.Contains(msg, "Failed to listen to both unicast and multicast on IPv6") &&
		!strings.Contains(msg, "Failed to listen to both unicast and multicast on IPv4") {
		w.log.Debug("discovery: mdns library", "msg", msg)
	}
	return len(p), nil
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
		servers []*mdns.Server
		errs    []error
		wg      sync.WaitGroup
	)
	defer func() {
		for _, srv := range servers {
			srv.Shutdown()
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
			// Names unique per instance and interface: a responder can hear
			// a query that came in on another interface of the machine,
			// and its answer must not merge with the right one.
			instance: fmt.Sprintf("%s-%d", s.id, ifi.Index),
			host:     fmt.Sprintf("lanft-%s-%d.local.", s.id, ifi.Index),
			port:     s.port,
			probe:    make(chan struct{}, 1),
		}
		s.mu.Lock()
		z.txt = s.txt
		s.zones = append(s.zones, z)
		s.mu.Unlock()
		if _, err := z.refresh(); err != nil {
			errs = append(errs, fmt.Errorf("interface %q: %w", name, err))
			continue
		}
		srv, err := mdns.NewServer(&mdns.Config{Zone: z, Iface: ifi, Logger: s.libLog})
		if err != nil {
			errs = append(errs, fmt.Errorf("advertise on %q: %w", name, err))
			continue
		}
		servers = append(servers, srv)
		wg.Go(func() { s.browse(ctx, z, heard) })
	}
	if len(servers) == 0 {
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
	// The library drops answers it cannot send at once: keep a buffer and a
	// reader.
	entries := make(chan *mdns.ServiceEntry, 64)
	var reader sync.WaitGroup
	reader.Go(func() {
		for e := range entries {
			if sg, ok := z.sighting(e); ok {
				heard(sg)
			} else {
				s.log.Debug("discovery: answer without an address on the interface", "iface", z.iface, "name", e.Name)
			}
		}
	})
	defer reader.Wait()
	defer close(entries)

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
			s.query(ctx, z, entries)
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

// query sends one query on z's interface and collects answers for half an
// interval (Wi-Fi stations in power save see a multicast query only at the
// next DTIM beacon, a few hundred ms later). It returns when that time is
// over, even if ctx is done earlier.
func (s *mdnsSource) query(ctx context.Context, z *zone, entries chan<- *mdns.ServiceEntry) {
	ifi, err := z.refresh()
	if err != nil {
		s.log.Debug("discovery: interface unusable", "iface", z.iface, "err", err)
		return
	}
	v4, v6 := z.families()
	if !v4 && !v6 {
		return // no address yet
	}
	params := &mdns.QueryParam{
		Service:   serviceName,
		Domain:    "local",
		Timeout:   s.interval / 2,
		Interface: ifi,
		Entries:   entries,
		// One family per interface: IPv4 where it has an IPv4 address,
		// else IPv6. A family without a multicast route would make the
		// whole query fail.
		DisableIPv4: !v4,
		DisableIPv6: v4,
		Logger:      s.libLog,
	}
	if err := mdns.QueryContext(ctx, params); err != nil && ctx.Err() == nil {
		s.log.Debug("discovery: query failed", "iface", z.iface, "err", err)
	}
}

// zone is the mdns.Zone of one interface: the current record under a lock,
// replaced when the TXT record or the interface's addresses change.
type zone struct {
	iface    string
	instance string
	host     string
	port     int
	probe    chan struct{} // capacity 1: query now

	mu       sync.RWMutex
	txt      []string
	prefixes []netip.Prefix // the interface's addresses with their prefix length
	svc      *mdns.MDNSService
}

// Records implements mdns.Zone.
func (z *zone) Records(q dns.Question) []dns.RR {
	z.mu.RLock()
	svc := z.svc
	z.mu.RUnlock()
	if svc == nil {
		return nil
	}
	return svc.Records(q)
}

func (z *zone) setTXT(txt []string) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.txt = txt
	return z.rebuildLocked()
}

// refresh re-reads the interface and its addresses, and rebuilds the record
// if they changed.
func (z *zone) refresh() (*net.Interface, error) {
	ifi, err := net.InterfaceByName(z.iface)
	if err != nil {
		return nil, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	var prefixes []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, _ := ipn.Mask.Size()
		prefixes = append(prefixes, netip.PrefixFrom(ip.Unmap(), ones))
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if slices.Equal(prefixes, z.prefixes) && (z.svc != nil || len(prefixes) == 0) {
		return ifi, nil
	}
	z.prefixes = prefixes
	return ifi, z.rebuildLocked()
}

func (z *zone) rebuildLocked() error {
	var ips []net.IP
	for _, p := range z.prefixes {
		ips = append(ips, net.IP(p.Addr().AsSlice()))
	}
	if len(ips) == 0 || len(z.txt) == 0 {
		z.svc = nil // nothing to answer with: the library would guess
		return nil
	}
	svc, err := mdns.NewMDNSService(z.instance, serviceName, "local.", z.host, z.port, ips, z.txt)
	if err != nil {
		return fmt.Errorf("discovery: mdns record on %q: %w", z.iface, err)
	}
	z.svc = svc
	return nil
}

// families reports whether the interface has IPv4 and IPv6 addresses.
func (z *zone) families() (v4, v6 bool) {
	z.mu.RLock()
	defer z.mu.RUnlock()
	for _, p := range z.prefixes {
		if p.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return v4, v6
}

// sighting turns an answer heard on z's interface into a Sighting. Only
// addresses usable from this interface are kept: IPv4 and global IPv6 in
// one of its prefixes, and link-local IPv6 (zoned to it). An answer with no
// such address (one leaked from another interface of the answering machine)
// is dropped.
func (z *zone) sighting(e *mdns.ServiceEntry) (Sighting, bool) {
	z.mu.RLock()
	prefixes := z.prefixes
	z.mu.RUnlock()
	onLink := func(a netip.Addr) bool {
		return slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	var addrs []netip.Addr
	if a, ok := netip.AddrFromSlice(e.AddrV4); ok {
		if a = a.Unmap(); a.Is4() && onLink(a) {
			addrs = append(addrs, a)
		}
	}
	if e.AddrV6IPAddr != nil {
		if a, ok := netip.AddrFromSlice(e.AddrV6IPAddr.IP); ok && a.Is6() && !a.Is4In6() {
			switch {
			case a.IsLinkLocalUnicast():
				addrs = append(addrs, a.WithZone(z.iface))
			case onLink(a):
				addrs = append(addrs, a)
			}
		}
	}
	if len(addrs) == 0 {
		return Sighting{}, false
	}
	return Sighting{Iface: z.iface, Addrs: addrs, TXT: slices.Clone(e.InfoFields)}, true
}
