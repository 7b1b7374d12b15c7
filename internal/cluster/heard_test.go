package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lanft/lanft/signal"
)

// A node that has read the shared state serves logins only once it has
// heard every other lease holder: before that, NATS may not carry events
// between them yet (its server's routes still forming after a start or a
// healed partition), and a relay to a user there would be lost.
func TestServesOnceEveryMemberHeard(t *testing.T) {
	e, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	runNode(t, e, &recorder{}) // a member that speaks; it makes the bucket

	// A member that holds a lease but is not heard yet.
	const quiet = "QuietNode0000000000000"
	p, err := e.Connect("quiet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(p)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "lanft_presence")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "n."+quiet, []byte("now")); err != nil {
		t.Fatal(err)
	}

	nc, err := e.Connect("node")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cl, err := New(Config{Conn: nc})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cl.Run(rctx, &recorder{}) }()
	t.Cleanup(func() { stop(); <-done })
	waitFor(t, "the node reads the shared state", 30*time.Second, cl.ready.Load)
	// The other real node's heartbeats come every 250ms: a second is four.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) { // watching a state that must not change
		if cl.Ready() {
			t.Fatal("the node serves before it heard a member that holds a lease")
		}
	}
	if _, err := cl.Claim(ctx, signal.Presence{Key: "bob", Name: "bob"}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("a login before every member is heard: %v, want ErrNotReady", err)
	}

	b, _ := json.Marshal(event{Kind: "hb", Node: quiet, Probe: true})
	if err := p.Publish(cl.subj, b); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "the node serves once the member is heard", 5*time.Second, cl.Ready)
	t.Logf("serving %v after the last member's heartbeat", took.Round(time.Millisecond))
	if _, err := cl.Claim(ctx, signal.Presence{Key: "bob", Name: "bob"}); err != nil {
		t.Fatalf("a login once every member is heard: %v", err)
	}
}

// The lease of a node declared dead whose first delete got no answer is
// deleted later, once it has stayed the same for two renewals; a lease that
// is renewed meanwhile (its node came back) is left alone.
func TestStaleLeaseDeletedRenewedKept(t *testing.T) {
	e, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	cl, nc := runNode(t, e, &recorder{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "lanft_presence")
	if err != nil {
		t.Fatal(err)
	}
	const stale, alive = "StaleNode0000000000000", "AliveNode0000000000000"
	for _, n := range []string{stale, alive} {
		if _, err := kv.Put(ctx, "n."+n, []byte("now")); err != nil {
			t.Fatal(err)
		}
	}
	renewing, stopRenewing := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for renewing.Err() == nil {
			_, _ = kv.Put(renewing, "n."+alive, []byte("now"))
			select {
			case <-renewing.Done():
			case <-time.After(cl.renew / 2):
			}
		}
	}()
	start := time.Now()
	cl.deleteStaleLease(ctx, alive, time.Now().Add(6*cl.renew))
	stopRenewing()
	<-renewed
	if rev, err := cl.leaseRevision(ctx, alive); err != nil || rev == 0 {
		t.Fatalf("a lease renewed meanwhile: revision %d, %v; want it kept", rev, err)
	}
	cl.deleteStaleLease(ctx, stale, time.Now().Add(6*cl.renew))
	if rev, err := cl.leaseRevision(ctx, stale); err != nil || rev != 0 {
		t.Fatalf("a stale lease: revision %d, %v; want it deleted", rev, err)
	}
	t.Logf("renewed lease kept for %v; stale lease deleted", time.Since(start).Round(time.Millisecond))
}
