package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/lanft/lanft/signal"
)

// A name whose holder holds no lease (a node the survivors declared dead,
// whose names they delete only after telling everyone its users went
// offline) can be claimed at once; a name held by a node with a lease, or
// by this node, stays taken.
func TestClaimTakesOverLeftoversOfNodesWithoutLease(t *testing.T) {
	e := startEmbedded(t)
	a, nc := runNode(t, e, &recorder{})
	b, _ := runNode(t, e, &recorder{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv := presenceKV(ctx, t, nc)
	put := func(key, node, name string) uint64 {
		t.Helper()
		v, _ := json.Marshal(record{Name: name, Node: node})
		rev, err := kv.Put(ctx, kvKey("", key), v)
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	taken := func(who *Cluster, key, name, holder string) {
		t.Helper()
		_, err := who.Claim(ctx, signal.Presence{Key: key, Name: name})
		var te *signal.TakenError
		if !errors.As(err, &te) || te.Holder != holder {
			t.Errorf("claim of %q: %v, want taken by %q", name, err, holder)
		}
	}

	// A dead node's leftover (no lease in the bucket under its id).
	const dead = "DeadNodeWithoutLease00"
	left := put("bob", dead, "Bob")
	rev, err := b.Claim(ctx, signal.Presence{Key: "bob", Name: "bob"})
	if err != nil {
		t.Fatalf("claim of a dead node's leftover: %v", err)
	}
	if rev <= left {
		t.Errorf("claimed at revision %d, not after the leftover's %d", rev, left)
	}
	ent, err := kv.Get(ctx, kvKey("", "bob"))
	if err != nil {
		t.Fatal(err)
	}
	var got record
	if err := json.Unmarshal(ent.Value(), &got); err != nil || got.Node != b.Node() || got.Name != "bob" {
		t.Errorf("bucket holds %s after the take-over, want bob of node %s", ent.Value(), b.Node())
	}
	// Now held by b, a live node: taken for a, and for b itself.
	taken(a, "bob", "BOB", "bob")
	taken(b, "bob", "bob", "bob")

	// A live node's name stays taken, even when the claimant has not heard
	// of that node (its lease is in the bucket).
	put("carol", a.Node(), "carol")
	b.mu.Lock()
	delete(b.members, a.Node())
	b.mu.Unlock()
	taken(b, "carol", "carol", "carol")

}
