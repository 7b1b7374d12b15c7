package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lanft/lanft/bindif"
)

// The unicast fallback: discovery without multicast. Networks that drop
// multicast (many Wi-Fi access points, "guest" networks) hide every mDNS
// answer. Then lanft finds the other instances by asking them directly:
//
//  1. the addresses given by hand (--peer), polled whatever mDNS finds;
//  2. the instances remembered from earlier runs (KnownFile);
//  3. when mDNS has heard no instance on another machine for one query
//     interval, a sweep: the hello port on every address of each
//     interface's own private IPv4 subnet (at most a /24 per interface by
//     default), at a bounded rate, from the interface's own address and
//     bound to the interface, so that no probe leaves the LAN, not even
//     over a VPN route that covers it. It runs again every resweepEvery
//     while mDNS still hears nobody.
//
// An instance that answers is polled every query interval from then on,
// and each answer is a Sighting like an mDNS one: the view, expiry and the
// election work the same over whatever found the peers. An answer also
// lists the instances the answerer sees; those on our subnets are asked
// in turn (two instances on one machine share its one hello port).
//
// # Wire format
//
//	GET /lanft/hello HTTP/1.1        (on the hello port and on the signaling port)
//	Host: 10.0.0.5:7781              (an IP address: names are refused, against DNS rebinding)
//
//	200 application/json
//	{"txt":["v=1","id=…","name=…","prio=0","port=40123","host=1","since=…"],
//	 "peers":[{"txt":[…],"addrs":["10.0.0.7"]}]}
//
// txt is the instance's TXT record, exactly as mDNS carries it (txt.go);
// peers are at most maxHelloPeers other instances it sees. The body is at
// most maxHelloBody bytes; an answer that breaks a rule is dropped.

// Defaults of UnicastConfig.
const (
	// DefaultHelloPort is the TCP port every LAN instance also listens on,
	// when free, so that a sweep finds it: signaling ports are picked at
	// random.
	DefaultHelloPort = 7781
	// DefaultProbeRate is the sweep's rate, in addresses per second.
	DefaultProbeRate = 100
	// DefaultSubnetBits is the widest subnet swept per interface: a /24.
	DefaultSubnetBits = 24
)

// HelloPath is where an instance tells its discovery record.
const HelloPath = "/lanft/hello"

// ProbeSuffix ends the Iface of a Sighting (and so of a Peer heard only
// that way) that the unicast fallback made: "v1+probe" for an instance
// on v1's subnet, "+probe" for one elsewhere (--peer). An instance heard
// over mDNS too shows the bare interface name (it sorts first).
const ProbeSuffix = "+probe"

const (
	maxHelloBody  = 16 << 10
	maxHelloPeers = 32
	// probeTimeout bounds one question (connect and answer): an address
	// with no host behind it costs that long.
	probeTimeout = 1500 * time.Millisecond
	// maxInFlight bounds the questions of a sweep in flight.
	maxInFlight = 128
	// resweepEvery is how often the subnet is swept again while mDNS
	// hears nobody on another machine.
	resweepEvery = 30 * time.Second
	// maxPending bounds the instances learnt from answers' peer lists and
	// not asked yet; maxTargets the instances polled.
	maxPending = 64
	maxTargets = 64
	// dropAfter consecutive unanswered polls stop polling an instance
	// found by a sweep (one given by hand is polled for as long as we run).
	dropAfter = 3
)

// UnicastConfig configures the unicast fallback (see above).
type UnicastConfig struct {
	// Port is the hello port, probed on every address of a subnet
	// (DefaultHelloPort when 0).
	Port int
	// Peers are the instances given by hand (--peer, ResolvePeers):
	// polled from the start, whatever mDNS finds.
	Peers []netip.AddrPort
	// KnownFile keeps the instances seen (address:port, at most maxKnown
	// lines), read at Run and asked first. Empty: none is kept.
	KnownFile string
	// NoSweep turns the subnet sweep off: only Peers and the remembered
	// instances are asked.
	NoSweep bool
	// Rate is the sweep's rate in addresses per second (DefaultProbeRate).
	Rate float64
	// SubnetBits is the widest subnet swept per interface
	// (DefaultSubnetBits): a wider one is swept only in the /SubnetBits
	// around the interface's address. 16-30.
	SubnetBits int
}

