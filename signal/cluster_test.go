package signal

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// testNodes is how many nodes startServer runs: LANFT_TEST_NODES (set by
// TestConformanceAcrossNodes for its child run), 1 by default.
func testNodes(t testing.TB) int {
	v := os.Getenv("LANFT_TEST_NODES")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("LANFT_TEST_NODES=%q: want a positive number", v)
	}
	return n
}

// TestClusterKit is how the in-package tests run real cluster nodes
// (internal/cluster over NATS). They may not import internal/cluster,
// which imports signal; clusterkit_test.go, in package signal_test, may,
// and sets this before any test runs.
var TestClusterKit ClusterKit

// ClusterKit makes what the cluster tests need of internal/cluster.
type ClusterKit struct {
	// Embedded starts a nats-server in the process for t and returns how
	// to open a connection to it (in process) under a name.
	Embedded func(t testing.TB) (connect func(name string) (*nats.Conn, error))
	// Connect connects to the NATS servers of a comma-separated URL list.
	Connect func(url, name string, opts ...nats.Option) (*nats.Conn, error)
	// Node makes one node of the service over o.Conn.
	Node func(o NodeOptions) (TestNode, error)
}

// NodeOptions are the cluster settings a test may change (zero: the
// cluster's defaults).
type NodeOptions struct {
	Conn                           *nats.Conn
	Heartbeat, LeaseTTL, DeadAfter time.Duration
	Replicas                       int
	RelayIP                        netip.Addr
}

// TestNode is one node of the service as a test drives it.
type TestNode interface {
	Cluster
	Run(ctx context.Context, h ClusterHandler) error
	Ready() bool
	Node() string
}

// clusterKit is TestClusterKit, or the end of t when it is missing.
func clusterKit(t testing.TB) ClusterKit {
	t.Helper()
	if TestClusterKit.Node == nil {
		t.Fatal("TestClusterKit is not set: clusterkit_test.go (package signal_test) sets it")
	}
	return TestClusterKit
}

// startCluster runs n signaling servers on loopback, each one node of a
// cluster over one embedded nats-server (in-process connections), and
// waits until every node serves logins.
func startCluster(t testing.TB, cfg Config, n int, opts ...func(i int, o *NodeOptions)) []*testServer {
	t.Helper()
	checkNoLeaks(t)
	connect := clusterKit(t).Embedded(t)
	opt := func(i int, o *NodeOptions) {
		for _, f := range opts {
			f(i, o)
		}
	}
	return startClusterOn(t, cfg, n, func(i int) (*nats.Conn, error) { return connect(fmt.Sprintf("node%d", i)) }, opt, waitFor)
}

// startClusterOn runs n signaling servers, node i over connect(i), and
// waits up to ready for every node to serve logins.
func startClusterOn(t testing.TB, cfg Config, n int, connect func(i int) (*nats.Conn, error),
	opt func(i int, o *NodeOptions), ready time.Duration) []*testServer {
	t.Helper()
	kit := clusterKit(t)
	nodes := make([]*testServer, n)
	clusters := make([]TestNode, n)
	for i := range nodes {
		nc, err := connect(i)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		o := NodeOptions{Conn: nc}
		opt(i, &o)
		cl, err := kit.Node(o)
		if err != nil {
			t.Fatal(err)
		}
		clusters[i] = cl
		ncfg := cfg
		ncfg.Cluster = cl
		srv, err := NewServer(ncfg)
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- cl.Run(ctx, srv.ClusterHandler()) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node %d: cluster Run: %v", i, err)
			}
		})
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(hs.Close)
		t.Cleanup(func() { srv.Close() })
		host := strings.TrimPrefix(hs.URL, "http://")
		nodes[i] = &testServer{Server: srv, http: hs, url: "ws://" + host + Path, host: host}
	}
	deadline := time.Now().Add(ready)
	for _, cl := range clusters {
		for !cl.Ready() {
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s not serving after %v", cl.Node(), ready)
			}
			time.Sleep(10 * time.Millisecond) // polling for readiness, not settling
		}
	}
	return nodes
}

