package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// These tests run several Discovery instances on a fakeLAN inside a
// synctest bubble: time is virtual, so the default timings (1 s queries,
// 3 s expiry) are used as they are, the measured times are exact, and the
// limits are the worst cases of the package doc (plus the polling step).

const slack = 50 * time.Millisecond

type inst struct {
	id     string
	d      *Discovery
	node   *fakeNode
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, lan *fakeLAN, id string, prio int) *inst {
	t.Helper()
	node := lan.Source()
	d, err := New(Config{
		Self:   Self{ID: id, Name: "name-" + id, Priority: prio, Port: 9000},
		Source: node,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})).With("self", id),
	})
	if err != nil {
		t.Fatalf("New(%s): %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &inst{id: id, d: d, node: node, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- d.Run(ctx) }()
	t.Cleanup(func() { in.stop(t) })
	return in
}

// stop cancels the instance's Run (as a killed process: no goodbye) and
// checks that Run returns nil.
func (in *inst) stop(t *testing.T) {
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	if err := <-in.done; err != nil {
		t.Errorf("Run(%s) = %v, want nil on cancel", in.id, err)
	}
}

// agreed reports whether the instances agree (see agreement).
func agreed(insts []*inst) (host string, ok bool) {
	states := make(map[string]State, len(insts))
	for _, in := range insts {
		states[in.id] = in.d.Current()
	}
	return agreement(states)
}

// agreement reports whether every instance (states, by id) lists exactly
// the instances of states, sees exactly one claimant, and all agree on it as
// the host, which alone says IAmHost.
func agreement(states map[string]State) (host string, ok bool) {
	var ids []string
	for id := range states {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	want := strings.Join(ids, ",")
	first, hosts := true, 0
	for id, st := range states {
		if !st.HasHost || peerIDs(st) != want {
			return "", false
		}
		claimants := 0
		for _, p := range st.Peers {
			if p.Host {
				claimants++
			}
		}
		if claimants != 1 {
			return "", false
		}
		if first {
			host, first = st.Host.ID, false
		} else if st.Host.ID != host {
			return "", false
		}
		if st.IAmHost != (id == host) {
			return "", false
		}
		if st.IAmHost {
			hosts++
		}
	}
	return host, hosts == 1
}

func peerIDs(st State) string {
	var ids []string
	for _, p := range st.Peers {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

// waitAgreed polls (in virtual time) until the instances agree, and returns
// the host and how long it took.
func waitAgreed(t *testing.T, what string, limit time.Duration, insts ...*inst) (string, time.Duration) {
	t.Helper()
	begin := time.Now()
	for {
		if host, ok := agreed(insts); ok {
			return host, time.Since(begin)
		}
		if time.Since(begin) > limit {
			var b strings.Builder
			for _, in := range insts {
				st := in.d.Current()
				fmt.Fprintf(&b, "\n  %s: peers %s host %q (HasHost %v, IAmHost %v)", in.id, peerIDs(st), st.Host.ID, st.HasHost, st.IAmHost)
			}
			t.Fatalf("%s: no agreement within %v:%s", what, limit, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls (in virtual time) until cond holds.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	begin := time.Now()
	for !cond() {
		if time.Since(begin) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(begin)
}

func TestConvergeFromColdStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newFakeLAN(DefaultQueryInterval)
		b := start(t, lan, "b", 0)
		c := start(t, lan, "c", 0)
		a := start(t, lan, "a", 0)
		host, took := waitAgreed(t, "cold start", 1750*time.Millisecond+slack, a, b, c)
		if host != "a" {
			t.Errorf("host %q, want a (lowest id at equal priority)", host)
		}
		t.Logf("3 instances agreed on host %s after %v (virtual)", host, took)
	})
}

func TestConvergePriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newFakeLAN(DefaultQueryInterval)
		a := start(t, lan, "a", 0)
		z := start(t, lan, "z", 10)
		if host, _ := waitAgreed(t, "cold start", 3*time.Second, a, z); host != "z" {
			t.Errorf("host %q, want z (highest priority)", host)
		}
	})
}

// TestSticky starts a newcomer that would win a fresh election (higher
// priority, lower id) and checks that it never deposes the working host.
func TestSticky(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newFakeLAN(DefaultQueryInterval)
		b := start(t, lan, "b", 0)
		c := start(t, lan, "c", 0)
		if host, _ := waitAgreed(t, "start", 3*time.Second, b, c); host != "b" {
			t.Fatalf("host %q, want b", host)
		}
		a := start(t, lan, "a", 100)
		took := waitFor(t, "newcomer listed", 3*time.Second, func() bool { _, ok := agreed([]*inst{a, b, c}); return ok })
		t.Logf("newcomer listed and agreeing after %v", took)
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			host, ok := agreed([]*inst{a, b, c})
			if !ok || host != "b" {
				t.Fatalf("host %q (agreed %v), want b to stay host", host, ok)
			}
		}
	})
}

func TestFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newFakeLAN(DefaultQueryInterval)
		// Staggered starts: the instances query out of phase.
		a := start(t, lan, "a", 0)
		time.Sleep(370 * time.Millisecond)
		b := start(t, lan, "b", 0)
		time.Sleep(290 * time.Millisecond)
		c := start(t, lan, "c", 0)
		if host, _ := waitAgreed(t, "start", 3*time.Second, a, b, c); host != "a" {
			t.Fatalf("host %q, want a", host)
		}
		// Kill the host at several phases of the queries; the worst case is
		// E + Q/2 = 3.5 s.
		insts := []*inst{a, b, c}
		for i, id := range []string{"d", "e", "f", "g"} {
			time.Sleep(time.Duration(i) * 333 * time.Millisecond)
			host, _ := agreed(insts)
			var rest []*inst
			for _, in := range insts {
				if in.id == host {
					in.stop(t)
				} else {
					rest = append(rest, in)
				}
			}
			newHost, took := waitAgreed(t, "failover", 3500*time.Millisecond+slack, rest...)
			t.Logf("host %s killed; %s agreed as new host after %v (virtual)", host, newHost, took)
			insts = append(rest, start(t, lan, id, 0))
			if again, _ := waitAgreed(t, "newcomer", 3*time.Second, insts...); again != newHost {
				t.Fatalf("newcomer %s deposed %s: host %s", id, newHost, again)
			}
		}
	})
}

func TestForgetFailsOverFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newFakeLAN(DefaultQueryInterval)
		insts := []*inst{start(t, lan, "a", 0), start(t, lan, "b", 0), start(t, lan, "c", 0)}
		waitAgreed(t, "start", 3*time.Second, insts...)
		insts[0].stop(t)
		insts[1].d.Forget("a") // their WebSockets to the host closed
		insts[2].d.Forget("a")
		insts[1].d.Forget("b") // forgetting oneself does nothing
		newHost, took := waitAgreed(t, "failover after Forget", 250*time.Millisecond+slack, insts[1:]...)
		if newHost != "b" {
			t.Errorf("new host %q, want b", newHost)
		}
		t.Logf("failover with Forget: %v (virtual)", took)
	})
}

// TestForgetLiveHostComesBack: Forget of a host that still answers only
// lasts until its next answer, and the old host keeps its place.
func TestForgetLiveHostComesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newFakeLAN(DefaultQueryInterval)
		insts := []*inst{start(t, lan, "a", 0), start(t, lan, "b", 0)}
		waitAgreed(t, "start", 3*time.Second, insts...)
		insts[1].d.Forget("a")
		waitFor(t, "a forgotten", time.Second, func() bool { return peerIDs(insts[1].d.Current()) == "b" })
		if host, _ := waitAgreed(t, "a back", 3*time.Second, insts...); host != "a" {
			t.Fatalf("host %q, want a back as host", host)
		}
	})
}

func TestPartitionMerge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newFakeLAN(DefaultQueryInterval)
		a, b, c := start(t, lan, "a", 0), start(t, lan, "b", 0), start(t, lan, "c", 0)
		if host, _ := waitAgreed(t, "start", 3*time.Second, a, b, c); host != "a" {
			t.Fatalf("host %q, want a", host)
		}

		// Cut a non-host: it ends up electing itself.
		lan.Cut(c.node)
		took := waitFor(t, "isolated c elects itself", 3250*time.Millisecond+slack, func() bool { return c.d.Current().IAmHost })
		t.Logf("isolated c is host after %v", took)
		waitAgreed(t, "a and b without c", 5*time.Second, a, b)
		lan.Heal(c.node)
		host, took := waitAgreed(t, "merge after heal", 2250*time.Millisecond+slack, a, b, c)
		if host != "a" {
			t.Errorf("host after merge %q, want a (the older host)", host)
		}
		t.Logf("merge after healing a non-host: one host after %v (virtual)", took)

		// Cut the host: the others elect b; after healing, a (older) wins
		// again and b steps down.
		lan.Cut(a.node)
		if host, _ := waitAgreed(t, "b and c without a", 5*time.Second, b, c); host != "b" {
			t.Fatalf("host %q, want b", host)
		}
		lan.Heal(a.node)
		host, took = waitAgreed(t, "merge after healing the host", 2250*time.Millisecond+slack, a, b, c)
		if host != "a" {
			t.Errorf("host after merge %q, want a (the older host)", host)
		}
		t.Logf("merge after healing the old host: one host after %v (virtual)", took)
	})
}