// withDefaults fills in the defaults and checks the bounds.
func (c UnicastConfig) withDefaults() (UnicastConfig, error) {
	if c.Port == 0 {
		c.Port = DefaultHelloPort
	}
	if c.Rate == 0 {
		c.Rate = DefaultProbeRate
	}
	if c.SubnetBits == 0 {
		c.SubnetBits = DefaultSubnetBits
	}
	switch {
	case c.Port < 1 || c.Port > 65535:
		return c, fmt.Errorf("discovery: hello port %d out of range 1-65535", c.Port)
	case c.Rate < 0 || c.Rate > 10000:
		return c, fmt.Errorf("discovery: probe rate %v out of range 0-10000 a second", c.Rate)
	case c.SubnetBits < 16 || c.SubnetBits > 30:
		return c, fmt.Errorf("discovery: sweep bound /%d out of range /16-/30", c.SubnetBits)
	}
	return c, nil
}

// Hello is what an instance answers at HelloPath.
type Hello struct {
	TXT   []string    `json:"txt"`
	Peers []HelloPeer `json:"peers,omitempty"`
}

// HelloPeer is another instance in the answerer's view.
type HelloPeer struct {
	TXT   []string     `json:"txt"`
	Addrs []netip.Addr `json:"addrs"`
}

// Hello returns this instance's answer at HelloPath: its record as now
// advertised and the others in its view.
func (d *Discovery) Hello() Hello {
	st := d.Current()
	var h Hello
	for _, p := range st.Peers {
		rec := record{ID: p.ID, Name: p.Name, Priority: p.Priority, Port: p.Port, Host: p.Host, HostSince: p.HostSince}
		if p.Self {
			h.TXT = rec.txt()
			continue
		}
		if len(h.Peers) == maxHelloPeers {
			continue
		}
		var addrs []netip.Addr
		for _, a := range p.Addrs {
			if a.Is4() && len(addrs) < maxHostAddrs {
				addrs = append(addrs, a)
			}
		}
		h.Peers = append(h.Peers, HelloPeer{TXT: rec.txt(), Addrs: addrs})
	}
	return h
}

// ParseHello decodes and bounds an answer from the network. Its records
// are validated where they are used (parseTXT).
func ParseHello(body []byte) (Hello, error) {
	if len(body) > maxHelloBody {
		return Hello{}, errors.New("hello: answer longer than 16 KiB")
	}
	var h Hello
	if err := json.Unmarshal(body, &h); err != nil {
		return Hello{}, fmt.Errorf("hello: %w", err)
	}
	if len(h.TXT) == 0 {
		return Hello{}, errors.New("hello: no record")
	}
	if len(h.Peers) > maxHelloPeers {
		return Hello{}, fmt.Errorf("hello: %d peers, more than %d", len(h.Peers), maxHelloPeers)
	}
	for _, p := range h.Peers {
		if len(p.Addrs) > maxHostAddrs {
			return Hello{}, fmt.Errorf("hello: a peer with %d addresses, more than %d", len(p.Addrs), maxHostAddrs)
		}
	}
	return h, nil
}

// fallbackSource is a Source (mDNS, or a test's) with the unicast fallback
// beside it: both report to the same heard.
type fallbackSource struct {
	inner Source
	p     *prober
}

func newFallbackSource(inner Source, cfg Config) (*fallbackSource, error) {
	uc, err := cfg.Unicast.withDefaults()
	if err != nil {
		return nil, err
	}
	return &fallbackSource{inner: inner, p: &prober{
		cfg: uc, ifaces: cfg.Interfaces, self: cfg.Self.ID,
		interval: cfg.QueryInterval, expire: cfg.ExpireAfter, log: cfg.Logger,
		targets: map[netip.AddrPort]*target{}, pending: map[netip.AddrPort]bool{},
	}}, nil
}

