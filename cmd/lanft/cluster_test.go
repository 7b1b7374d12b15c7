package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// clusterLAN is three `lanft signal` nodes on namespace hosts 1-3, each
// with an embedded nats-server of a three-server cluster, and clients on
// host 4.
type clusterLAN struct {
	t     *testing.T
	lan   *netns.LAN
	procs [4]*lanfttest.Proc // by host; 0 unused
	all   []nodeProc         // every process started, for the failure output
}

// nodeProc is one process of a node, restarted ones included.
type nodeProc struct {
	node  int
	start time.Time
	p     *lanfttest.Proc
}

func newClusterLAN(t *testing.T) *clusterLAN {
	cl := &clusterLAN{t: t, lan: netns.NewLAN(t, 4)}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, np := range cl.all {
			t.Logf("node %d, started %s, stderr:\n%s", np.node, np.start.Format("15:04:05.000"), np.p.Stderr())
		}
	})
	for i := 1; i <= 3; i++ {
		cl.startNode(i)
	}
	for i := 1; i <= 3; i++ {
		cl.waitHealth(i, http.StatusOK, 60*time.Second)
	}
	return cl
}

func (cl *clusterLAN) startNode(i int) {
	l := cl.lan
	var routes []string
	for j := 1; j <= 3; j++ {
		if j != i {
			routes = append(routes, fmt.Sprintf("nats://%s:6222", l.Addr(j)))
		}
	}
	cl.procs[i] = lanfttest.Start(cl.t, "ip", "netns", "exec", l.Namespace(i), lanftBin, "--config-dir", cl.t.TempDir(),
		"--log-level", "debug", "signal", "--listen", l.Addr(i).String()+":7780",
		"--cluster-listen", l.Addr(i).String()+":6222", "--cluster-name", fmt.Sprintf("n%d", i),
		"--cluster-routes", strings.Join(routes, ","), "--cluster-secret", testClusterSecret, "--nats-store", cl.t.TempDir())
	cl.all = append(cl.all, nodeProc{node: i, start: time.Now(), p: cl.procs[i]})
}

func (cl *clusterLAN) url(i int) string { return fmt.Sprintf("ws://%s:7780/ws", cl.lan.Addr(i)) }

// dialFrom opens a TCP connection from inside host from's namespace.
func (cl *clusterLAN) dialFrom(from int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := cl.lan.Do(from, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// health is node i's /healthz status code as seen from host from, or 0.
func (cl *clusterLAN) health(from, i int) int {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: cl.dialFrom(from)}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(fmt.Sprintf("http://%s:7780/healthz", cl.lan.Addr(i)))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (cl *clusterLAN) waitHealth(i, code int, limit time.Duration) time.Duration {
	cl.t.Helper()
	from := 4
	if code != http.StatusOK {
		from = i // a cut-off node is only reachable from its own host
	}
	start := time.Now()
	for cl.health(from, i) != code {
		if time.Since(start) > limit {
			cl.t.Fatalf("node %d: /healthz not %d after %v; stderr:\n%s", i, code, limit, cl.procs[i].Stderr())
		}
		time.Sleep(100 * time.Millisecond) // polling a process's health endpoint
	}
	return time.Since(start)
}

// wsClient is a raw protocol client on host 4.
type wsClient struct {
	t    *testing.T
	ws   *websocket.Conn
	name string
	msgs chan map[string]any
}

func (cl *clusterLAN) login(node int, name string) (*wsClient, []string) {
	cl.t.Helper()
	d := websocket.Dialer{NetDialContext: cl.dialFrom(4), HandshakeTimeout: 5 * time.Second}
	return loginAt(cl.t, d, cl.url(node), name)
}

// loginAt dials url with d and logs in as name; it returns the client and
// its user list.
func loginAt(t *testing.T, d websocket.Dialer, url, name string) (*wsClient, []string) {
	t.Helper()
	c := dialClient(t, d, url, name)
	t.Cleanup(func() { c.ws.Close() })
	c.send(map[string]any{"type": "login", "name": name})
	m := c.next(10 * time.Second)
	if m["type"] != "login" || m["success"] != true {
		t.Fatalf("%s at %s: login reply %v", name, url, m)
	}
	return c, c.users()
}

// dialClient dials url with d as name and reads its messages into
// c.msgs until the connection closes; the caller closes it.
func dialClient(t *testing.T, d websocket.Dialer, url, name string) *wsClient {
	t.Helper()
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, url, err)
	}
	c := &wsClient{t: t, ws: ws, name: name, msgs: make(chan map[string]any, 1024)}
	go func() {
		defer close(c.msgs)
		for {
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				return
			}
			c.msgs <- m
		}
	}()
	return c
}