// Users on three nodes see each other: user lists in login order and
// updata agree everywhere.
func TestClusterLoginUserlistAndUpdata(t *testing.T) {
	nodes := startCluster(t, Config{}, 3)
	alice := dialRaw(t, nodes[0].url)
	if users := alice.login("alice"); !slices.Equal(users, []string{"alice"}) {
		t.Fatalf("alice's userlist %q", users)
	}
	bob := dialRaw(t, nodes[1].url)
	if users := bob.login("bob"); !slices.Equal(users, []string{"alice", "bob"}) {
		t.Fatalf("bob (node 1) sees %q, want [alice bob]", users)
	}
	alice.expectUpdata("login", "bob")
	carol := dialRaw(t, nodes[2].url)
	carol.send(map[string]any{"type": "login", "name": "carol", "lanft": map[string]any{"v": 1}})
	if users := carol.expectLoggedIn(); !slices.Equal(users, []string{"alice", "bob", "carol"}) {
		t.Fatalf("carol (node 2) sees %q, want [alice bob carol]", users)
	}
	for _, c := range []*rawConn{alice, bob} {
		m := c.expectUpdata("login", "carol")
		if got := show(m["lanft"]); got != `{"v":1}` {
			t.Errorf("updata login carol carries lanft %s, want {\"v\":1}", got)
		}
	}
	for i, n := range nodes {
		if got := n.Users(); !slices.Equal(got, []string{"alice", "bob", "carol"}) {
			t.Errorf("node %d: Users() = %q, want [alice bob carol]", i, got)
		}
	}
	bob.ws.Close()
	alice.expectUpdata("offline", "bob")
	carol.expectUpdata("offline", "bob")
	// The name is free again, on any node.
	bob2 := dialRaw(t, nodes[2].url)
	if users := bob2.login("bob"); !slices.Equal(users, []string{"alice", "carol", "bob"}) {
		t.Fatalf("bob again (node 2) sees %q, want [alice carol bob]", users)
	}
	alice.expectUpdata("login", "bob")
	carol.expectUpdata("login", "bob")
}

// Relays cross nodes both ways, stamped with the logged-in sender's name;
// a message to nobody gets today's error.
func TestClusterRelay(t *testing.T) {
	nodes := startCluster(t, Config{}, 3)
	alice := dialRaw(t, nodes[0].url)
	alice.login("alice")
	bob := dialRaw(t, nodes[1].url)
	bob.login("bob")
	alice.expectUpdata("login", "bob")

	alice.send(`{"type":"offer","name":"mallory","othername":"bob","offer":` + offerJSON + `}`)
	m := bob.expect("offer")
	if wantString(t, m, "name") != "alice" {
		t.Errorf("offer relayed as %s, want name alice", show(m))
	}
	bob.send(`{"type":"answer","name":"bob","othername":"alice","answer":` + answerJSON + `}`)
	m = alice.expect("answer")
	if wantString(t, m, "name") != "bob" {
		t.Errorf("answer relayed as %s, want name bob", show(m))
	}
	bob.send(`{"type":"leave","othername":"alice","lanft":{"refused":"no"}}`)
	if m := alice.expect("leave"); show(m["lanft"]) != `{"refused":"no"}` {
		t.Errorf("leave relayed as %s, want its lanft object kept", show(m))
	}
	alice.send(`{"type":"offer","othername":"nobody","offer":{}}`)
	if msg := alice.expectError(); !strings.Contains(msg, `no user "nobody" is online`) {
		t.Errorf("offer to nobody: error %q", msg)
	}
}

// A user who logs in on one node and at once sends to a user of another
// is seen logging in before its first message.
func TestClusterLoginBeforeMessage(t *testing.T) {
	nodes := startCluster(t, Config{}, 3)
	bob := dialRaw(t, nodes[1].url)
	bob.login("bob")
	for i := range 20 {
		name := fmt.Sprintf("caller%d", i)
		c := dialRaw(t, nodes[(i%2)*2].url)
		c.send(map[string]any{"type": "login", "name": name})
		c.send(map[string]any{"type": "candidate", "othername": "bob", "candidate": map[string]any{"n": i}})
		c.expectLoggedIn()
		bob.expectUpdata("login", name)
		if m := bob.expect("candidate"); m["name"] != name {
			t.Fatalf("got %s, want the candidate from %s", show(m), name)
		}
		c.ws.Close()
		bob.expectUpdata("offline", name)
	}
}

