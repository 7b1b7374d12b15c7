package signal

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// stallCluster is a cluster that cannot be reached: Claim (but alice's)
// and Lookup wait for their ctx, as over a dead broker. It reports each
// call that waits, and the error each call's ctx held when it returned.
type stallCluster struct {
	waiting  chan string // "claim NAME" or "lookup KEY": a call waits for its ctx
	ended    chan error  // ctx.Err() as a waiting call returned
	released chan error  // ctx.Err() when Release was called
}

func newStallCluster() *stallCluster {
	return &stallCluster{waiting: make(chan string, 8), ended: make(chan error, 8), released: make(chan error, 8)}
}

func (s *stallCluster) Claim(ctx context.Context, p Presence) (uint64, error) {
	if p.Name == "alice" {
		return 1, nil
	}
	s.waiting <- "claim " + p.Name
	<-ctx.Done()
	s.ended <- ctx.Err()
	return 0, ctx.Err()
}

func (s *stallCluster) Release(ctx context.Context, p Presence) { s.released <- ctx.Err() }

func (s *stallCluster) Relay(room, to string, msg []byte) error { return nil }

func (s *stallCluster) Lookup(ctx context.Context, room, key string) (Presence, bool) {
	s.waiting <- "lookup " + key
	<-ctx.Done()
	s.ended <- ctx.Err()
	return Presence{}, false
}

// stallAt logs alice in, then has bob's login and alice's offer to an
// unknown user wait on the cluster.
func stallAt(t *testing.T, st *stallCluster, url string) {
	t.Helper()
	alice := dialRaw(t, url)
	alice.login("alice")
	bob := dialRaw(t, url)
	bob.send(`{"type":"login","name":"bob"}`)
	alice.send(`{"type":"offer","othername":"zed","offer":{}}`)
	got := map[string]bool{}
	for range 2 {
		select {
		case w := <-st.waiting:
			got[w] = true
		case <-time.After(waitFor):
			t.Fatalf("the cluster calls did not start (%v)", got)
		}
	}
	if !got["claim bob"] || !got["lookup zed"] {
		t.Fatalf("waiting cluster calls %v, want bob's claim and a lookup of zed", got)
	}
}

// stallBound is how long a shutdown may take with cluster calls waiting:
// far less than their own bound (Config.WriteTimeout, 2 minutes here).
const stallBound = 30 * time.Second

// expectCancelled checks that both waiting calls ended with a cancel and
// that alice's name was freed with a ctx still live.
func expectCancelled(t *testing.T, st *stallCluster, wantRelease bool) {
	t.Helper()
	for range 2 {
		select {
		case err := <-st.ended:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("a waiting cluster call ended with %v, want context.Canceled", err)
			}
		case <-time.After(stallBound):
			t.Fatal("a waiting cluster call was not cancelled")
		}
	}
	if !wantRelease {
		return
	}
	select {
	case err := <-st.released:
		if err != nil {
			t.Errorf("alice's name was released with a ctx already ended (%v): a drain must free names", err)
		}
	case <-time.After(stallBound):
		t.Fatal("alice's name was not released")
	}
}

// ServeWith's ctx ends the cluster calls its clients wait on (a login, a
// relay's look-up) at once, not after their own timeout, and the names of
// the drained clients are still freed.
func TestServeWithCancelsClusterCalls(t *testing.T) {
	checkNoLeaks(t)
	st := newStallCluster()
	ss := serveLoopback(t, Config{Cluster: st, WriteTimeout: 2 * time.Minute})
	stallAt(t, st, ss.url)
	start := time.Now()
	if !ss.stop(t, stallBound) {
		t.Fatal("Serve waits on the cluster")
	}
	expectCancelled(t, st, true)
	t.Logf("Serve returned %v after its ctx ended, with two cluster calls waiting", time.Since(start).Round(time.Millisecond))
}

// Close and Drain end the cluster calls their clients wait on.
func TestCloseAndDrainCancelClusterCalls(t *testing.T) {
	for _, stop := range []string{"Close", "Drain"} {
		t.Run(stop, func(t *testing.T) {
			checkNoLeaks(t)
			st := newStallCluster()
			srv, err := NewServer(Config{Cluster: st, WriteTimeout: 2 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srv.Handler())
			t.Cleanup(hs.Close)
			t.Cleanup(func() { srv.Close() })
			stallAt(t, st, "ws://"+strings.TrimPrefix(hs.URL, "http://")+Path)
			if stop == "Close" {
				closed := make(chan struct{})
				go func() { srv.Close(); close(closed) }()
				select {
				case <-closed:
				case <-time.After(stallBound):
					t.Fatalf("Close still waiting after %v: it waits on the cluster", stallBound)
				}
			} else {
				srv.Drain()
			}
			expectCancelled(t, st, stop == "Drain")
		})
	}
}
