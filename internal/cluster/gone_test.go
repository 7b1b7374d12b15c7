package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lanft/lanft/signal"
)

// startEmbedded starts an embedded NATS server with its store in a
// temporary directory, closed when the test ends.
func startEmbedded(t *testing.T) *Embedded {
	t.Helper()
	e, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// presenceKV opens, on nc, the bucket the nodes keep their leases and
// users in; a node that ran has made it.
func presenceKV(ctx context.Context, t *testing.T, nc *nats.Conn) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "lanft_presence")
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// runNode runs a node with default timings on its own connection to e
// until the test ends, and waits until it serves.
func runNode(t *testing.T, e *Embedded, rec *recorder) (*Cluster, *nats.Conn) {
	t.Helper()
	cl, nc := startNode(t, e, rec)
	waitFor(t, "the node serves", 30*time.Second, cl.Ready)
	return cl, nc
}

// startNode runs a node with default timings on its own connection to e
// until the test ends, without waiting for it.
func startNode(t *testing.T, e *Embedded, rec *recorder) (*Cluster, *nats.Conn) {
	t.Helper()
	return startNodeWith(t, e, rec, Config{})
}

// startNodeWith is startNode with cfg (its Conn is set here).
func startNodeWith(t *testing.T, e *Embedded, rec *recorder, cfg Config) (*Cluster, *nats.Conn) {
	t.Helper()
	nc, err := e.Connect("node")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cfg.Conn = nc
	cl, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx, rec) }()
	t.Cleanup(func() { stop(); <-done })
	return cl, nc
}

// waitFor polls cond until it holds, within limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond) // polling the node's state
	}
	return time.Since(start)
}

func (r *recorder) has(s string) bool { return slices.Contains(r.seen(), s) }

// A node whose connection to NATS closes (its process was killed) is dead
// for the others about GoneAfter (1s) after its last heartbeat, far within
// the lease's DeadAfter (14s): NATS answers "no responders" for it.
func TestKilledNodeOfflineWithinSeconds(t *testing.T) {
	e := startEmbedded(t)
	watcher := &recorder{}
	w, _ := runNode(t, e, watcher)
	doomed, nc := runNode(t, e, &recorder{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := doomed.Claim(ctx, signal.Presence{Key: "bob", Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob online for the watcher", 5*time.Second, func() bool { return watcher.has("online bob") })
	waitFor(t, "the watcher hears the node's heartbeats", 5*time.Second, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.probes[doomed.Node()]
	})
	nc.Close()
	took := waitFor(t, "bob offline for the watcher", 5*time.Second, func() bool { return watcher.has("offline bob") })
	t.Logf("connection closed: its user offline for the other node after %v", took.Round(time.Millisecond))
}

// A node that falls silent while NATS still holds its interest (a stopped
// process: its connection and its server's routes stay open) is probed but
// not declared dead before DeadAfter; once its interest is gone, it is dead
// within a few heartbeats.
func TestSilentNodeDeadOnlyWhenNATSSaysGone(t *testing.T) {
	e := startEmbedded(t)
	watcher := &recorder{}
	cl, _ := runNode(t, e, watcher)

	// The silent node, played by a connection of the test's: a lease, a
	// heartbeat that says it answers probes, a user, and a subscription to
	// its subject that never answers (a process that is stopped).
	const paused = "PausedNode000000000000"
	p, err := e.Connect("paused")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv := presenceKV(ctx, t, p)
	if _, err := kv.Put(ctx, "n."+paused, []byte("now")); err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int64
	sub, err := p.Subscribe(cl.nodeSubject(paused), func(*nats.Msg) { asked.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []event{{Kind: "hb", Node: paused, Probe: true}, {Kind: "on", Node: paused, Key: "pat", Name: "pat", Rev: 1 << 40}} {
		b, _ := json.Marshal(ev)
		if err := p.Publish(cl.subj, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pat online for the watcher", 5*time.Second, func() bool { return watcher.has("online pat") })
	silent := time.Now()

	// Silent past GoneAfter, probed again and again: never dead.
	waitFor(t, "the silent node probed 6 times", 10*time.Second, func() bool { return asked.Load() >= 6 })
	if watcher.has("offline pat") {
		t.Fatalf("a silent node that NATS still holds was declared dead after %v (DeadAfter is 14s)", time.Since(silent).Round(time.Millisecond))
	}
	t.Logf("silent for %v, probed %d times, still a member", time.Since(silent).Round(time.Millisecond), asked.Load())

	// Its interest gone (its connection closed): dead at once.
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "pat offline once NATS says its node is gone", 3*time.Second, func() bool { return watcher.has("offline pat") })
	t.Logf("no responders: offline after %v", took.Round(time.Millisecond))
}