// users reads the next message, the user list a login is answered with.
func (c *wsClient) users() []string {
	c.t.Helper()
	var users []string
	for _, u := range c.next(10 * time.Second)["users"].([]any) {
		users = append(users, u.(string))
	}
	return users
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatalf("%s: send: %v", c.name, err)
	}
}

func (c *wsClient) next(limit time.Duration) map[string]any {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatalf("%s: connection closed", c.name)
		}
		return m
	case <-time.After(limit):
		c.t.Fatalf("%s: nothing within %v", c.name, limit)
	}
	return nil
}

// sees checks that the user list c got at login, and the updata that
// follow within 5 s, come to want (as a set): across NATS servers, a login
// on another node a moment before may reach c just after its list.
func (c *wsClient) sees(users []string, want ...string) {
	c.t.Helper()
	have := map[string]bool{}
	for _, u := range users {
		have[u] = true
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got []string
		for u, on := range have {
			if on {
				got = append(got, u)
			}
		}
		slices.Sort(got)
		w := slices.Sorted(slices.Values(want))
		if slices.Equal(got, w) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s sees %q (list %q), want %q", c.name, got, users, want)
		}
		m := c.next(time.Until(deadline))
		if m["type"] != "updata" {
			c.t.Fatalf("%s: got %v while its user list settles", c.name, m)
		}
		have[m["name"].(string)] = m["action"] == "login"
	}
}

// waitUpdata waits for updata action name, skipping other updata.
func (c *wsClient) waitUpdata(action, name string, limit time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		m := c.next(time.Until(deadline))
		if m["type"] == "updata" && m["action"] == action && m["name"] == name {
			return
		}
		if m["type"] != "updata" {
			c.t.Fatalf("%s: got %v while waiting for updata %s %s", c.name, m, action, name)
		}
	}
}

// waitLogins waits for updata login of each of names, in any order,
// skipping other updata.
func (c *wsClient) waitLogins(limit time.Duration, names ...string) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	missing := slices.Clone(names)
	for len(missing) > 0 {
		m := c.next(time.Until(deadline))
		if m["type"] != "updata" {
			c.t.Fatalf("%s: got %v while waiting for the logins of %q", c.name, m, missing)
		}
		if m["action"] == "login" {
			missing = slices.DeleteFunc(missing, func(n string) bool { return n == m["name"] })
		}
	}
}

// relay sends a numbered candidate from c to to and checks it arrives.
func (c *wsClient) relay(to *wsClient, n int) {
	c.t.Helper()
	c.send(map[string]any{"type": "candidate", "othername": to.name, "candidate": map[string]any{"n": n}})
	for {
		m := to.next(10 * time.Second)
		if m["type"] == "updata" {
			continue
		}
		b, _ := json.Marshal(m)
		if m["type"] != "candidate" || m["name"] != c.name || !strings.Contains(string(b), fmt.Sprintf(`"n":%d`, n)) {
			c.t.Fatalf("%s expected candidate %d from %s, got %s", to.name, n, c.name, b)
		}
		return
	}
}

