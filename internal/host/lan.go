package host

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lanft/lanft/bindif"
	"github.com/lanft/lanft/discovery"
	"github.com/lanft/lanft/internal/relay"
	"github.com/lanft/lanft/internal/turn"
	"github.com/lanft/lanft/signal"
)

// LANConfig configures zero-config mode: every instance runs a signaling
// server, advertises it over mDNS, and all log in to the elected one.
type LANConfig struct {
	Name string
	// Priority weighs this instance in a host election when nobody hosts
	// yet: long-lived instances (shares) should host rather than a
	// receive or a peers listing that will soon exit.
	Priority   int
	Interfaces []string // empty: discovery's default interfaces
	// Port is the signaling (and browser page) port to try first; when it
	// is 0 or taken, the system picks one. A share keeps its last port so
	// that its page's address (a browser's storage origin) stays the same.
	Port   int
	Logger *slog.Logger
	// Fallback is a remote signaling URL used when discovery finds no other
	// instance within FallbackAfter (3s). Empty: stay on the LAN.
	Fallback      string
	FallbackAfter time.Duration
	// Notice tells the user something they should know (a fallback).
	Notice func(string)
	// Discovery overrides discovery's timing and source (tests).
	Discovery discovery.Config
	// NoRelay: this instance relays no transfer between two other peers
	// (--no-relay); peers that ask are told so. Otherwise it does, when it
	// is the elected host, and Notice says so each time.
	NoRelay bool
}

// LAN is one instance's signaling host on the LAN, and the node.Hosts
// that finds the elected one: its Host listens only where the LAN is
// (listen.go), serves the page, whose WebSocket is bridged to whichever
// instance is elected, and discovery advertises it. Run it for as long as
// the node runs.
type LAN struct {
	cfg      LANConfig
	interval time.Duration // discovery's query interval
	ifaces   []string      // the interfaces discovery works on (nil with an injected Source)
	loopback []netip.Addr
	disc     *discovery.Discovery
	host     *Host
	lns      *listenSet
	hello    *listenSet  // the hello port (hello.go); nil without one
	fallback atomic.Bool // the host in use is the fallback
	started  time.Time
	stopOnce sync.Once

	mu      sync.Mutex
	state   discovery.State
	changed chan struct{} // closed and replaced on every state change
	done    chan struct{} // closed when Run returns (or Close is called)
	stopped bool          // done is closed
	// The stale channels Host hands out, one per condition, closed by
	// setState once it holds (and all by stop): however often Host is
	// called (each page the bridge serves, each login), no goroutine waits.
	hostStale     map[string]chan struct{} // by the elected host's ID: closed when another is elected
	fallbackStale chan struct{}            // while on the fallback: closed when another instance shows up
	// suspects are the hosts whose connection ended and whose port is
	// being probed (hostwatch.go): Host waits for the verdict rather than
	// hand out a host that may be dead. Only while running.
	suspects map[string]bool
	running  bool
	lost     chan suspect         // Lost, watchSilence → watchLost
	alive    map[string]time.Time // host ID → when its port last accepted (watchSilence)
}

// suspect is a host to probe, and why.
type suspect struct {
	peer discovery.Peer
	why  string
}

// errStopped is returned by Wait once Run has returned.
var errStopped = errors.New("host: LAN discovery stopped")

