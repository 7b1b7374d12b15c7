package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/lanft/lanft/signal"
)

// A node that has read the shared state serves logins only once it has
// heard every other lease holder: before that, NATS may not carry events
// between them yet (its server's routes still forming after a start or a
// healed partition), and a relay to a user there would be lost.
// A lease holder whose lease the others delete (declared dead) holds it
// off no longer.
func TestServesOnceEveryMemberHeard(t *testing.T) {
	e := startEmbedded(t)
	runNode(t, e, &recorder{}) // a member that speaks; it makes the bucket

	// Two members that hold a lease but are not heard yet: one will speak,
	// the other's lease will be deleted (the others declared it dead).
	const quiet, gone = "QuietNode0000000000000", "GoneNode00000000000000"
	p, err := e.Connect("quiet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv := presenceKV(ctx, t, p)
	for _, n := range []string{quiet, gone} {
		if _, err := kv.Put(ctx, "n."+n, []byte("now")); err != nil {
			t.Fatal(err)
		}
	}

	cl, _ := startNode(t, e, &recorder{})
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
	waitFor(t, "the member heard", 5*time.Second, func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return !cl.unheard[quiet]
	})
	if cl.Ready() {
		t.Fatal("the node serves while a member that holds a lease is not heard")
	}
	if err := kv.Delete(ctx, "n."+gone); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "the node serves once the last unheard member's lease is gone", 5*time.Second, cl.Ready)
	t.Logf("serving %v after the last unheard member's lease was deleted", took.Round(time.Millisecond))
	if _, err := cl.Claim(ctx, signal.Presence{Key: "bob", Name: "bob"}); err != nil {
		t.Fatalf("a login once every member is heard: %v", err)
	}
}

// The lease of a node declared dead whose first delete got no answer is
// deleted later, once it has stayed the same for two renewals; a lease that
// is renewed meanwhile (its node came back) is left alone.
func TestStaleLeaseDeletedRenewedKept(t *testing.T) {
	e := startEmbedded(t)
	cl, nc := runNode(t, e, &recorder{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv := presenceKV(ctx, t, nc)
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

// A user of a node whose events are held (its lease look-up failed a
// moment ago, as during the JetStream election after a partition heals) is
// still found for a relay: Lookup asks the lease itself.
func TestLookupWhileLeaseLookupsPaused(t *testing.T) {
	e := startEmbedded(t)
	cl, nc := runNode(t, e, &recorder{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv := presenceKV(ctx, t, nc)
	const back = "BackNode00000000000000"
	rec, _ := json.Marshal(record{Name: "erin", Node: back})
	for k, v := range map[string][]byte{"n." + back: []byte("now"), kvKey("", "erin"): rec} {
		if _, err := kv.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	cl.mu.Lock()
	cl.paused[back] = time.Now().Add(time.Minute)
	cl.mu.Unlock()
	if p, ok := cl.Lookup(ctx, "", "erin"); !ok || p.Node != back {
		t.Fatalf("Lookup of a user of a member whose look-ups are paused: %v %v, want erin of %s", p, ok, back)
	}
	if err := kv.Delete(ctx, "n."+back); err != nil {
		t.Fatal(err)
	}
	if p, ok := cl.Lookup(ctx, "", "erin"); ok {
		t.Fatalf("Lookup of a user of a node without a lease: %v, want none", p)
	}
}