// Publish implements Source.
func (f *fallbackSource) Publish(txt []string) error { return f.inner.Publish(txt) }

// Probe implements Source.
func (f *fallbackSource) Probe() { f.inner.Probe() }

// Run implements Source.
func (f *fallbackSource) Run(ctx context.Context, heard func(Sighting)) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return f.inner.Run(ctx, func(s Sighting) {
			f.p.noteMDNS(s)
			heard(s)
		})
	})
	g.Go(func() error { f.p.run(ctx, heard); return nil })
	return g.Wait()
}

// target is an instance that answered (or was given by hand).
type target struct {
	manual   bool
	failures int
	busy     bool // a question is in flight
}

// prober asks instances directly (see the top of this file).
type prober struct {
	cfg      UnicastConfig
	ifaces   []string
	self     string
	interval time.Duration
	expire   time.Duration
	log      *slog.Logger

	asked atomic.Int64 // addresses asked by sweeps, for the logs

	mu         sync.Mutex
	local      []linkPrefixes
	offMachine time.Time // when mDNS last heard an instance on another machine
	targets    map[netip.AddrPort]*target
	pending    map[netip.AddrPort]bool // learnt from peer lists, to ask
	known      knownPeers
}

// noteMDNS watches mDNS's sightings: whether it hears other machines, and
// which instances to remember.
func (p *prober) noteMDNS(s Sighting) {
	rec, err := parseTXT(s.TXT)
	if err != nil || rec.ID == p.self {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range s.Addrs {
		if !p.isLocal(a) {
			p.offMachine = time.Now()
		}
		if a.Is4() {
			// Its hello port, not its signaling port: that one changes
			// with each run of a receive.
			p.remember(netip.AddrPortFrom(a, uint16(p.cfg.Port)))
			break
		}
	}
}

func (p *prober) isLocal(a netip.Addr) bool {
	for _, ip := range p.local {
		for _, pr := range ip.prefixes {
			if pr.Addr() == a.WithZone("") {
				return true
			}
		}
	}
	return false
}

// mdnsWorks reports whether mDNS heard an instance on another machine
// within the expiry time.
func (p *prober) mdnsWorks(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.offMachine.IsZero() && now.Sub(p.offMachine) <= p.expire
}

// remember notes an instance seen; the file is rewritten when the set
// changes. Called with p.mu held.
func (p *prober) remember(ap netip.AddrPort) {
	if p.cfg.KnownFile == "" || !ap.Addr().IsPrivate() {
		return
	}
	if p.known.add(ap) {
		if err := p.known.save(p.cfg.KnownFile); err != nil {
			p.log.Debug("discovery: cannot remember the instances seen", "file", p.cfg.KnownFile, "err", err)
		}
	}
}

// run asks the manual and remembered instances, sweeps when mDNS hears
// nobody, and polls what answered, until ctx is done.
func (p *prober) run(ctx context.Context, heard func(Sighting)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	client := newProbeClient(p)
	defer client.CloseIdleConnections()
	ask := func(ap netip.AddrPort) bool { return p.ask(ctx, client, ap, heard) }

	p.mu.Lock()
	p.local = readAllPrefixes(p.ifaces)
	for _, ap := range p.cfg.Peers {
		p.targets[ap] = &target{manual: true}
	}
	if p.cfg.KnownFile != "" {
		p.known = loadKnown(p.cfg.KnownFile)
	}
	var seeds []netip.AddrPort
	for _, ap := range p.known.list {
		seeds = appendAddrPorts(seeds, ap, netip.AddrPortFrom(ap.Addr(), uint16(p.cfg.Port)))
	}
	p.mu.Unlock()
	if len(seeds) > 0 {
		wg.Go(func() { p.sweep(ctx, "remembered instances", seeds, ask) })
	}

	var sweeping atomic.Bool
	var lastSweep time.Time
	trySweep := func(now time.Time) {
		if p.cfg.NoSweep || sweeping.Load() || p.mdnsWorks(now) ||
			!lastSweep.IsZero() && now.Sub(lastSweep) < resweepEvery {
			return
		}
		lastSweep = now
		sweeping.Store(true)
		wg.Go(func() {
			defer sweeping.Store(false)
			p.sweepSubnets(ctx, ask)
		})
	}

	// The first sweep comes one query interval after the start: mDNS has
	// had its first answers by then, where multicast works.
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	p.poll(&wg, ask)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			local := readAllPrefixes(p.ifaces)
			p.mu.Lock()
			p.local = local
			p.mu.Unlock()
			p.poll(&wg, ask)
			trySweep(now)
		}
	}
}