// NewLAN listens for this instance's signaling server and page on the
// addresses of the interfaces discovery works on and on loopback (see
// listen.go), assembles its Host, and prepares discovery. Nothing runs
// until Run.
func NewLAN(cfg LANConfig) (*LAN, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FallbackAfter == 0 {
		cfg.FallbackAfter = 3 * time.Second
	}
	if cfg.Notice == nil {
		cfg.Notice = func(string) {}
	}
	l := &LAN{cfg: cfg, loopback: loopbackAddrs(), lns: newListenSet(cfg.Logger),
		changed: make(chan struct{}), started: time.Now(), done: make(chan struct{}),
		hostStale: make(map[string]chan struct{}), suspects: make(map[string]bool), lost: make(chan suspect, 16), alive: make(map[string]time.Time)}
	ifaces := cfg.Interfaces
	if cfg.Discovery.Source == nil {
		var err error
		if ifaces, err = discovery.ResolveInterfaces(cfg.Interfaces); err != nil {
			return nil, err
		}
		l.ifaces = ifaces
	}
	if err := l.lns.open(serveAddrs(discovery.InterfaceAddrs(ifaces), l.loopback), cfg.Port); err != nil {
		return nil, err
	}
	var hello http.Handler
	if uc := cfg.Discovery.Unicast; uc != nil { // the unicast fallback: hello.go
		hello = helloOf(l)
		l.hello = openHello(serveAddrs(discovery.InterfaceAddrs(ifaces), l.loopback), cmp.Or(uc.Port, discovery.DefaultHelloPort), newListenSet(cfg.Logger))
	}
	// Every instance serves the browser page; a page's WebSocket is bridged
	// to whichever instance is the elected host.
	hc := Config{
		Listener: l.lns,
		Signal:   signal.Config{PingInterval: 2 * time.Second},
		Upstream: l,
		Hello:    hello,
		Dial:     l.DialContext,
		Logger:   cfg.Logger,
	}
	lanRelay(&hc, cfg, l.ifaces)
	h, err := New(hc)
	if err != nil {
		if l.hello != nil {
			l.hello.Close()
		}
		return nil, err // New closed the listeners
	}
	l.host = h
	dcfg := cfg.Discovery
	dcfg.Self.Name = cfg.Name
	dcfg.Self.Priority = cfg.Priority
	dcfg.Self.Port = l.lns.port
	dcfg.Interfaces = ifaces
	dcfg.Logger = cfg.Logger
	l.interval = cmp.Or(dcfg.QueryInterval, discovery.DefaultQueryInterval)
	if dcfg.HostExpireAfter == 0 {
		// A dead host is told apart by its connection and its port (Lost,
		// watchSilence); its mDNS expiry is only the backstop for a host
		// whose port accepts but that never answers again (a process
		// stopped for good): three queries later than the others', so
		// that a host paused for 2 s on a loaded machine stays host.
		dcfg.HostExpireAfter = cmp.Or(dcfg.ExpireAfter, discovery.DefaultExpireAfter) + 3*l.interval
	}
	if l.disc, err = discovery.New(dcfg); err != nil {
		h.Close()
		if l.hello != nil {
			l.hello.Close()
		}
		return nil, err
	}
	return l, nil
}

// Port is the TCP port of this instance's signaling server and page.
func (l *LAN) Port() int { return l.lns.port }

// PageURLs are the addresses of this instance's browser page, one per
// address it listens on now, the LAN's first and loopback's last
// (link-local IPv6 is left out: a URL cannot name its zone portably).
func (l *LAN) PageURLs() []string {
	var urls []string
	for _, a := range l.lns.addrs() {
		if !a.IsLinkLocalUnicast() {
			urls = append(urls, ListenURLs("http", "/", net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(l.Port()))))...)
		}
	}
	return urls
}

// ICEInterfaces restricts ICE to the interfaces discovery works on while
// the host in use is one found on the LAN, so that a LAN transfer never
// uses another link (a VPN, a container's). Through the fallback host
// (--fallback-signal), as with --signal, it returns nil: a remote peer may
// be reached over any interface.
func (l *LAN) ICEInterfaces() []string {
	if l.fallback.Load() {
		return nil
	}
	return slices.Clone(l.ifaces)
}

