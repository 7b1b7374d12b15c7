package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanft/lanft/signal"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// An embedded cluster without a route secret is refused, unless Insecure.
func TestEmbeddedNeedsRouteSecret(t *testing.T) {
	cfg := EmbeddedConfig{Name: "a", StoreDir: t.TempDir(), ClusterAddr: "127.0.0.1:0", Routes: []string{"nats://127.0.0.1:1"}}
	if e, err := StartEmbedded(cfg); !errors.Is(err, ErrNoRouteSecret) {
		if e != nil {
			e.Close()
		}
		t.Fatalf("StartEmbedded without a secret: %v, want ErrNoRouteSecret", err)
	}
	cfg.Insecure = true
	e, err := StartEmbedded(cfg)
	if err != nil {
		t.Fatalf("StartEmbedded with Insecure: %v", err)
	}
	e.Close()
}

// The embedded server's client port is on loopback and refuses a CONNECT
// without this process's password; this process gets in, in process.
func TestEmbeddedClientsNeedCredentials(t *testing.T) {
	e := startEmbedded(t)
	addr := e.ClientAddr().(*net.TCPAddr)
	if !addr.IP.IsLoopback() {
		t.Errorf("the client port is on %v, not loopback", addr)
	}
	tcp := "nats://" + addr.String()
	for _, tt := range []struct {
		name string
		opts []nats.Option
	}{
		{"no credentials", nil},
		{"a wrong password", []nats.Option{nats.UserInfo(clientUser, "guess")}},
		{"a token", []nats.Option{nats.Token("guess")}},
	} {
		nc, err := nats.Connect(tcp, append(tt.opts, nats.NoReconnect())...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", tt.name)
		} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
			t.Errorf("%s: %v, want an authorization violation", tt.name, err)
		}
	}
	nc, err := e.Connect("node")
	if err != nil {
		t.Fatalf("this process's connection: %v", err)
	}
	nc.Close()
}

// recorder is a signal.ClusterHandler that keeps what it is told.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) add(s string)              { r.mu.Lock(); r.got = append(r.got, s); r.mu.Unlock() }
func (r *recorder) Online(p signal.Presence)  { r.add("online " + p.Name) }
func (r *recorder) Offline(p signal.Presence) { r.add("offline " + p.Name) }
func (r *recorder) Deliver(room, to string, msg []byte) {
	r.add("deliver to " + to + ": " + string(msg))
}
func (r *recorder) Reset() {}
func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// An insider with a connection to the NATS (it may publish and write the
// bucket) forges a user entry, a login and an offer in the name of a node
// that holds no lease: the node shows and delivers nothing. The same
// forgery from a node id the insider gives a lease is taken (membership is
// who holds a lease, see the package doc): the test can tell.
func TestForgedEventsFromUnknownNodeChangeNothing(t *testing.T) {
	e := startEmbedded(t)
	insider, err := e.Connect("insider")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(insider.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(insider)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "lanft_presence", History: 1, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	const forged = "ForgedNode000000000000"
	ghost, _ := json.Marshal(record{Name: "ghost", Node: forged, Addr: "198.51.100.9"})
	if _, err := kv.Put(ctx, kvKey("", "ghost"), ghost); err != nil {
		t.Fatal(err)
	}

	nc, err := e.Connect("node")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cl, err := New(Config{Conn: nc, Heartbeat: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cl.Run(runCtx, rec) }()
	t.Cleanup(func() { stop(); <-done })
	for !cl.Ready() {
		if ctx.Err() != nil {
			t.Fatal("the node did not get ready")
		}
		time.Sleep(10 * time.Millisecond) // polling for readiness
	}
	if _, ok := cl.Lookup(ctx, "", "ghost"); ok {
		t.Error("Lookup found the ghost of a node without a lease")
	}

	send := func(node string) {
		t.Helper()
		for _, ev := range []event{
			{Kind: "on", Node: node, Key: "bob", Name: "bob", Rev: 1 << 40, Addr: "198.51.100.7"},
			{Kind: "msg", Node: node, To: "alice", Msg: json.RawMessage(`{"type":"offer","name":"bob"}`)},
		} {
			b, _ := json.Marshal(ev)
			if err := insider.Publish(cl.subj, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := insider.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	waitReceived := func(n uint64) {
		t.Helper()
		for cl.Stats().Received < n {
			if ctx.Err() != nil {
				t.Fatalf("the node received %d events, want %d", cl.Stats().Received, n)
			}
			time.Sleep(5 * time.Millisecond) // polling the node's counter
		}
	}
	send(forged)
	waitReceived(2)
	if got := rec.seen(); len(got) != 0 {
		t.Errorf("forged from a node without a lease, the node was told %q; want nothing", got)
	}
	if st := cl.Stats(); st.Ignored != 2 {
		t.Errorf("Stats().Ignored = %d, want 2", st.Ignored)
	}

	// Control: the insider gives a node id a lease.
	const leased = "LeasedByInsider0000000"
	if _, err := kv.Put(ctx, "n."+leased, []byte("now")); err != nil {
		t.Fatal(err)
	}
	send(leased)
	waitReceived(4)
	want := []string{"online bob", `deliver to alice: {"type":"offer","name":"bob"}`}
	if got := rec.seen(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("from a node with a lease, the node was told %q, want %q", got, want)
	}
}
