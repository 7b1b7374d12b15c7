package discovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

	"golang.org/x/sync/errgroup"
)

// Defaults of Config.
const (
	DefaultQueryInterval = time.Second
	DefaultExpireAfter   = 3 * time.Second
)

// ErrNoInterface is returned when discovery has no interface to work on.
var ErrNoInterface = errors.New("discovery: no usable network interface")

// Self describes this instance.
type Self struct {
	ID       string // random, stable for the process (NewID); 1-32 of [A-Za-z0-9-]; empty: New picks one
	Name     string // display name: at most 64 bytes of UTF-8, no control or format characters
	Priority int    // election priority (32-bit); higher wins when nobody is host
	Port     int    // TCP port of this instance's signaling server
}

// Config configures a Discovery.
type Config struct {
	Self Self
	// Interfaces names the interfaces to advertise and browse on. Empty
	// means DefaultInterfaces. A named interface may be a loopback one.
	Interfaces []string
	// QueryInterval is the time between two queries (DefaultQueryInterval
	// when zero). The settle time after start is 1.5 query intervals.
	QueryInterval time.Duration
	// ExpireAfter drops an instance that has not answered for that long
	// (DefaultExpireAfter when zero). It must be at least 2 query intervals.
	ExpireAfter time.Duration
	// HostExpireAfter, when longer than ExpireAfter, drops the elected
	// host only after it has not answered for that long. An application
	// that tells a dead host apart itself (its WebSocket closed, its port
	// refuses: Forget) sets it, so that a host that only paused (a 2 s
	// stall misses two queries: 3 s without an answer) is not replaced.
	HostExpireAfter time.Duration
	// Logger receives the package's logs; nil discards them.
	Logger *slog.Logger
	// Source moves the packets; nil means mDNS on Interfaces. Tests inject
	// an in-memory one.
	Source Source
	// Unicast, when set, runs the unicast fallback beside the Source
	// (unicast.go): --peer, remembered instances, a bounded subnet sweep.
	Unicast *UnicastConfig
}

// Source moves discovery packets: it advertises this instance's TXT record
// and reports every answer it hears. The mDNS implementation is the default;
// tests use an in-memory LAN.
type Source interface {
	// Publish replaces the TXT record being advertised. It is called before
	// Run and whenever the record changes, possibly while Run runs.
	Publish(txt []string) error
	// Probe asks for a query now, besides the periodic ones. Discovery
	// calls it every quarter interval while the view has no host, so that a
	// new host claim is heard sooner. It must not block.
	Probe()
	// Run advertises and browses until ctx is done, then returns nil. It
	// calls heard, from any goroutine, for each answer heard, our own
	// looped-back answers included.
	Run(ctx context.Context, heard func(Sighting)) error
}

// Sighting is one answer heard by a Source.
type Sighting struct {
	Iface string       // the interface it was heard on
	Addrs []netip.Addr // the answering instance's addresses usable from Iface
	TXT   []string     // its TXT record, as received (validated by the caller)
}

// Peer is one lanft instance in the view.
type Peer struct {
	ID        string
	Name      string
	Addrs     []netip.Addr // IPv4 first, then global IPv6, then link-local IPv6 (with zone)
	Port      int          // its signaling server's port
	Iface     string       // the (first by name) interface it is heard on
	Priority  int
	Version   int       // protocol major version
	Host      bool      // it claims to be host
	HostSince int64     // when it started claiming, Unix milliseconds of its own clock; 0 if not
	LastSeen  time.Time // when it last answered (now for Self)
	Self      bool      // this instance
}

// State is one instance's view of the LAN and the election result.
// Treat it as read-only: its slices are shared.
type State struct {
	Peers   []Peer // every instance in the view, self included, sorted by name then ID
	Host    Peer   // the elected host, when HasHost
	HasHost bool
	IAmHost bool // the elected host is this instance
}

// HostURL returns the WebSocket URL of the elected host's signaling server,
// "ws://ADDR:PORT/ws", with its IPv4 address if it has one. It returns ""
// when there is no host or no known address.
func (s State) HostURL() string {
	if !s.HasHost || len(s.Host.Addrs) == 0 || s.Host.Port == 0 {
		return ""
	}
	a := s.Host.Addrs[0]
	host := a.String()
	if a.Is6() {
		host = a.WithZone("").String()
		if z := a.Zone(); z != "" {
			host += "%25" + z // RFC 6874: the '%' of a zone is escaped in a URL
		}
	}
	return "ws://" + net.JoinHostPort(host, strconv.Itoa(s.Host.Port)) + "/ws"
}