// ListenURLs are the URLs under which a listener at a is reached: its own
// address, or for an unspecified one (":7780", "0.0.0.0") one per address
// of this machine's interfaces that are up, loopback last. Link-local IPv6
// is left out (a URL cannot name its zone portably), and so is IPv6 for
// an IPv4 listener.
func ListenURLs(scheme, path string, a *net.TCPAddr) []string {
	url := func(ip net.IP) string {
		return scheme + "://" + net.JoinHostPort(ip.String(), strconv.Itoa(a.Port)) + path
	}
	if !a.IP.IsUnspecified() {
		return []string{url(a.IP)}
	}
	v4only := a.IP.To4() != nil && !a.IP.Equal(net.IPv6unspecified)
	var urls, loop []string
	ifaces, _ := net.Interfaces()
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifi.Addrs()
		for _, ad := range addrs {
			ipn, ok := ad.(*net.IPNet)
			if !ok || ipn.IP.IsLinkLocalUnicast() || v4only && ipn.IP.To4() == nil {
				continue
			}
			if ipn.IP.IsLoopback() {
				loop = append(loop, url(ipn.IP))
			} else {
				urls = append(urls, url(ipn.IP))
			}
		}
	}
	return append(urls, loop...)
}

// Run serves signaling and the page and runs discovery until ctx is
// cancelled; it returns nil on a clean cancel.
func (l *LAN) Run(ctx context.Context) error {
	defer l.stop()
	defer l.host.Close()
	l.lns.serve()
	l.mu.Lock()
	l.running = !l.stopped
	l.mu.Unlock()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { l.watchLost(ctx); return nil })
	g.Go(func() error { l.watchSilence(ctx); return nil })
	g.Go(func() error { return l.host.Run(ctx) })
	g.Go(func() error { return serveHello(ctx, l.hello, helloOf(l)) })
	g.Go(func() error { l.follow(ctx); return nil })
	g.Go(func() error { return l.disc.Run(ctx) })
	g.Go(func() error {
		for s := range l.disc.Updates() { // closed when disc.Run returns
			l.setState(s)
		}
		return nil
	})
	return g.Wait()
}

// Close releases the listeners of a LAN that does not run (Run closes
// them itself). It is idempotent.
func (l *LAN) Close() error {
	l.host.Close()
	if l.hello != nil {
		l.hello.Close()
	}
	l.stop()
	return nil
}

// setState records a new discovery state and closes the stale channels
// whose condition now holds.
func (l *LAN) setState(s discovery.State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state = s
	close(l.changed)
	l.changed = make(chan struct{})
	for id, ch := range l.hostStale {
		if hostGone(s, id) {
			close(ch)
			delete(l.hostStale, id)
		}
	}
	if l.fallbackStale != nil && others(s) > 0 {
		close(l.fallbackStale)
		l.fallbackStale = nil
	}
}

// stop marks the LAN stopped: Wait returns errStopped and every stale
// channel handed out is closed (no host is known any more).
func (l *LAN) stop() {
	l.stopOnce.Do(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.stopped, l.running = true, false
		clear(l.suspects)
		clear(l.alive)
		close(l.done)
		for id, ch := range l.hostStale {
			close(ch)
			delete(l.hostStale, id)
		}
		if l.fallbackStale != nil {
			close(l.fallbackStale)
			l.fallbackStale = nil
		}
	})
}

// follow keeps the listeners on the addresses of discovery's interfaces
// (and loopback) until ctx ends: it sets them again whenever discovery
// reads a change, and every retryListen while an address has none.
func (l *LAN) follow(ctx context.Context) {
	for {
		local, changed := l.disc.LocalAddrs()
		if changed == nil {
			return // an injected Source: the listeners stay as opened
		}
		var retry <-chan time.Time
		if l.lns.set(serveAddrs(local, l.loopback)) {
			retry = time.After(retryListen)
		}
		if l.hello != nil { // hello.go
			l.hello.set(serveAddrs(local, l.loopback))
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-retry:
		}
	}
}

// State is the latest discovery state.
func (l *LAN) State() discovery.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Wait blocks until cond holds for the discovery state, or ctx ends.
func (l *LAN) Wait(ctx context.Context, cond func(discovery.State) bool) (discovery.State, error) {
	for {
		l.mu.Lock()
		s, ch := l.state, l.changed
		l.mu.Unlock()
		if cond(s) {
			return s, nil
		}
		select {
		case <-ch:
		case <-l.done:
			return s, errStopped
		case <-ctx.Done():
			return s, ctx.Err()
		}
	}
}