// 1,000 numbered candidates cross nodes in order, none lost.
func TestClusterCandidatesInOrder(t *testing.T) {
	const n = 1000
	nodes := startCluster(t, Config{Rate: 1e6, Burst: 1e6}, 2)
	alice := dialRaw(t, nodes[0].url)
	alice.login("alice")
	bob := dialRaw(t, nodes[1].url)
	bob.login("bob")
	alice.expectUpdata("login", "bob")
	go func() {
		for i := range n {
			b := fmt.Appendf(nil, `{"type":"candidate","othername":"bob","candidate":{"candidate":"c","n":%d}}`, i)
			alice.ws.SetWriteDeadline(time.Now().Add(waitFor))
			if alice.ws.WriteMessage(websocket.TextMessage, b) != nil {
				return
			}
		}
	}()
	for i := range n {
		m := bob.expect("candidate")
		got := wantObject(t, m, "candidate")["n"]
		if fmt.Sprint(got) != strconv.Itoa(i) {
			t.Fatalf("candidate %d arrived as number %v", i, got)
		}
	}
}

// One name, or two names too close to each other, logged in at once on
// three nodes: exactly one wins, everywhere.
func TestClusterOneNameOneWinner(t *testing.T) {
	for _, names := range [][]string{{"same", "same", "same"}, {"José", "JOSÉ", "ｊｏｓé"}} {
		t.Run(names[0], func(t *testing.T) {
			nodes := startCluster(t, Config{}, 3)
			const per = 4
			var conns []*rawConn
			for i := range 3 * per {
				conns = append(conns, dialRaw(t, nodes[i%3].url))
			}
			var wg sync.WaitGroup
			for i, c := range conns {
				b := []byte(show(map[string]any{"type": "login", "name": names[i%3]}))
				wg.Go(func() { c.ws.WriteMessage(websocket.TextMessage, b) })
			}
			wg.Wait()
			won := 0
			for _, c := range conns {
				m := c.expect("login")
				if m["success"] == true {
					won++
					c.expect("userlist")
				} else {
					msg := c.expectError()
					if !strings.Contains(msg, "is taken") && !strings.Contains(msg, "too close") {
						t.Errorf("loser told %q", msg)
					}
				}
			}
			if won != 1 {
				t.Fatalf("%d of %d logins won, want 1", won, len(conns))
			}
			// Every node agrees on the one user.
			probe := make([]*rawConn, 3)
			for i, n := range nodes {
				probe[i] = dialRaw(t, n.url)
				if users := probe[i].login(fmt.Sprintf("probe%d", i)); len(users) != i+2 {
					t.Errorf("node %d: probe sees %q, want the winner and %d probes", i, users, i+1)
				}
			}
		})
	}
}

// Rooms stay apart across nodes: same name in two rooms, no relay between.
func TestClusterRoomsApart(t *testing.T) {
	nodes := startCluster(t, Config{}, 2)
	red := dialRaw(t, nodes[0].url+"/red")
	red.login("alice")
	blue := dialRaw(t, nodes[1].url+"/blue")
	if users := blue.login("alice"); !slices.Equal(users, []string{"alice"}) {
		t.Fatalf("alice in blue sees %q, want only herself", users)
	}
	bobRed := dialRaw(t, nodes[1].url+"/red")
	if users := bobRed.login("bob"); !slices.Equal(users, []string{"alice", "bob"}) {
		t.Fatalf("bob in red (node 1) sees %q", users)
	}
	red.expectUpdata("login", "bob")
	blue.send(`{"type":"offer","othername":"bob","offer":{}}`)
	if msg := blue.expectError(); !strings.Contains(msg, `no user "bob"`) {
		t.Errorf("blue to red's bob: %q", msg)
	}
	bobRed.send(`{"type":"offer","othername":"alice","offer":{}}`)
	if m := red.expect("offer"); m["name"] != "bob" {
		t.Errorf("red alice got %s", show(m))
	}
	if got := nodes[1].RoomUsers("red"); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("node 1 RoomUsers(red) = %q", got)
	}
	if got := nodes[1].RoomAddrs("red"); len(got) != 1 || !got[0].IsLoopback() {
		t.Errorf("node 1 RoomAddrs(red) = %v, want loopback (both users' address)", got)
	}
}