// Three real `lanft signal` processes on namespace hosts, each with an
// embedded nats-server of one cluster: a node SIGKILLed (its nats-server
// with it) takes its users offline for everyone within 20 s, the others
// keep working and its names are free again; a partitioned node stops
// serving and comes back; after every node restarts, no ghost is left.
func TestClusterNodeFailures(t *testing.T) {
	cl := newClusterLAN(t)
	alice, users := cl.login(1, "alice")
	alice.sees(users, "alice")
	bob, users := cl.login(2, "bob")
	bob.sees(users, "alice", "bob")
	carol, users := cl.login(3, "carol")
	carol.sees(users, "alice", "bob", "carol")
	// Logins on two other nodes reach alice in either order: NATS keeps
	// the order of one publisher only.
	alice.waitLogins(5*time.Second, "bob", "carol")
	bob.waitLogins(5*time.Second, "carol")
	alice.relay(bob, 1)
	bob.relay(carol, 2)
	carol.relay(alice, 3)

	// A node (and one of the three NATS servers) SIGKILLed.
	killed := time.Now()
	cl.procs[3].Kill()
	alice.waitUpdata("offline", "carol", 20*time.Second)
	tAlice := time.Since(killed)
	bob.waitUpdata("offline", "carol", 20*time.Second)
	tBob := time.Since(killed)
	t.Logf("node 3 SIGKILLed: carol offline for alice after %v, for bob after %v", tAlice.Round(time.Millisecond), tBob.Round(time.Millisecond))
	alice.relay(bob, 4)
	bob.relay(alice, 5)
	// Node 3's death may have started a JetStream election, and its users
	// go offline within it now: a login may be told "try again" meanwhile.
	carol2, users := cl.loginRetry(1, "carol", 15*time.Second)
	carol2.sees(users, "alice", "bob", "carol")
	bob.waitUpdata("login", "carol", 5*time.Second)
	carol2.relay(bob, 6)

	// Node 3 back: it serves again once its view is current.
	cl.startNode(3)
	back := cl.waitHealth(3, http.StatusOK, 60*time.Second)
	t.Logf("node 3 restarted: serving after %v", back.Round(time.Millisecond))
	dave, users := cl.login(3, "dave")
	dave.sees(users, "alice", "bob", "carol", "dave")
	dave.relay(alice, 7)

	// Node 1 cut off: it stops serving (its clients are closed) and the
	// others see its users leave; plugged back in, it serves again.
	cut := time.Now()
	cl.lan.Cut(1)
	fenced := cl.waitHealth(1, http.StatusServiceUnavailable, 30*time.Second)
	bob.waitUpdata("offline", "alice", 30*time.Second)
	// Each node declares node 1 dead on its own clock: under load the
	// second may follow the first by seconds.
	bob.waitUpdata("offline", "carol", 30*time.Second)
	t.Logf("node 1 cut off: not serving after %v, its users offline for bob after %v", fenced.Round(time.Millisecond), time.Since(cut).Round(time.Millisecond))
	dave.waitUpdata("offline", "alice", 30*time.Second)
	cl.lan.Restore(1)
	healed := cl.waitHealth(1, http.StatusOK, 60*time.Second)
	t.Logf("node 1 plugged back: serving after %v", healed.Round(time.Millisecond))
	erin, users := cl.login(1, "erin")
	erin.sees(users, "bob", "dave", "erin")
	erin.relay(dave, 8)
	alice2, _ := cl.login(2, "alice")
	erin.waitUpdata("login", "alice", 5*time.Second)
	alice2.relay(erin, 9)

	// Every node restarts: no ghost is left.
	for i := 1; i <= 3; i++ {
		cl.procs[i].Kill()
	}
	for i := 1; i <= 3; i++ {
		cl.startNode(i)
	}
	for i := 1; i <= 3; i++ {
		cl.waitHealth(i, http.StatusOK, 60*time.Second)
	}
	var fresh []string
	for i := 1; i <= 3; i++ {
		fresh = append(fresh, fmt.Sprintf("fresh%d", i))
		c, users := cl.login(i, fresh[i-1])
		c.sees(users, fresh...) // and nobody from before
	}
}

// waitHealthIn polls http://addr/healthz from inside namespace ns until 200.
func waitHealthIn(t *testing.T, ns, addr string, p *lanfttest.Proc) {
	t.Helper()
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		var c net.Conn
		err := netns.DoIn(ns, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, a)
			return err
		})
		return c, err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: dial}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := hc.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after 60s:\n%s", addr, p.Stderr())
		}
		time.Sleep(100 * time.Millisecond) // polling a process's health endpoint
	}
}