func others(s discovery.State) int {
	n := 0
	for _, p := range s.Peers {
		if !p.Self {
			n++
		}
	}
	return n
}

// Host waits for an elected host and returns its URL; the channel closes
// when another host is elected. With a fallback configured and no other
// instance seen within FallbackAfter, the fallback URL is returned instead,
// going stale as soon as an instance shows up on the LAN.
func (l *LAN) Host(ctx context.Context) (string, <-chan struct{}, error) {
	waitCtx := ctx
	if l.cfg.Fallback != "" {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithDeadline(ctx, l.started.Add(l.cfg.FallbackAfter))
		defer cancel()
	}
	cond := func(s discovery.State) bool { return s.HasHost && s.HostURL() != "" && !l.suspected(s.Host.ID) }
	if l.cfg.Fallback != "" {
		cond = func(s discovery.State) bool {
			return s.HasHost && s.HostURL() != "" && others(s) > 0 && !l.suspected(s.Host.ID)
		}
	}
	s, err := l.Wait(waitCtx, cond)
	if err != nil {
		if ctx.Err() != nil {
			return "", nil, ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return "", nil, err
		}
		l.fallback.Store(true)
		l.cfg.Notice(fmt.Sprintf("no other lanft instance found on the LAN; using %s", l.cfg.Fallback))
		return l.cfg.Fallback, l.staleFallback(), nil
	}
	hostID := s.Host.ID
	l.fallback.Store(false)
	return s.HostURL(), l.staleHost(hostID), nil
}

func hostGone(s discovery.State, id string) bool { return !s.HasHost || s.Host.ID != id }

// closed is a channel that is closed already.
func closed() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// staleHost returns the channel closed once the host with this ID is no
// longer elected: one channel per host, shared by every caller.
func (l *LAN) staleHost(id string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped || hostGone(l.state, id) {
		return closed()
	}
	ch := l.hostStale[id]
	if ch == nil {
		ch = make(chan struct{})
		l.hostStale[id] = ch
	}
	return ch
}

// staleFallback returns the channel closed once another instance shows up
// on the LAN, shared by every caller.
func (l *LAN) staleFallback() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped || others(l.state) > 0 {
		return closed()
	}
	if l.fallbackStale == nil {
		l.fallbackStale = make(chan struct{})
	}
	return l.fallbackStale
}

// Lost is told that the connection to url ended: if url is the elected
// host's, its port is probed (hostwatch.go) and, if it is dead, it is
// forgotten at once instead of waiting for its mDNS expiry. Until the
// verdict, Host waits rather than hand it out again.
func (l *LAN) Lost(url string) {
	s := l.State()
	if !s.HasHost || s.HostURL() != url || s.IAmHost {
		return
	}
	l.suspect(s.Host, "its connection ended")
}

// suspect has the host p probed (watchLost), unless it is already.
func (l *LAN) suspect(p discovery.Peer, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.running || l.suspects[p.ID] {
		return
	}
	select {
	case l.lost <- suspect{p, why}:
		l.suspects[p.ID] = true
	default: // many hosts lost at once: this one expires as before
	}
}

// lanRelay gives a LAN instance's host its TCP relay for two peers of the
// LAN that cannot reach each other (client isolation) but both reach this
// instance, or the refusal of --no-relay.
func lanRelay(hc *Config, cfg LANConfig, ifaces []string) {
	if cfg.NoRelay {
		hc.NoRelay = fmt.Sprintf("%s's lanft does not relay transfers for others (it runs with --no-relay)", cfg.Name)
		return
	}
	notice := cfg.Notice
	hc.RelayLAN = true
	hc.Relay = &relay.Config{MaxRelays: 16, MaxPerClient: 2, Started: func(r relay.Relayed) {
		notice(fmt.Sprintf("relaying a transfer between %s and %s, who cannot reach each other on this LAN (end-to-end encrypted; --no-relay refuses)", r.A, r.B))
	}}
	hc.TURN = lanTURN(ifaces, cfg.Logger)
}

