package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanft/lanft/signal"
)

// A node whose own NATS server does not hold a current copy of the shared
// state yet (Config.Current: a server restarted with an empty store,
// catching up) does not serve: /healthz stays 503 and logins are refused,
// so that a rolling restart does not go on to the next node while only
// one copy is current. Once the copy is, the node serves, and Current is
// not asked again.
func TestNodeServesOnlyOnceItsCopyIsCurrent(t *testing.T) {
	e := startEmbedded(t)
	if !e.Current() {
		t.Fatal("a lone embedded server that started says its copy is not current")
	}
	runNode(t, e, &recorder{}) // a member the new node must hear first
	var current atomic.Bool
	var asked atomic.Int64
	cl, _ := startNodeWith(t, e, &recorder{}, Config{Current: func() bool {
		asked.Add(1)
		return current.Load()
	}})
	// Once its view is read and the other member heard, only its copy
	// holds it back.
	waitFor(t, "the node's view is current and every member heard", 30*time.Second,
		func() bool { return cl.ready.Load() && cl.serving.Load() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cl.Ready() {
		t.Fatal("the node serves while its NATS server's copy is not current")
	}
	if _, err := cl.Claim(ctx, signal.Presence{Key: "bob", Name: "bob"}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("a login while the copy is not current: %v, want ErrNotReady", err)
	}
	current.Store(true)
	if !cl.Ready() {
		t.Fatal("the node does not serve once its copy is current")
	}
	if _, err := cl.Claim(ctx, signal.Presence{Key: "bob", Name: "bob"}); err != nil {
		t.Fatalf("a login once the copy is current: %v", err)
	}
	n := asked.Load()
	current.Store(false) // a copy that lags later does not stop a serving node
	if !cl.Ready() || asked.Load() != n {
		t.Errorf("serving node: Ready %v, Current asked %d more times; want serving, not asked", cl.Ready(), asked.Load()-n)
	}
}