// A real transfer between two CLI peers behind home NATs, each logged in
// to a different node of one service, relayed through both nodes' TURN
// servers (relay forced on both sides: each peer has only its own node's
// relay, so the bytes go relay to relay, across nodes).
// (The nodes' TCP relays are off: they would carry this pair, below.)
func TestClusterTransferThroughTwoNodesRelays(t *testing.T) {
	inet, nodes, procs := twoNodeService(t, "--no-tcp-relay")
	src, out, recv, line := relayedAcrossNodes(t, inet, nodes, "home1", "home2", 4<<20, "relay")
	done := recv.WaitLine(t, `"event":"done"`, 2*time.Minute)
	lanfttest.SameFile(t, src, filepath.Join(out, "across.bin"))
	t.Logf("4 MiB from node 1's user to node 2's user through both nodes' relays in %v", done.At.Sub(line.At).Round(time.Millisecond))
	// Each relay had to let the other node's relay in: the room's
	// directory holds it (without it, "refused a permission" and no path).
	for i, p := range procs {
		if strings.Contains(p.Stderr(), "turn: refused a permission") {
			t.Errorf("node %d refused a relay permission:\n%s", i+1, p.Stderr())
		}
	}
}

// serviceNode is a node of twoNodeService.
type serviceNode struct {
	ns   string
	addr string
}

// twoNodeService runs a `lanft signal` service of two nodes with TURN on
// the "internet" of two home NATs, each node with flags too, and waits
// until both serve.
func twoNodeService(t *testing.T, flags ...string) (*netns.Internet, []serviceNode, []*lanfttest.Proc) {
	t.Helper()
	inet := netns.NewInternet(t, netns.HomeNAT, netns.HomeNAT)
	srv2, addr2 := inet.AddServer(2)
	nodes := []serviceNode{{inet.Server(), inet.ServerAddr().String()}, {srv2, addr2.String()}}
	var procs []*lanfttest.Proc
	for i, n := range nodes {
		other := nodes[1-i]
		args := append([]string{"--log-level", "debug", "signal", "--listen", n.addr + ":7780",
			"--public-addr", n.addr, "--turn-secret", "one-secret-for-the-service",
			"--cluster-listen", n.addr + ":6222", "--cluster-name", fmt.Sprintf("n%d", i+1),
			"--cluster-routes", "nats://" + other.addr + ":6222", "--cluster-secret", testClusterSecret, "--nats-store", t.TempDir()}, flags...)
		procs = append(procs, inNS(t, n.ns, args...))
	}
	for i, n := range nodes {
		waitHealthIn(t, n.ns, n.addr+":7780", procs[i])
	}
	return inet, nodes, procs
}

// Two CLI peers behind home NATs on two nodes of one service, the relay
// forced: the bytes go through the TCP relay of one node (alice's, whose
// name sorts first), end-to-end TLS, both peers connecting to that node's
// public address. The other node (bob's, the sharer's) is killed
// mid-transfer: the transfer goes on through the survivor and ends
// identical.
func TestClusterTCPRelayAcrossNodesSurvivesTheOtherNode(t *testing.T) {
	// 8 MB/s each way: 24 MiB take about 3 s, time to kill a node.
	inet, nodes, procs := twoNodeService(t, "--tcp-relay-rate", "8")
	src, out, recv, line := relayedAcrossNodes(t, inet, nodes, "bob", "alice", 24<<20, "tcp-relay")
	recv.WaitLine(t, `"event":"progress"`, 30*time.Second)
	procs[0].Kill()
	killed := time.Now()
	done := recv.WaitLine(t, `"event":"done"`, 2*time.Minute)
	lanfttest.SameFile(t, src, filepath.Join(out, "across.bin"))
	if done.At.Before(killed) {
		t.Fatalf("the transfer ended before node 1 was killed: raise the size")
	}
	t.Logf("24 MiB through node 2's TCP relay in %v; node 1 (the sharer's) killed %v before the end",
		done.At.Sub(line.At).Round(time.Millisecond), done.At.Sub(killed).Round(time.Millisecond))
	if !strings.Contains(procs[1].Stderr(), "relay pair across nodes") {
		t.Errorf("node 2 did not pair the relay:\n%s", procs[1].Stderr())
	}
}