// The conformance, security and room tests pass with their clients spread
// over three nodes: the test binary runs them again with LANFT_TEST_NODES=3.
func TestConformanceAcrossNodes(t *testing.T) {
	if testNodes(t) > 1 {
		t.Skip("already the cluster run")
	}
	if testing.Short() {
		t.Skip("-short: skips the cluster run of the conformance tests")
	}
	tests := []string{
		"TestLoginUserlistAndUpdata", "TestRelay", "TestSpoofedNameIsReplaced", "TestDisconnectSendsOffline",
		"TestErrorsKeepTheConnection", "TestOriginalClientInteroperates",
		"TestOversizedMessage", "TestBinaryFrameIsRefused", "TestConfusableNamesRefused",
		"TestConcurrentLoginsOneWinner", "TestFloodIsRateLimited", "TestSlowReaderIsDropped",
		"TestLoginTimeout", "TestCrossOriginRefused", "TestRoomsAreApart", "TestLookAlikeNamesRefused",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^("+strings.Join(tests, "|")+")$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "LANFT_TEST_NODES=3")
	out, err := cmd.CombinedOutput()
	ran := strings.Count("\n"+string(out), "\n--- PASS: Test")
	if err != nil || ran < len(tests) {
		t.Fatalf("cluster run (%d of %d passed): %v\n%s", ran, len(tests), err, out)
	}
	t.Logf("%d conformance/security tests passed with clients on three nodes (%s)", ran, runtime.Version())
}

