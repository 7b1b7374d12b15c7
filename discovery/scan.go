package discovery

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Scan is a one-shot look at the LAN for `lanft doctor`: one mDNS query on
// each interface, and, when mDNS hears no instance on another machine, the
// unicast sweep lanft would fall back to (the same bounds), then a hello
// asked of each instance found at its signaling port. It advertises
// nothing and claims nothing.

// ScanConfig says where to look.
type ScanConfig struct {
	Interfaces []string      // resolved names (ResolveInterfaces)
	Window     time.Duration // how long the mDNS query listens (1 s when 0)
	Unicast    UnicastConfig // the sweep's bounds (its Peers are asked too)
	Logger     *slog.Logger
}

// Instance is one lanft instance a Scan found.
type Instance struct {
	ID, Name string
	Iface    string     // the interface it is on ("" for a --peer elsewhere)
	Addr     netip.Addr // the address it was found at
	Port     int        // its signaling port
	Host     bool       // it claims to be the elected host
	ViaMDNS  bool       // it answered mDNS
	ViaProbe bool       // it answered the unicast probe
	Local    bool       // it runs on this machine (one of our addresses)
	// Signaling reports whether its signaling port answered a hello.
	Signaling bool
	// Peers are the other instances it sees, as its hello listed them.
	Peers []Instance
}

// ScanResult is what a Scan found.
type ScanResult struct {
	Instances []Instance // by name, then ID
	Swept     int        // addresses the sweep asked (0: no sweep)
}

// Scan looks at the LAN once (see above).
func Scan(ctx context.Context, cfg ScanConfig) (ScanResult, error) {
	uc, err := cfg.Unicast.withDefaults()
	if err != nil {
		return ScanResult{}, err
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &prober{cfg: uc, ifaces: cfg.Interfaces, interval: time.Second, expire: time.Hour, log: cfg.Logger,
		targets: map[netip.AddrPort]*target{}, pending: map[netip.AddrPort]bool{}}
	p.local = readAllPrefixes(cfg.Interfaces)
	client := newProbeClient(p)
	defer client.CloseIdleConnections()

	var mu sync.Mutex
	found := map[string]*Instance{}
	add := func(s Sighting, mdns bool) {
		rec, err := parseTXT(s.TXT)
		if err != nil || len(s.Addrs) == 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		in := found[rec.ID]
		if in == nil {
			if len(found) >= maxPeers {
				return
			}
			in = &Instance{ID: rec.ID, Addr: s.Addrs[0]}
			found[rec.ID] = in
		}
		in.Name, in.Port, in.Host, in.Iface = rec.Name, rec.Port, rec.Host, s.Iface
		in.Local = p.isLocal(in.Addr)
		in.ViaMDNS = in.ViaMDNS || mdns
		in.ViaProbe = in.ViaProbe || !mdns
	}
	p.queryAll(ctx, cfg.Window, func(s Sighting) { add(s, true) })

	var res ScanResult
	offMachine := false
	for _, in := range found {
		offMachine = offMachine || !in.Local
	}
	ask := func(ap netip.AddrPort) bool {
		return p.ask(ctx, client, ap, func(s Sighting) {
			s.Iface = strings.TrimSuffix(s.Iface, ProbeSuffix)
			add(s, false)
		})
	}
	var aps []netip.AddrPort
	if !offMachine && !uc.NoSweep {
		for _, ip := range p.local {
			for _, a := range sweepAddrs(ip.prefixes, uc.SubnetBits) {
				aps = append(aps, netip.AddrPortFrom(a, uint16(uc.Port)))
			}
		}
		res.Swept = len(aps)
	}
	aps = appendAddrPorts(aps, uc.Peers...)
	if len(aps) > 0 {
		p.sweep(ctx, "subnet", aps, ask)
	}

	// A hello of each at its signaling port: reachable, and whom it sees.
	var wg sync.WaitGroup
	for _, in := range found {
		wg.Go(func() {
			h, err := fetchHello(ctx, client, netip.AddrPortFrom(in.Addr, uint16(in.Port)))
			mu.Lock()
			defer mu.Unlock()
			in.Signaling = err == nil
			for _, hp := range h.Peers {
				if rec, err := parseTXT(hp.TXT); err == nil && len(hp.Addrs) > 0 {
					in.Peers = append(in.Peers, Instance{ID: rec.ID, Name: rec.Name, Addr: hp.Addrs[0], Port: rec.Port, Host: rec.Host})
				}
			}
		})
	}
	wg.Wait()
	for _, in := range found {
		res.Instances = append(res.Instances, *in)
	}
	slices.SortFunc(res.Instances, func(a, b Instance) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return res, ctx.Err()
}

// queryAll sends one mDNS query on each interface with an IPv4 address
// and reports what answers within window.
func (p *prober) queryAll(ctx context.Context, window time.Duration, heard func(Sighting)) {
	var wg sync.WaitGroup
	for _, ip := range p.local {
		ifi, err := net.InterfaceByName(ip.iface)
		if err != nil {
			continue
		}
		var local netip.Addr
		for _, pr := range ip.prefixes {
			if pr.Addr().Is4() {
				local = pr.Addr()
				break
			}
		}
		if !local.IsValid() {
			continue
		}
		onLink := func(a netip.Addr) bool {
			for _, pr := range ip.prefixes {
				if pr.Masked().Contains(a.Unmap()) {
					return true
				}
			}
			return false
		}
		wg.Go(func() {
			err := queryOnce(ctx, ifi, local, window, func(from netip.AddrPort) bool { return onLink(from.Addr()) },
				func(a answer) {
					var addrs []netip.Addr
					for _, ad := range a.addrs {
						if ad.Is4() && onLink(ad) {
							addrs = append(addrs, ad)
						}
					}
					heard(Sighting{Iface: ip.iface, Addrs: addrs, TXT: a.txt})
				}, func(netip.AddrPort, error) {})
			if err != nil {
				p.log.Debug("doctor: mDNS query failed", "iface", ip.iface, "err", err)
			}
		})
	}
	wg.Wait()
}
