package host

import (
	"context"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lanft/lanft/discovery"
	"github.com/lanft/lanft/discovery/discoverytest"
)

const memInterval = 20 * time.Millisecond

// memLAN is an in-memory LAN (discoverytest) on which every instance is
// heard from 127.0.0.1, where its signaling server listens.
type memLAN = discoverytest.LAN[discovery.Sighting]

func newMemLAN() *memLAN {
	return discoverytest.New(memInterval, func(_ int, txt []string) discovery.Sighting {
		return discovery.Sighting{Iface: "mem0", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, TXT: txt}
	})
}

// startLAN runs a LAN instance on mem until stop is called (or the test
// ends); stop waits for Run and fails the test if it failed.
func startLAN(t *testing.T, mem *memLAN, name, fallback string) (l *LAN, stop func()) {
	t.Helper()
	l, err := NewLAN(LANConfig{Name: name, Fallback: fallback, FallbackAfter: 200 * time.Millisecond,
		Discovery: discovery.Config{Source: mem.Source(), QueryInterval: memInterval, ExpireAfter: 10 * memInterval}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Run: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	return l, stop
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the stale channel is still open after 10s", what)
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestLANHostStale: the channel Host returns goes stale when the host to
// use changes: the fallback's when another instance shows up, the elected
// host's when it goes, everyone's when Run returns.
func TestLANHostStale(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mem := newMemLAN()
	const fallback = "ws://fallback.invalid/ws"
	a, stopA := startLAN(t, mem, "a", fallback)
	url, stale, err := a.Host(ctx)
	if err != nil || url != fallback {
		t.Fatalf("alone: Host gives %q, %v; want the fallback %s", url, err, fallback)
	}
	if isClosed(stale) {
		t.Fatal("the fallback is stale while no other instance is on the LAN")
	}

	b, stopB := startLAN(t, mem, "b", "")
	waitClosed(t, stale, "fallback, another instance on the LAN")

	// The elected host, as the instance that is not it sees it; when the
	// host goes, its channel closes.
	viewer, hostStop, staleV := a, stopB, (<-chan struct{})(nil)
	for _, v := range []struct {
		l, other *LAN
		stop     func()
	}{{a, b, stopB}, {b, a, stopA}} {
		url, st, err := v.l.Host(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if url == "ws://127.0.0.1:"+strconv.Itoa(v.other.Port())+"/ws" {
			viewer, hostStop, staleV = v.l, v.stop, st
			break
		}
	}
	if staleV == nil {
		t.Fatal("neither instance names the other as the elected host")
	}
	if isClosed(staleV) {
		t.Fatal("the elected host's channel is closed while it is elected")
	}
	hostStop()
	waitClosed(t, staleV, "the elected host stopped")

	// The viewer elects itself; its channel closes when it stops.
	_, staleSelf, err := viewer.Host(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if viewer == a {
		stopA()
	} else {
		stopB()
	}
	waitClosed(t, staleSelf, "Run returned")
}

// TestLANHostNoGoroutinePerCall: Host is called for every page the
// bridge serves and every login; however often, it leaves no goroutine
// behind to watch for the host's change.
func TestLANHostNoGoroutinePerCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, _ := startLAN(t, newMemLAN(), "a", "")
	if _, _, err := l.Host(ctx); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	const calls = 500
	for range calls {
		if _, _, err := l.Host(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A margin for goroutines the server and discovery start and end on
	// their own; a goroutine per call would add 500.
	if after := runtime.NumGoroutine(); after-before > 50 {
		t.Errorf("%d goroutines before %d Host calls, %d after", before, calls, after)
	}
}