// lanTURN opens a STUN/TURN relay for the LAN on the first IPv4 address of
// the interfaces (UDP): two peers that reach this instance but not each
// other get their data channel through it, are verified there, and then
// move the bytes over the TCP relay. It relays only between the room's
// logged-in clients, at the addresses the signaling server saw them at
// (internal/turn's rules). nil when there is no such address (and with an
// injected discovery Source: ifaces is nil then).
func lanTURN(ifaces []string, log *slog.Logger) *turn.Config {
	for _, la := range discovery.InterfaceAddrs(ifaces) {
		a := la.Addr
		if !a.Is4() || a.IsLoopback() || a.IsLinkLocalUnicast() {
			continue
		}
		lc := net.ListenConfig{Control: bindif.Control(la.Iface)}
		pc, err := lc.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(a, 0).String())
		if err != nil {
			log.Warn("node: no TURN relay for the LAN", "addr", a, "err", err)
			return nil
		}
		return &turn.Config{PacketConn: pc, PublicIP: a, Rate: -1}
	}
	return nil
}

// watchSilence probes the elected host when its mDNS answers stop (one
// query missed), until ctx ends: a host whose machine is gone (no reset
// comes, the WebSocket stays open until its ping timeout) is dropped after
// the probe's misses, and a host whose port accepts is probed again once a
// query interval while it stays silent.
func (l *LAN) watchSilence(ctx context.Context) {
	t := time.NewTicker(l.interval / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := l.disc.Current() // LastSeen is current there
		if !s.HasHost || s.IAmHost || time.Since(s.Host.LastSeen) <= l.interval*3/2 {
			continue
		}
		l.mu.Lock()
		recent := time.Since(l.alive[s.Host.ID]) < l.interval
		l.mu.Unlock()
		if !recent {
			l.suspect(s.Host, "its mDNS answers stopped")
		}
	}
}

// suspected reports whether the host id is being probed.
func (l *LAN) suspected(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.suspects[id]
}

// watchLost probes each host Lost reports, until ctx ends.
func (l *LAN) watchLost(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case sus := <-l.lost:
			wg.Go(func() { l.confirm(ctx, sus.peer, sus.why) })
		}
	}
}

// confirm decides whether the host p (suspected because why) is dead: then
// discovery forgets it and confirm returns once the state shows it gone.
// Either way its suspicion ends.
func (l *LAN) confirm(ctx context.Context, p discovery.Peer, why string) {
	defer l.clearSuspect(p.ID)
	if len(p.Addrs) == 0 {
		return
	}
	addr := netip.AddrPortFrom(p.Addrs[0], uint16(p.Port))
	start := time.Now()
	if !hostDead(ctx, addr, probePort) {
		l.mu.Lock()
		if l.running {
			clear(l.alive) // only the elected host's matters
			l.alive[p.ID] = time.Now()
		}
		l.mu.Unlock()
		l.cfg.Logger.Info("host: "+why+" but the host's port still accepts: not dead (slow, or restarting)", "id", p.ID, "addr", addr)
		return
	}
	l.cfg.Logger.Info("host: "+why+" and the host is gone: electing another", "id", p.ID, "addr", addr, "probed", time.Since(start).Round(time.Millisecond))
	l.disc.Forget(p.ID)
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, _ = l.Wait(wctx, func(s discovery.State) bool { return hostGone(s, p.ID) })
}

// clearSuspect ends the probing of id and wakes whoever waits in Host.
func (l *LAN) clearSuspect(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.suspects[id] {
		return
	}
	delete(l.suspects, id)
	close(l.changed)
	l.changed = make(chan struct{})
}