// The health and metrics endpoints say what a node does; a drained node
// tells its clients to log in again, frees their names and stops serving.
func TestClusterHealthMetricsAndDrain(t *testing.T) {
	nodes := startCluster(t, Config{}, 2)
	get := func(ts *testServer, path string) (int, string) {
		t.Helper()
		resp, err := ts.http.Client().Get(ts.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	alice := dialRaw(t, nodes[0].url)
	alice.login("alice")
	bob := dialRaw(t, nodes[1].url)
	bob.login("bob")
	alice.expectUpdata("login", "bob")
	bob.send(`{"type":"candidate","othername":"alice","candidate":{}}`)
	alice.expect("candidate")
	if code, body := get(nodes[0], HealthPath); code != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q, want 200 ok", code, body)
	}
	_, metrics := get(nodes[1], MetricsPath)
	for _, want := range []string{"lanft_signal_clients 1\n", "lanft_signal_users 1\n", "lanft_signal_remote_users 1\n",
		"lanft_signal_rooms 1\n", "lanft_signal_relays_total 1\n", "# TYPE lanft_signal_relays_total counter\n", "# TYPE lanft_signal_relays_per_second gauge\n"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
	nodes[0].Drain()
	if msg := alice.expectError(); msg != Draining {
		t.Errorf("drained client told %q, want %q", msg, Draining)
	}
	alice.expectClosed()
	bob.expectUpdata("offline", "alice")
	if code, _ := get(nodes[0], HealthPath); code != 503 {
		t.Errorf("healthz of a drained node: %d, want 503", code)
	}
	alice2 := dialRaw(t, nodes[1].url)
	if users := alice2.login("alice"); !slices.Equal(users, []string{"bob", "alice"}) {
		t.Errorf("alice on the other node sees %q", users)
	}
}

// The TURN relay of a node may send to the users of the whole room: their
// addresses and the relays of the nodes that hold them (relays of two
// nodes talk to each other), not to other rooms.
func TestClusterTURNDirectory(t *testing.T) {
	relay0 := netip.MustParseAddr("203.0.113.7")
	nodes := startCluster(t, Config{}, 2, func(i int, o *NodeOptions) {
		if i == 0 {
			o.RelayIP = relay0
		}
	})
	alice := dialRaw(t, nodes[0].url+"/red")
	alice.login("alice")
	bob := dialRaw(t, nodes[1].url+"/red")
	bob.login("bob")
	carol := dialRaw(t, nodes[1].url+"/blue")
	carol.login("carol")
	alice.expectUpdata("login", "bob")
	loop := netip.MustParseAddr("127.0.0.1")
	if got := nodes[1].RoomAddrs("red"); !slices.Equal(got, []netip.Addr{loop, relay0}) {
		t.Errorf("node 1 RoomAddrs(red) = %v, want alice's and bob's address and node 0's relay", got)
	}
	// bob's address is node 1's own socket's; alice's, node 1 was told.
	if got := nodes[1].RoomPeerAddrs("red"); !slices.Equal(got.Seen, []netip.Addr{loop}) ||
		!slices.Equal(got.Told, []netip.Addr{loop}) || !slices.Equal(got.Relays, []netip.Addr{relay0}) {
		t.Errorf("node 1 RoomPeerAddrs(red) = %+v, want bob's Seen, alice's Told and node 0's relay", got)
	}
	if got := nodes[1].RoomAddrs("blue"); !slices.Equal(got, []netip.Addr{loop}) {
		t.Errorf("node 1 RoomAddrs(blue) = %v, want carol's address only", got)
	}
	alice.ws.Close()
	bob.expectUpdata("offline", "alice")
	if got := nodes[1].RoomAddrs("red"); !slices.Equal(got, []netip.Addr{loop}) {
		t.Errorf("after alice left, node 1 RoomAddrs(red) = %v, want bob's address only", got)
	}
}

// A node that loses the broker loses its lease: it tells its clients to
// log in again and closes them; the other node declares it dead and tells
// its own clients that the lost node's users went offline; the names are
// free again. A node whose cluster is not running serves no login.
func TestClusterLeaseLostAndDeadNode(t *testing.T) {
	conns := make([]*nats.Conn, 2)
	nodes := startCluster(t, Config{}, 2, func(i int, o *NodeOptions) {
		o.Heartbeat, o.LeaseTTL, o.DeadAfter = 100*time.Millisecond, 600*time.Millisecond, 900*time.Millisecond
		conns[i] = o.Conn
	})
	alice := dialRaw(t, nodes[0].url)
	alice.login("alice")
	bob := dialRaw(t, nodes[1].url)
	bob.login("bob")
	alice.expectUpdata("login", "bob")

	cut := time.Now()
	conns[1].Close()
	if msg := bob.expectError(); !strings.Contains(msg, "log in again") {
		t.Errorf("bob, on the node that lost the broker, told %q", msg)
	}
	bob.expectClosed()
	fenced := time.Since(cut)
	alice.expectUpdata("offline", "bob")
	t.Logf("lease lost: clients closed after %v, offline on the other node after %v", fenced.Round(time.Millisecond), time.Since(cut).Round(time.Millisecond))
	// The lease was last renewed at most one heartbeat (100ms) before the
	// cut, so it ran out at least 500ms after it.
	if fenced < 500*time.Millisecond {
		t.Errorf("clients closed after %v, before the lease (600ms, renewed up to 100ms before the cut) ran out", fenced)
	}
	bob2 := dialRaw(t, nodes[1].url)
	bob2.send(`{"type":"login","name":"bob"}`)
	if m := bob2.expect("login"); m["success"] != false {
		t.Errorf("the node without a lease let bob log in: %s", show(m))
	}
	if msg := bob2.expectError(); !strings.Contains(msg, "try again") {
		t.Errorf("login on a node without a lease: %q", msg)
	}
	bob3 := dialRaw(t, nodes[0].url)
	if users := bob3.login("bob"); !slices.Equal(users, []string{"alice", "bob"}) {
		t.Errorf("bob again on the live node sees %q", users)
	}
	alice.expectUpdata("login", "bob")
}

// One of three NATS servers killed (an external NATS cluster, every node
// of the service alive): the node that used it reconnects to another
// server, nobody goes offline, relays and logins go on everywhere.
func TestClusterNATSServerKilled(t *testing.T) {
	checkNoLeaks(t)
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	servers := make([]*server.Server, 3)
	urls := make([]string, 3)
	for i := range servers {
		var routes []*url.URL
		for j, p := range ports {
			if j != i {
				routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p), User: url.UserPassword("route", "route-secret")})
			}
		}
		s, err := server.NewServer(&server.Options{ServerName: fmt.Sprintf("s%d", i), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			Username: "lanft", Password: "client-secret", JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "ext", Host: "127.0.0.1", Port: ports[i], Username: "route", Password: "route-secret"},
			Routes:  routes})
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats-server %d not ready", i)
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		servers[i] = s
		urls[i] = fmt.Sprintf("nats://lanft:client-secret@%s", s.Addr())
	}
	// Node i prefers server i, then the others.
	nodes := startClusterOn(t, Config{}, 3, func(i int) (*nats.Conn, error) {
		list := append([]string{urls[i]}, slices.Delete(slices.Clone(urls), i, i+1)...)
		return clusterKit(t).Connect(strings.Join(list, ","), fmt.Sprintf("node%d", i), nats.DontRandomize())
	}, func(i int, o *NodeOptions) { o.Replicas = 3 }, 30*time.Second)
	// Across NATS servers, logins of other nodes reach a user in no
	// particular order, possibly just after its list: wait for the sets.
	alice := dialRaw(t, nodes[0].url)
	aliceList := alice.login("alice")
	bob := dialRaw(t, nodes[1].url)
	bobList := bob.login("bob")
	carol := dialRaw(t, nodes[2].url)
	carolList := carol.login("carol")
	alice.settles(aliceList, "alice", "bob", "carol")
	bob.settles(bobList, "alice", "bob", "carol")
	carol.settles(carolList, "alice", "bob", "carol")

	servers[2].Shutdown()
	// Carol's node reconnects elsewhere (what it publishes meanwhile waits
	// in its client's buffer): carol stays online for everyone and relays
	// go both ways.
	// What is written to a server's socket as it dies is lost (core NATS
	// is at most once): carol sends until one candidate gets through.
	killed := time.Now()
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for n := 0; ; n++ {
			carol.ws.SetWriteDeadline(time.Now().Add(waitFor))
			if carol.ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"candidate","othername":"alice","candidate":{"n":%d}}`, n)) != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	m := alice.next()
	close(stop)
	<-stopped
	if m["type"] != "candidate" || m["name"] != "carol" {
		t.Fatalf("alice got %s, want carol's candidate (nobody goes offline)", show(m))
	}
	t.Logf("NATS server of carol's node killed: relays from it again after %v", time.Since(killed).Round(time.Millisecond))
	alice.send(`{"type":"offer","othername":"carol","offer":{"x":1}}`)
	for {
		m := carol.next()
		if m["type"] == "offer" {
			break
		}
		// Across NATS servers a login may reach a node just after the
		// user list it gave (see README): nothing else may come first.
		if m["type"] != "updata" || m["action"] != "login" {
			t.Fatalf("carol got %s, want alice's offer", show(m))
		}
	}
	// Logins go on (the bucket keeps its quorum with two servers of three).
	dave := dialRaw(t, nodes[2].url)
	loginDeadline := time.Now().Add(20 * time.Second)
	for {
		dave.send(`{"type":"login","name":"dave"}`)
		if m := dave.expect("login"); m["success"] == true {
			if users := wantStrings(t, dave.expect("userlist"), "users"); !slices.Equal(users, []string{"alice", "bob", "carol", "dave"}) {
				t.Errorf("dave sees %q", users)
			}
			break
		}
		dave.expectError()
		if time.Now().After(loginDeadline) {
			t.Fatal("no login on carol's node 20 s after its NATS server died")
		}
	}
	for m := bob.expect("updata"); m["name"] != "dave"; m = bob.expect("updata") {
		if m["action"] != "login" {
			t.Fatalf("bob got %s, want dave's login", show(m))
		}
	}
}

// settles reads updata after a login's user list until the online users
// are want (as a set).
func (c *rawConn) settles(list []string, want ...string) {
	c.t.Helper()
	have := map[string]bool{}
	for _, u := range list {
		have[u] = true
	}
	slices.Sort(want)
	for {
		var got []string
		for u, on := range have {
			if on {
				got = append(got, u)
			}
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			return
		}
		m := c.expect("updata")
		have[wantString(c.t, m, "name")] = m["action"] == "login"
	}
}

func TestRateWindow(t *testing.T) {
	var r rateWindow
	for range 30 {
		r.add(100)
	}
	r.add(101)
	if got := r.perSecond(101); got != 3 {
		t.Errorf("30 in second 100, asked in 101: %v/s, want 3 (30 over 10 s)", got)
	}
	if got := r.perSecond(110); got != 3.1 {
		t.Errorf("asked in 110: %v/s, want 3.1", got)
	}
	if got := r.perSecond(111); got != 0.1 {
		t.Errorf("asked in 111 (second 100 out of the window): %v/s, want 0.1", got)
	}
	if got := r.perSecond(500); got != 0 {
		t.Errorf("long after: %v/s, want 0", got)
	}
}

// addrIssuer is a fakeIssuer whose relay other nodes' users reach at addr.
type addrIssuer struct {
	fakeIssuer
	addr string
}

func (a *addrIssuer) RelayAddr() string { return a.addr }

// Two users on two nodes get a TCP relay of one node: the node of the
// user whose name sorts first pairs them (the other node passes its
// user's request on) and both tickets name that relay's public address.
func TestClusterRelayAcrossNodes(t *testing.T) {
	iss := &addrIssuer{addr: "203.0.113.9:443"}
	nodes := startCluster(t, Config{Relay: iss}, 2)
	alice, _, _ := startClient(t, ClientConfig{URL: nodes[1].url, Name: "alice"})
	bob, _, _ := startClient(t, ClientConfig{URL: nodes[0].url, Name: "bob"})
	waitPeers(t, alice, "alice", "bob")
	waitPeers(t, bob, "alice", "bob")
	ta, tb, ea, eb := askBoth(t, alice, bob)
	if ea != nil || eb != nil {
		t.Fatalf("relay across nodes: %v, %v", ea, eb)
	}
	// alice's node (1) relays: it issued alice's half first.
	if len(iss.issued) != 1 || iss.issued[0] != DefaultRoom+":alice+bob" {
		t.Fatalf("issued %v, want one pair, by alice's node, alice first", iss.issued)
	}
	if ta.Token[0] != 0x0a || tb.Token[0] != 0x0b || ta.Addr != iss.addr || tb.Addr != iss.addr || ta.URL != "" || tb.URL != "" {
		t.Fatalf("tickets %+v and %+v, want each its own half at the relaying node's public address %s", ta, tb, iss.addr)
	}
}

// A node whose relay has no public address refuses a pair across nodes,
// and both users are told why.
func TestClusterRelayAcrossNodesNeedsAnAddress(t *testing.T) {
	plain := startCluster(t, Config{Relay: &fakeIssuer{}}, 2)
	carol, _, _ := startClient(t, ClientConfig{URL: plain[0].url, Name: "carol"})
	dave, _, _ := startClient(t, ClientConfig{URL: plain[1].url, Name: "dave"})
	waitPeers(t, carol, "carol", "dave")
	waitPeers(t, dave, "carol", "dave")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ec, ed error
	var wg sync.WaitGroup
	wg.Go(func() { _, ec = carol.Relay(ctx, "dave") })
	wg.Go(func() { _, ed = dave.Relay(ctx, "carol") })
	wg.Wait()
	for who, err := range map[string]error{"carol": ec, "dave": ed} {
		if err == nil || !strings.Contains(err.Error(), "no public address") {
			t.Errorf("%s, across nodes with no public relay address: %v, want told why", who, err)
		}
	}
}