// Discovery advertises this instance, tracks the others and elects the host.
type Discovery struct {
	cfg    Config
	log    *slog.Logger
	src    Source
	addrs  *addrBook // nil with an injected Source
	settle time.Duration

	ran     atomic.Bool
	updates chan State // capacity 1, latest value; only Run sends

	mu      sync.Mutex
	cur     State
	forgets []string
	poke    chan struct{} // capacity 1: Forget wakes Run
}

// New validates cfg and returns a Discovery. It starts nothing.
func New(cfg Config) (*Discovery, error) {
	if cfg.Self.ID == "" {
		cfg.Self.ID = NewID()
	}
	if cfg.QueryInterval == 0 {
		cfg.QueryInterval = DefaultQueryInterval
	}
	if cfg.ExpireAfter == 0 {
		cfg.ExpireAfter = DefaultExpireAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rec := record{ID: cfg.Self.ID, Name: cfg.Self.Name, Priority: cfg.Self.Priority, Port: cfg.Self.Port}
	if err := rec.validate(); err != nil {
		return nil, fmt.Errorf("discovery: self: %w", err)
	}
	if cfg.QueryInterval < time.Millisecond {
		return nil, fmt.Errorf("discovery: query interval %v is shorter than 1ms", cfg.QueryInterval)
	}
	if cfg.ExpireAfter < 2*cfg.QueryInterval {
		return nil, fmt.Errorf("discovery: expiry %v is shorter than 2 query intervals (%v)", cfg.ExpireAfter, 2*cfg.QueryInterval)
	}
	src := cfg.Source
	var addrs *addrBook
	if src == nil {
		names, err := ResolveInterfaces(cfg.Interfaces)
		if err != nil {
			return nil, err
		}
		cfg.Interfaces = names
		m := newMDNSSource(names, cfg.Self.ID, cfg.Self.Port, cfg.QueryInterval, cfg.Logger)
		src, addrs = m, m.addrs
	}
	if cfg.Unicast != nil { // the unicast fallback, unicast.go
		f, err := newFallbackSource(src, cfg)
		if err != nil {
			return nil, err
		}
		src = f
	}
	d := &Discovery{
		cfg:     cfg,
		log:     cfg.Logger,
		src:     src,
		addrs:   addrs,
		settle:  cfg.QueryInterval * 3 / 2,
		updates: make(chan State, 1),
		poke:    make(chan struct{}, 1),
	}
	d.cur = d.state(newView(rec), time.Now(), Election{})
	return d, nil
}

// NewID returns a random instance ID: 16 hex digits.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ID returns this instance's ID.
func (d *Discovery) ID() string { return d.cfg.Self.ID }

// Interfaces returns the interfaces the mDNS source works on (nil with an
// injected Source).
func (d *Discovery) Interfaces() []string {
	if d.cfg.Source != nil {
		return nil
	}
	return slices.Clone(d.cfg.Interfaces)
}

// LocalAddrs returns the addresses of the interfaces discovery works on
// (Interfaces), in their order, as last read, and a channel closed when
// they next change. The mDNS source re-reads them before each query, every
// query interval, while Run runs; before, they are as New read them. With
// an injected Source it returns nil and a nil channel.
func (d *Discovery) LocalAddrs() ([]LocalAddr, <-chan struct{}) {
	if d.addrs == nil {
		return nil, nil
	}
	return d.addrs.get()
}

// Updates returns a channel that receives the State each time it changes
// (a change of LastSeen alone is not one). It holds only the latest value: a
// slow reader misses intermediate states and never blocks Run. It is closed
// when Run returns.
func (d *Discovery) Updates() <-chan State { return d.updates }

// Current returns the latest State.
func (d *Discovery) Current() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur
}

// Forget drops the instance id from the view now instead of waiting for its
// expiry: call it once the host is known to be dead (its WebSocket closed
// and its port refuses). The instance comes back if it answers again, after
// half a query interval (an answer it sent just before it died may still be
// on its way). Forgetting this instance itself does nothing. While the view
// then has no host, a query goes out at once.
func (d *Discovery) Forget(id string) {
	d.mu.Lock()
	d.forgets = append(d.forgets, id)
	d.mu.Unlock()
	select {
	case d.poke <- struct{}{}:
	default:
	}
}