// poll asks every target that has no question in flight, and the
// instances learnt from peer lists.
func (p *prober) poll(wg *sync.WaitGroup, ask func(netip.AddrPort) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ap := range p.pending {
		if _, ok := p.targets[ap]; !ok && len(p.targets) < maxTargets {
			p.targets[ap] = &target{}
		}
		delete(p.pending, ap)
	}
	for ap, t := range p.targets {
		if t.busy {
			continue
		}
		t.busy = true
		wg.Go(func() {
			ok := ask(ap)
			p.mu.Lock()
			defer p.mu.Unlock()
			t.busy = false
			if ok {
				t.failures = 0
				return
			}
			if t.failures++; t.failures >= dropAfter && !t.manual {
				delete(p.targets, ap)
			}
		})
	}
}

// sweepSubnets asks the hello port on every address of each interface's
// subnet (sweepAddrs), and logs what it did.
func (p *prober) sweepSubnets(ctx context.Context, ask func(netip.AddrPort) bool) {
	p.mu.Lock()
	local := slices.Clone(p.local)
	p.mu.Unlock()
	var aps []netip.AddrPort
	for _, ip := range local {
		addrs := sweepAddrs(ip.prefixes, p.cfg.SubnetBits)
		if len(addrs) == 0 {
			continue
		}
		p.log.Info("discovery: mDNS hears no other machine; probing the subnet", "iface", ip.iface,
			"from", addrs[0], "to", addrs[len(addrs)-1], "addrs", len(addrs), "port", p.cfg.Port, "rate", p.cfg.Rate)
		for _, a := range addrs {
			aps = append(aps, netip.AddrPortFrom(a, uint16(p.cfg.Port)))
		}
	}
	if len(aps) > 0 {
		p.sweep(ctx, "subnet", aps, ask)
	}
}

// sweep asks each of aps once, at most cfg.Rate a second and maxInFlight
// at a time; what answers becomes a target.
func (p *prober) sweep(ctx context.Context, what string, aps []netip.AddrPort, ask func(netip.AddrPort) bool) {
	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / p.cfg.Rate))
	defer tick.Stop()
	sem := make(chan struct{}, maxInFlight)
	var (
		wg    sync.WaitGroup
		found atomic.Int64
	)
	asked := 0