// TestIgnoresForeignRecords puts a newer-version peer and junk on the LAN:
// neither is listed nor elected.
func TestIgnoresForeignRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newFakeLAN(DefaultQueryInterval)
		a := start(t, lan, "a", 0)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for _, txt := range [][]string{
			{"v=2", "id=0", "name=future", "prio=99", "port=1", "host=1", "since=1"},
			{"v=1", "id=0", "name=bad\u202e", "prio=99", "port=1", "host=1", "since=1"},
			{"garbage"},
		} {
			n := lan.Source()
			n.Publish(txt)
			go n.Run(ctx, func(Sighting) {})
		}
		b := start(t, lan, "b", 0)
		waitAgreed(t, "start", 3*time.Second, a, b)
		time.Sleep(5 * time.Second) // several more queries: still only a and b
		if host, ok := agreed([]*inst{a, b}); !ok || host != "a" {
			t.Fatalf("host %q (agreed %v), want a", host, ok)
		}
		cancel()
	})
}

// TestUpdatesLatestValue: a reader that does not read never blocks Run, and
// then gets the latest state.
func TestUpdatesLatestValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newFakeLAN(DefaultQueryInterval)
		a := start(t, lan, "a", 0)
		b := start(t, lan, "b", 0)
		c := start(t, lan, "c", 0)
		waitAgreed(t, "start", 3*time.Second, a, b, c) // many states, none read
		c.stop(t)
		waitAgreed(t, "c gone", 5*time.Second, a, b) // Run went on
		synctest.Wait()
		got := <-a.d.Updates()
		if !sameState(got, a.d.Current()) {
			t.Fatalf("Updates gave %+v, Current is %+v", got, a.d.Current())
		}
		select {
		case st := <-a.d.Updates():
			t.Fatalf("a second state %+v without a change", st)
		default:
		}
		a.stop(t)
		if _, ok := <-a.d.Updates(); ok {
			t.Fatal("Updates not closed after Run returned")
		}
	})
}

func TestRunOnceAndCleanCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newFakeLAN(DefaultQueryInterval)
		d, err := New(Config{Self: Self{ID: "a", Port: 1}, Source: lan.Source()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		synctest.Wait()
		if err := d.Run(ctx); err == nil {
			t.Error("second Run: nil error, want one")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	})
}

// failingSource fails at once, as mDNS does when no interface can be bound.
type failingSource struct{}

func (failingSource) Publish([]string) error { return nil }
func (failingSource) Probe()                 {}
func (failingSource) Run(context.Context, func(Sighting)) error {
	return fmt.Errorf("discovery: %w: bind failed", ErrNoInterface)
}

