package cluster

import (
	"context"
	"slices"
	"testing"
	"time"
)

// While a node's lease cannot be read (paused after a failed look-up, as
// during a JetStream leader election after a partition heals), its events
// are held in order, not lost: once it is known as a member they are
// applied in the order they came; a node found to hold no lease has its
// held events dropped and counted.
func TestEventsHeldWhileTheLeaseCannotBeRead(t *testing.T) {
	e := startEmbedded(t)
	nc, err := e.Connect("node")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cl, err := New(Config{Conn: nc, Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cl.ready.Store(true) // as a node serving, whose view is current
	const back = "NodeBackFromPartition0"
	rec := &recorder{}
	ctx := context.Background()
	cl.paused[back] = time.Now().Add(time.Hour) // its look-up failed a moment ago
	for _, m := range []string{"one", "two", "three"} {
		cl.deliver(ctx, event{Kind: "msg", Node: back, To: "dave", Msg: []byte(m)}, rec)
	}
	if got := rec.seen(); len(got) != 0 {
		t.Fatalf("applied %q while the lease could not be read, want them held", got)
	}
	cl.retryHeld(ctx, rec)
	if len(rec.seen()) != 0 || len(cl.held[back]) != 3 {
		t.Fatalf("still paused: got %q applied and %d held, want 0 and 3", rec.seen(), len(cl.held[back]))
	}
	cl.members[back] = true // its lease can be read now, and is there
	cl.retryHeld(ctx, rec)
	want := []string{"deliver to dave: one", "deliver to dave: two", "deliver to dave: three"}
	if got := rec.seen(); !slices.Equal(got, want) {
		t.Fatalf("after the lease was found: got %q, want %q", got, want)
	}
	if len(cl.held) != 0 {
		t.Fatalf("%d nodes still held", len(cl.held))
	}
	// Bounded: past maxHeldEvents a node's events are counted, not kept.
	cl.paused["NodeStillUnreadable000"] = time.Now().Add(time.Hour)
	for range maxHeldEvents + 10 {
		cl.deliver(ctx, event{Kind: "msg", Node: "NodeStillUnreadable000", To: "dave"}, rec)
	}
	if n := len(cl.held["NodeStillUnreadable000"]); n != maxHeldEvents {
		t.Fatalf("held %d events, want at most %d", n, maxHeldEvents)
	}
	if cl.Stats().Ignored != 10 {
		t.Fatalf("ignored %d, want the 10 past the bound", cl.Stats().Ignored)
	}
}