loop:
	for _, ap := range aps {
		if asked > 0 {
			select {
			case <-ctx.Done():
				break loop
			case <-tick.C:
			}
		}
		select {
		case <-ctx.Done():
			break loop
		case sem <- struct{}{}:
		}
		asked++
		p.asked.Add(1)
		wg.Go(func() {
			defer func() { <-sem }()
			if ask(ap) {
				found.Add(1)
				p.mu.Lock()
				if _, ok := p.targets[ap]; !ok && len(p.targets) < maxTargets {
					p.targets[ap] = &target{}
				}
				p.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ctx.Err() == nil {
		p.log.Info("discovery: probe done", "of", what, "asked", asked, "found", found.Load(), "took", time.Since(start).Round(time.Millisecond))
	}
}

// ask asks one address for its hello, reports the answer as a Sighting
// and notes the instances it lists. It reports whether a lanft answered.
func (p *prober) ask(ctx context.Context, client *http.Client, ap netip.AddrPort, heard func(Sighting)) bool {
	h, err := fetchHello(ctx, client, ap)
	if err != nil {
		return false
	}
	rec, err := parseTXT(h.TXT)
	if err != nil {
		p.log.Debug("discovery: ignoring a hello", "from", ap, "err", err)
		return false
	}
	p.mu.Lock()
	iface, _, _ := subnetOf(p.local, ap.Addr())
	if rec.ID != p.self {
		p.remember(ap)
	}
	for _, hp := range h.Peers {
		pr, err := parseTXT(hp.TXT)
		if err != nil || pr.ID == p.self {
			continue
		}
		for _, a := range hp.Addrs {
			// Only instances on our own subnets: a peer list never
			// sends a probe anywhere else.
			if _, _, on := subnetOf(p.local, a); on && a.Is4() && len(p.pending) < maxPending {
				c := netip.AddrPortFrom(a, uint16(pr.Port))
				if _, known := p.targets[c]; !known {
					p.pending[c] = true
				}
			}
		}
	}
	p.mu.Unlock()
	heard(Sighting{Iface: iface + ProbeSuffix, Addrs: []netip.Addr{ap.Addr()}, TXT: h.TXT})
	return true
}

// fetchHello is one GET of HelloPath at ap.
func fetchHello(ctx context.Context, client *http.Client, ap netip.AddrPort) (Hello, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ap.String()+HelloPath, nil)
	if err != nil {
		return Hello{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return Hello{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Hello{}, fmt.Errorf("hello: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHelloBody+1))
	if err != nil {
		return Hello{}, err
	}
	return ParseHello(body)
}

// newProbeClient returns the HTTP client of the probes (LANDialer's
// connections), which never follows a redirect.
func newProbeClient(p *prober) *http.Client {
	dial := lanDial(func() []linkPrefixes {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.local
	}, probeTimeout)
	return &http.Client{
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true, MaxResponseHeaderBytes: 4 << 10},
		// A hello never redirects: a redirect is not followed anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// LANDialer returns a dial function for what must stay on the LAN: a TCP
// connection to an IPv4 address on one of the interfaces' subnets leaves
// from that interface's address, bound to the interface
// (SO_BINDTODEVICE), so that a VPN whose route covers the LAN's range
// does not take it; a connection to any other address goes where the
// routes say. The interfaces' addresses are read at each dial.
func LANDialer(ifaces []string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	ifaces = slices.Clone(ifaces)
	return lanDial(func() []linkPrefixes { return readAllPrefixes(ifaces) }, 0)
}

func lanDial(local func() []linkPrefixes, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			if iface, src, ok := subnetOf(local(), ap.Addr().Unmap()); ok {
				d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
				d.Control = bindif.Control(iface)
			}
		}
		return d.DialContext(ctx, network, addr)
	}
}

func appendAddrPorts(s []netip.AddrPort, aps ...netip.AddrPort) []netip.AddrPort {
	for _, ap := range aps {
		if !slices.Contains(s, ap) {
			s = append(s, ap)
		}
	}
	return s
}

// maxKnown bounds the instances remembered.
const maxKnown = 32

// knownPeers are the instances remembered, most recently first seen first.
type knownPeers struct{ list []netip.AddrPort }

// add puts ap first if it is new and reports whether the set changed.
func (k *knownPeers) add(ap netip.AddrPort) bool {
	if slices.Contains(k.list, ap) {
		return false
	}
	k.list = append([]netip.AddrPort{ap}, k.list...)
	if len(k.list) > maxKnown {
		k.list = k.list[:maxKnown]
	}
	return true
}

// loadKnown reads the file of remembered instances: one address:port a
// line; what does not parse, or is not a private address, is skipped.
func loadKnown(file string) knownPeers {
	var k knownPeers
	b, err := os.ReadFile(file)
	if err != nil || len(b) > 64<<10 {
		return k
	}
	for _, line := range strings.Split(string(b), "\n") {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(line))
		if err == nil && ap.Addr().Is4() && ap.Addr().IsPrivate() && ap.Port() != 0 && len(k.list) < maxKnown {
			k.list = appendAddrPorts(k.list, ap)
		}
	}
	return k
}

// save writes the file (through a temporary one, renamed over it).
func (k *knownPeers) save(file string) error {
	var b strings.Builder
	for _, ap := range k.list {
		b.WriteString(ap.String() + "\n")
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