func TestRunReportsSourceError(t *testing.T) {
	d, err := New(Config{Self: Self{ID: "a", Port: 1}, Source: failingSource{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "bind failed") {
		t.Fatalf("Run = %v, want the source's error", err)
	}
}

func TestNewValidates(t *testing.T) {
	src := newFakeLAN(time.Second).Source()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"bad id", Config{Self: Self{ID: "a.b", Port: 1}, Source: src}, "only letters"},
		{"long id", Config{Self: Self{ID: strings.Repeat("a", 33), Port: 1}, Source: src}, "1-32"},
		{"bad name", Config{Self: Self{Name: "x\x1b", Port: 1}, Source: src}, "U+001B"},
		{"no port", Config{Self: Self{}, Source: src}, "port 0"},
		{"big priority", Config{Self: Self{Port: 1, Priority: 1 << 40}, Source: src}, "priority"},
		{"expiry too short", Config{Self: Self{Port: 1}, QueryInterval: time.Second, ExpireAfter: 1500 * time.Millisecond, Source: src}, "expiry"},
		{"interval too short", Config{Self: Self{Port: 1}, QueryInterval: time.Nanosecond, Source: src}, "query interval"},
		{"unknown interface", Config{Self: Self{Port: 1}, Interfaces: []string{"lanft-nosuch0"}}, `"lanft-nosuch0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New: %v, want error containing %q", err, tt.wantErr)
			}
		})
	}

	d, err := New(Config{Self: Self{Port: 1}, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if err := validID(d.ID()); err != nil || len(d.ID()) != 16 {
		t.Fatalf("generated id %q: %v", d.ID(), err)
	}
	if st := d.Current(); len(st.Peers) != 1 || !st.Peers[0].Self || st.HasHost {
		t.Fatalf("Current before Run = %+v, want only self and no host", st)
	}
}

func TestHostURL(t *testing.T) {
	tests := []struct {
		name string
		st   State
		want string
	}{
		{"no host", State{}, ""},
		{"no address", State{HasHost: true, Host: Peer{Port: 80}}, ""},
		{"ipv4", State{HasHost: true, Host: Peer{Port: 8443, Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.2"), netip.MustParseAddr("fe80::1%v2")}}}, "ws://10.77.0.2:8443/ws"},
		{"ipv6", State{HasHost: true, Host: Peer{Port: 80, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}}, "ws://[2001:db8::1]:80/ws"},
		{"ipv6 link-local", State{HasHost: true, Host: Peer{Port: 80, Addrs: []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}}}, "ws://[fe80::1%25eth0]:80/ws"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.st.HostURL(); got != tt.want {
				t.Fatalf("HostURL() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestViewMergesInterfaces(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	v := newView(record{ID: "self", Port: 1})
	txt := record{ID: "b", Name: "B", Port: 2}.txt()
	mustObserve := func(s Sighting, at time.Time, wantAdded bool) {
		t.Helper()
		if _, added, err := v.observe(s, at); err != nil || added != wantAdded {
			t.Fatalf("observe(%+v) = added %v, %v; want added %v", s, added, err, wantAdded)
		}
	}
	mustObserve(Sighting{Iface: "wlan0", Addrs: []netip.Addr{netip.MustParseAddr("fe80::2%wlan0"), netip.MustParseAddr("192.168.1.2")}, TXT: txt}, now, true)
	mustObserve(Sighting{Iface: "eth0", Addrs: []netip.Addr{netip.MustParseAddr("::ffff:10.0.0.2")}, TXT: txt}, now.Add(time.Second), false)
	mustObserve(Sighting{Iface: "eth0", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, TXT: record{ID: "self", Port: 9}.txt()}, now, false)
	if _, _, err := v.observe(Sighting{Iface: "eth0", TXT: []string{"v=1"}}, now); err == nil {
		t.Fatal("observe accepted a broken record")
	}

	ps := v.peers(now.Add(time.Second))
	if len(ps) != 2 || ps[0].ID != "self" || ps[1].ID != "b" {
		t.Fatalf("peers %+v, want self (empty name) then b", ps)
	}
	b := ps[1]
	wantAddrs := []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("192.168.1.2"), netip.MustParseAddr("fe80::2%wlan0")}
	if !slices.Equal(b.Addrs, wantAddrs) || b.Iface != "eth0" || !b.LastSeen.Equal(now.Add(time.Second)) {
		t.Fatalf("b = %+v, want addrs %v on eth0", b, wantAddrs)
	}
	if self := ps[0]; !self.Self || self.Port != 1 || !slices.Equal(self.Addrs, []netip.Addr{netip.MustParseAddr("10.0.0.1")}) {
		t.Fatalf("self = %+v: want our own port 1 and the looped-back address", self)
	}

	// wlan0 goes quiet: b stays, known on eth0 only.
	if gone := v.expire(now.Add(3500*time.Millisecond), 3*time.Second); len(gone) != 0 {
		t.Fatalf("expired %v too early", gone)
	}
	if b := v.peers(now)[1]; !slices.Equal(b.Addrs, []netip.Addr{netip.MustParseAddr("10.0.0.2")}) {
		t.Fatalf("after wlan0 expiry b.Addrs = %v", b.Addrs)
	}
	if gone := v.expire(now.Add(4500*time.Millisecond), 3*time.Second); !slices.Equal(gone, []string{"b"}) {
		t.Fatalf("expired %v, want [b]", gone)
	}
}

func TestSkipReason(t *testing.T) {
	const lanFlags = net.FlagUp | net.FlagRunning | net.FlagMulticast
	tests := []struct {
		name    string
		flags   net.Flags
		hasAddr bool
		want    string
	}{
		{"ethernet", lanFlags, true, ""},
		{"down", net.FlagMulticast, true, "down"},
		{"loopback", lanFlags | net.FlagLoopback, true, "loopback"},
		{"no multicast", net.FlagUp | net.FlagRunning, true, "not multicast-capable"},
		{"vpn", lanFlags | net.FlagPointToPoint, true, "point-to-point (VPN or tunnel)"},
		{"no carrier", net.FlagUp | net.FlagMulticast, true, "no carrier"},
		{"no address", lanFlags, false, "no IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := skipReason(tt.flags, tt.hasAddr); got != tt.want {
				t.Fatalf("skipReason(%v, %v) = %q, want %q", tt.flags, tt.hasAddr, got, tt.want)
			}
		})
	}
}

// TestDefaultInterfaces only reads the machine's interface list: it sends
// nothing.
func TestDefaultInterfaces(t *testing.T) {
	chosen, skipped, err := DefaultInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifi := range chosen {
		if r := skipReason(ifi.Flags, true); r != "" {
			t.Errorf("chose %s although %s", ifi.Name, r)
		}
	}
	t.Logf("chosen %d, skipped %q", len(chosen), skipped)
}