// relayedAcrossNodes shares size random bytes as sharer from home 1
// through node 1, receives them as receiver at home 2 through node 2,
// both with --path relay, and waits for the receiver's peer event, which
// must name want as the path. It returns the file shared, the receiver's
// folder, the receiver and its peer event.
func relayedAcrossNodes(t *testing.T, inet *netns.Internet, nodes []serviceNode, sharer, receiver string, size int64, want string) (string, string, *lanfttest.Proc, lanfttest.Line) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "across.bin")
	lanfttest.WriteRandom(t, src, size)
	share := inNS(t, inet.Peer(1), "share", "--signal", "ws://"+nodes[0].addr+":7780/ws/across", "--interface", "h0",
		"--name", sharer, "--path", "relay", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	out := t.TempDir()
	recv := inNS(t, inet.Peer(2), "receive", "--signal", "ws://"+nodes[1].addr+":7780/ws/across", "--interface", "h0",
		"--from", sharer, "--name", receiver, "--path", "relay", "--yes", "--json", "--out", out)
	line := recv.WaitLine(t, `"event":"peer"`, 45*time.Second)
	if !strings.Contains(line.Text, `"path":"`+want+`"`) {
		t.Fatalf("peer event %s, want path %s; receiver's stderr:\n%s", line.Text, want, recv.Stderr())
	}
	return src, out, recv, line
}

// startNATS runs a nats-server with JetStream on loopback, user "lanft"
// and password "s3cret", for the tests of an external NATS.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), Username: "lanft", Password: "s3cret", NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// Two `lanft signal` processes join one service through an external NATS
// (a nats-server with a user and password, on loopback): users on the two
// see and reach each other. A wrong password stops lanft signal at once.
func TestSignalOverExternalNATS(t *testing.T) {
	ns := startNATS(t)
	port := ns.Addr().(*net.TCPAddr).Port
	natsURL := fmt.Sprintf("nats://lanft:s3cret@127.0.0.1:%d", port)
	var urls []string
	var procs []*lanfttest.Proc
	for range 2 {
		p := start(t, "signal", "--listen", "127.0.0.1:0", "--nats", natsURL)
		procs = append(procs, p)
		u := strings.TrimSpace(p.WaitLine(t, "ws://", 10*time.Second).Text)
		hp := strings.TrimSuffix(strings.TrimPrefix(u, "ws://"), "/ws")
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + hp + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not healthy:\n%s", u, p.Stderr())
			}
			time.Sleep(50 * time.Millisecond) // polling a process's health endpoint
		}
		urls = append(urls, u)
	}
	alice, _ := loginAt(t, websocket.Dialer{}, urls[0]+"/ext", "alice")
	bob, users := loginAt(t, websocket.Dialer{}, urls[1]+"/ext", "bob")
	bob.sees(users, "alice", "bob")
	alice.waitUpdata("login", "bob", 5*time.Second)
	alice.relay(bob, 1)
	bob.relay(alice, 2)

	// SIGTERM drains: alice is told to log in again, bob sees her leave,
	// and her name is free at once on the other process.
	if err := procs[0].Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if m := alice.next(10 * time.Second); m["type"] != "error" || !strings.Contains(fmt.Sprint(m["message"]), "shutting down: log in again") {
		t.Errorf("alice, on the node told to stop, got %v", m)
	}
	bob.waitUpdata("offline", "alice", 10*time.Second)
	alice2, users := loginAt(t, websocket.Dialer{}, urls[1]+"/ext", "alice")
	alice2.sees(users, "alice", "bob")
	if code := procs[0].ExitCode(); code != 143 {
		t.Errorf("lanft signal after SIGTERM: exit %d, want 143", code)
	}

	_, stderr, code := run(t, 20*time.Second, "signal", "--listen", "127.0.0.1:0",
		"--nats", fmt.Sprintf("nats://lanft:wrong@127.0.0.1:%d", port))
	if code != 1 || !strings.Contains(stderr, "lanft: cluster: connect to") || !strings.Contains(strings.ToLower(stderr), "authorization") {
		t.Errorf("a wrong NATS password: exit %d, stderr %q; want 1 and the NATS error", code, stderr)
	}
	if strings.Contains(stderr, "wrong") {
		t.Errorf("the NATS password is in the error message: %q", stderr)
	}
}