// Run advertises, browses and elects until ctx is done, then returns nil.
// It can be called once.
func (d *Discovery) Run(ctx context.Context) error {
	if !d.ran.CompareAndSwap(false, true) {
		return errors.New("discovery: Run called twice")
	}
	defer close(d.updates)

	v := newView(record{ID: d.cfg.Self.ID, Name: d.cfg.Self.Name, Priority: d.cfg.Self.Priority, Port: d.cfg.Self.Port})
	v.hostAfter, v.quiet = d.cfg.HostExpireAfter, forgetQuiet(d.cfg.QueryInterval)
	if err := d.src.Publish(v.self.txt()); err != nil {
		return fmt.Errorf("discovery: publish record: %w", err)
	}
	heard := make(chan Sighting, 64)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := d.src.Run(gctx, func(s Sighting) {
			select {
			case heard <- s:
			case <-gctx.Done():
			}
		})
		if err == nil && gctx.Err() == nil {
			err = errors.New("discovery: source stopped")
		}
		return err
	})
	g.Go(func() error { return d.loop(gctx, v, heard) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// loop owns the view: it applies answers, expiry and Forget, runs the
// election and publishes the state.
func (d *Discovery) loop(ctx context.Context, v *view, heard <-chan Sighting) error {
	start := time.Now()
	tick := time.NewTicker(d.cfg.QueryInterval / 4)
	defer tick.Stop()
	var last State
	first, ticked := true, false
	for {
		now := time.Now()
		st, err := d.step(v, now, now.Sub(start) >= d.settle)
		if err != nil {
			return err
		}
		if ticked && !st.HasHost {
			d.src.Probe() // every Q/4 while there is no host
		}
		if first || !sameState(last, st) {
			if st.HasHost != last.HasHost || st.Host.ID != last.Host.ID {
				if st.HasHost {
					d.log.Info("discovery: host elected", "id", st.Host.ID, "name", st.Host.Name, "url", st.HostURL(), "self", st.IAmHost)
				} else if !first {
					d.log.Info("discovery: no host")
				}
			}
			first, last = false, st
			select { // replace an unread state: we are the only sender
			case <-d.updates:
			default:
			}
			d.updates <- st
		}
		ticked = false
		select {
		case <-ctx.Done():
			return nil
		case s := <-heard:
			if p, added, err := v.observe(s, time.Now()); err != nil {
				d.log.Debug("discovery: ignoring answer", "iface", s.Iface, "addrs", s.Addrs, "err", err)
			} else if added {
				d.log.Info("discovery: peer found", "id", p.ID, "name", p.Name, "iface", s.Iface, "addrs", s.Addrs)
			}
		case <-tick.C:
			ticked = true
		case <-d.poke:
		}
	}
}

// step applies pending Forgets and expiry, runs the election, changes our
// own claim if it must, and records the resulting state.
func (d *Discovery) step(v *view, now time.Time, settled bool) (State, error) {
	d.mu.Lock()
	forgets := d.forgets
	d.forgets = nil
	d.mu.Unlock()
	forgotHost := false
	for _, id := range forgets {
		if _, ok := v.others[id]; ok {
			d.log.Info("discovery: peer forgotten", "id", id)
			v.forget(id, now)
			forgotHost = forgotHost || id == v.host
		}
	}
	for _, id := range v.expire(now, d.cfg.ExpireAfter) {
		d.log.Info("discovery: peer expired", "id", id)
	}

	e := Elect(v.peers(now), v.self.ID, settled)
	if e.Claim != v.self.Host {
		if e.Claim {
			v.self.Host, v.self.HostSince = true, max(1, now.UnixMilli()) // > 0 on the wire
			d.log.Info("discovery: claiming host")
		} else {
			v.self.Host, v.self.HostSince = false, 0
			d.log.Info("discovery: stepping down as host", "host", e.Host.ID)
		}
		if err := d.src.Publish(v.self.txt()); err != nil {
			return State{}, fmt.Errorf("discovery: publish record: %w", err)
		}
		e = Elect(v.peers(now), v.self.ID, settled)
	}
	v.host = ""
	if e.HasHost {
		v.host = e.Host.ID
	}
	if forgotHost && !e.HasHost {
		d.src.Probe() // the candidate's claim, or ours, heard sooner
	}
	st := d.state(v, now, e)
	d.mu.Lock()
	d.cur = st
	d.mu.Unlock()
	return st, nil
}

// forgetQuiet is how long a forgotten instance's answers are ignored.
func forgetQuiet(q time.Duration) time.Duration { return q / 2 }

func (d *Discovery) state(v *view, now time.Time, e Election) State {
	return State{Peers: v.peers(now), Host: e.Host, HasHost: e.HasHost, IAmHost: e.HasHost && e.Host.Self}
}

// sameState compares two states, ignoring LastSeen.
func sameState(a, b State) bool {
	return a.HasHost == b.HasHost && a.IAmHost == b.IAmHost && samePeer(a.Host, b.Host) &&
		slices.EqualFunc(a.Peers, b.Peers, samePeer)
}

func samePeer(a, b Peer) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Port == b.Port && a.Iface == b.Iface &&
		a.Priority == b.Priority && a.Version == b.Version && a.Host == b.Host &&
		a.HostSince == b.HostSince && a.Self == b.Self && slices.Equal(a.Addrs, b.Addrs)
}
