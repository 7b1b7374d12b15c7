package cluster

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/signal"
)

// Three nodes, each on its own nats-server of one cluster on loopback, the
// shared state in three copies. The bucket's stream leader steps down (a
// JetStream leader election, as when a server dies or a partition heals):
// the leases go on, and nobody is shown offline.
func TestNoOfflineDuringLeaderElection(t *testing.T) {
	var ports [3]int
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var servers [3]*Embedded
	for i := range servers {
		var routes []string
		for j := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[j]))
			}
		}
		e, err := StartEmbedded(EmbeddedConfig{Name: fmt.Sprintf("s%d", i), ClusterAddr: fmt.Sprintf("127.0.0.1:%d", ports[i]),
			Routes: routes, StoreDir: t.TempDir(), Insecure: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		servers[i] = e
	}
	var recs [3]*recorder
	var nodes [3]*Cluster
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for i, e := range servers {
		nc, err := e.Connect("node")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		cl, err := New(Config{Conn: nc, Replicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		recs[i], nodes[i] = &recorder{}, cl
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- cl.Run(runCtx, recs[i]) }()
		t.Cleanup(func() { stop(); <-done })
	}
	for i, cl := range nodes {
		waitFor(t, fmt.Sprintf("node %d serves", i), 60*time.Second, cl.Ready)
	}
	for i, cl := range nodes {
		if _, err := cl.Claim(ctx, signal.Presence{Key: fmt.Sprintf("u%d", i), Name: fmt.Sprintf("u%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range recs {
		for j := range nodes {
			if j != i {
				waitFor(t, fmt.Sprintf("u%d online at node %d", j, i), 10*time.Second, func() bool { return r.has(fmt.Sprintf("online u%d", j)) })
			}
		}
	}

	elected := time.Now()
	for range 2 { // two elections in a row
		stepDown(ctx, t, nodes[0])
		waitFor(t, "a lease renewed after the election", 30*time.Second, func() bool {
			return time.Unix(0, nodes[0].renewedAt.Load()).After(time.Now().Add(-100 * time.Millisecond))
		})
	}
	// Watch past GoneAfter and two probes after the elections.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for i, r := range recs {
			for _, s := range r.seen() {
				if strings.HasPrefix(s, "offline") {
					t.Fatalf("node %d showed %q during a JetStream leader election", i, s)
				}
			}
		}
		time.Sleep(50 * time.Millisecond) // polling the handlers
	}
	t.Logf("two stream leader elections, %v watched: nobody offline", time.Since(elected).Round(time.Millisecond))
}

// stepDown asks the bucket's stream leader to step down, again until it
// does (a loaded machine: the stream may still be electing from before).
func stepDown(ctx context.Context, t *testing.T, cl *Cluster) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msg, err := cl.cfg.Conn.RequestWithContext(rctx, "$JS.API.STREAM.LEADER.STEPDOWN.KV_"+cl.bucket, nil)
		cancel()
		if err == nil && strings.Contains(string(msg.Data), `"success":true`) {
			return
		}
		last = fmt.Sprint(err)
		if err == nil {
			last = string(msg.Data)
		}
		time.Sleep(200 * time.Millisecond) // the stream elects: ask again
	}
	t.Fatalf("stream leader step-down: %s", last)
}
