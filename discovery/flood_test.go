package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

// spoof is an answer with a made-up ID, as anyone on the LAN can send.
func spoof(i int) Sighting {
	rec := record{ID: fmt.Sprintf("spoof%d", i), Name: "fake", Port: 9}
	return Sighting{Iface: "eth0", Addrs: []netip.Addr{netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)})}, TXT: rec.txt()}
}

// A flood of answers with new IDs keeps the view at maxPeers others: the
// oldest go first, the elected host stays, and a real instance that answers
// again is back in.
func TestViewBoundedUnderFlood(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	v := newView(record{ID: "self", Port: 1})
	hostTXT := record{ID: "host", Name: "H", Port: 2, Host: true, HostSince: 1}.txt()
	peerTXT := record{ID: "peer", Name: "P", Port: 3}.txt()
	for _, txt := range [][]string{hostTXT, peerTXT} {
		if _, _, err := v.observe(Sighting{Iface: "eth0", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}, TXT: txt}, now); err != nil {
			t.Fatal(err)
		}
	}
	v.host = "host" // as step sets it after the election
	for i := range 10_000 {
		at := now.Add(time.Duration(i+1) * time.Microsecond)
		if _, _, err := v.observe(spoof(i), at); err != nil {
			t.Fatalf("spoof %d: %v", i, err)
		}
		if len(v.others) > maxPeers {
			t.Fatalf("after %d spoofed answers the view holds %d others, want at most %d", i+1, len(v.others), maxPeers)
		}
	}
	if _, ok := v.others["host"]; !ok {
		t.Error("the elected host was pushed out by the flood")
	}
	if _, ok := v.others["peer"]; ok {
		t.Error("the instance heard longest ago (peer) was kept; the newest spoofs were dropped instead")
	}
	if _, ok := v.others["spoof9999"]; !ok {
		t.Error("the newest answer found no room")
	}
	// peer answers again: it is back, and the view is still bounded.
	if _, added, err := v.observe(Sighting{Iface: "eth0", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.3")}, TXT: peerTXT}, now.Add(time.Second)); err != nil || !added {
		t.Errorf("peer answering again: added %v, %v; want it back", added, err)
	}
	if len(v.others) != maxPeers {
		t.Errorf("view holds %d others, want %d", len(v.others), maxPeers)
	}
	if ps := v.peers(now); len(ps) != maxPeers+1 {
		t.Errorf("peers() lists %d, want %d others and self", len(ps), maxPeers)
	}
}

// floodSource is a fakeNode that also hears count spoofed answers with new
// IDs after every real one.
type floodSource struct {
	*fakeNode
	count int
}

func (f *floodSource) Run(ctx context.Context, heard func(Sighting)) error {
	n := 0
	return f.fakeNode.Run(ctx, func(s Sighting) {
		heard(s)
		for range f.count {
			n++
			heard(spoof(n))
		}
	})
}

// A Discovery under a flood of spoofed answers (hundreds of new IDs a
// second) keeps its state bounded and still names the host. (Which entry
// makes room is TestViewBoundedUnderFlood's: here the host answers in the
// same virtual instant as the flood.)
func TestDiscoveryBoundedUnderFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newFakeLAN(DefaultQueryInterval)
		a := start(t, lan, "a", 0)
		b := start(t, lan, "b", 0)
		if host, _ := waitAgreed(t, "before the flood", 3*time.Second, a, b); host != "a" && host != "b" {
			t.Fatalf("host %q", host)
		}
		host := a.d.Current().Host.ID
		d, err := New(Config{Self: Self{ID: "c", Name: "c", Port: 9000}, Source: &floodSource{lan.Source(), 300},
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		waitFor(t, "c hears the host", 3*time.Second, func() bool { return d.Current().Host.ID == host })
		most := 0
		for range 500 { // 5 s of flood, polled every 10 ms
			st := d.Current()
			most = max(most, len(st.Peers))
			if !st.HasHost || st.Host.ID != host {
				t.Fatalf("under the flood c's host is %q (HasHost %v), want %q", st.Host.ID, st.HasHost, host)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if most > maxPeers+1 {
			t.Errorf("c's state listed %d instances, want at most %d and itself", most, maxPeers)
		}
		if most < maxPeers {
			t.Errorf("c's state listed at most %d instances: the flood did not fill the view, the test tests nothing", most)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
