package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanft/lanft/discovery"
	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/web"
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
}

// LAN is a Hosts that finds the signaling host on the LAN. Run it for as
// long as the node runs.
type LAN struct {
	cfg      LANConfig
	ifaces   []string // the interfaces discovery works on (nil with an injected Source)
	loopback []netip.Addr
	disc     *discovery.Discovery
	srv      *signal.Server
	web      *web.Web
	lns      *listenSet
	fallback atomic.Bool // the host in use is the fallback

	mu      sync.Mutex
	state   discovery.State
	changed chan struct{} // closed and replaced on every state change
	started time.Time
	done    chan struct{} // closed when Run returns
}

// errStopped is returned by Wait once Run has returned.
var errStopped = errors.New("node: LAN discovery stopped")

// NewLAN listens for this instance's signaling server and page on the
// addresses of the interfaces discovery works on and on loopback (see
// listen.go), and prepares discovery. Nothing runs until Run.
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
		changed: make(chan struct{}), started: time.Now(), done: make(chan struct{})}
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
	srv, err := signal.NewServer(signal.Config{Logger: cfg.Logger, PingInterval: 2 * time.Second})
	if err != nil {
		l.lns.Close()
		return nil, err
	}
	l.srv = srv
	dcfg := cfg.Discovery
	dcfg.Self.Name = cfg.Name
	dcfg.Self.Priority = cfg.Priority
	dcfg.Self.Port = l.lns.port
	dcfg.Interfaces = ifaces
	dcfg.Logger = cfg.Logger
	if l.disc, err = discovery.New(dcfg); err != nil {
		l.lns.Close()
		return nil, err
	}
	// Every instance serves the browser page; a page's WebSocket is bridged
	// to whichever instance is the elected host.
	l.web, err = web.New(web.Config{Signal: srv.Handler(), Upstream: l, Admits: srv.Admits, Logger: cfg.Logger})
	if err != nil {
		l.lns.Close()
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

// Run serves signaling and runs discovery until ctx is cancelled.
func (l *LAN) Run(ctx context.Context) error {
	defer close(l.done)
	defer l.lns.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	l.lns.serve()
	wg.Go(func() {
		if err := l.srv.ServeWith(ctx, l.lns, l.web); err != nil {
			errc <- err
		}
	})
	wg.Go(func() { l.follow(ctx) })
	wg.Go(func() {
		if err := l.disc.Run(ctx); err != nil {
			errc <- err
		}
	})
	wg.Go(func() {
		for s := range l.disc.Updates() {
			l.mu.Lock()
			l.state = s
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
	})
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		cancel()
	}
	l.web.Close()
	wg.Wait()
	return err
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
	cond := func(s discovery.State) bool { return s.HasHost && s.HostURL() != "" }
	if l.cfg.Fallback != "" {
		cond = func(s discovery.State) bool { return s.HasHost && s.HostURL() != "" && others(s) > 0 }
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
		return l.cfg.Fallback, l.watch(func(s discovery.State) bool { return others(s) > 0 }), nil
	}
	hostID := s.Host.ID
	l.fallback.Store(false)
	return s.HostURL(), l.watch(func(s discovery.State) bool { return !s.HasHost || s.Host.ID != hostID }), nil
}

// watch returns a channel closed once cond holds for the state.
func (l *LAN) watch(cond func(discovery.State) bool) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		// Ends when cond holds or Run returns.
		_, _ = l.Wait(context.Background(), cond)
		close(ch)
	}()
	return ch
}

// Lost is told that the connection to url ended: if url is the elected
// host's, it is forgotten at once instead of waiting for its mDNS expiry.
func (l *LAN) Lost(url string) {
	s := l.State()
	if s.HasHost && s.HostURL() == url && !s.IAmHost {
		l.disc.Forget(s.Host.ID)
	}
}
