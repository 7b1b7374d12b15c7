package discovery

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestUnicastFallbackElects: two instances whose mDNS hears nothing (each
// alone on a fake LAN of its own) find each other through --peer over
// loopback, agree on one host, and the survivor drops the other once it
// stops answering. Real sockets, real time.
func TestUnicastFallbackElects(t *testing.T) {
	const q = 100 * time.Millisecond
	type inst struct {
		d   *Discovery
		srv *httptest.Server
	}
	var insts [2]inst
	var ds [2]atomic.Pointer[Discovery]
	for i := range insts {
		insts[i].srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d := ds[i].Load(); d != nil && r.URL.Path == HelloPath {
				json.NewEncoder(w).Encode(d.Hello())
				return
			}
			http.NotFound(w, r)
		}))
		defer insts[i].srv.Close()
	}
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: deferred calls run last first
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancels := [2]context.CancelFunc{}
	for i := range insts {
		other := netip.MustParseAddrPort(insts[1-i].srv.Listener.Addr().String())
		d, err := New(Config{
			Self:          Self{ID: []string{"a", "b"}[i], Name: []string{"a", "b"}[i], Priority: i, Port: 1000 + i},
			QueryInterval: q, ExpireAfter: 3 * q,
			Source:  newFakeLAN(q).Source(),
			Unicast: &UnicastConfig{Peers: []netip.AddrPort{other}, NoSweep: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		insts[i].d = d
		ds[i].Store(d)
		ictx, icancel := context.WithCancel(ctx)
		cancels[i] = icancel
		wg.Go(func() {
			if err := d.Run(ictx); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	agreed := func() bool {
		a, b := insts[0].d.Current(), insts[1].d.Current()
		return len(a.Peers) == 2 && len(b.Peers) == 2 && a.HasHost && b.HasHost && a.Host.ID == b.Host.ID
	}
	took := waitFor(t, "agreement over the unicast fallback", 5*time.Second, agreed)
	a := insts[0].d.Current()
	t.Logf("agreed on host %q after %v (query interval %v)", a.Host.ID, took.Round(time.Millisecond), q)
	if a.Host.ID != "b" {
		t.Errorf("host %q, want b (the higher priority)", a.Host.ID)
	}
	var p Peer
	for _, x := range a.Peers {
		if !x.Self {
			p = x
		}
	}
	if p.Iface != ProbeSuffix || p.Port != 1001 || len(p.Addrs) != 1 || !p.Addrs[0].IsLoopback() {
		t.Errorf("b as a sees it: %+v; want heard by the probe at 127.0.0.1, signaling port 1001", p)
	}

	cancels[1]()
	insts[1].srv.Close()
	took = waitFor(t, "a drops b", 3*time.Second, func() bool {
		st := insts[0].d.Current()
		return len(st.Peers) == 1 && st.IAmHost
	})
	t.Logf("a dropped b and hosts, %v after b stopped", took.Round(time.Millisecond))
}
