package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lanft/lanft/internal/lanfttest"
)

// testClusterSecret is the --cluster-secret of the test clusters.
const testClusterSecret = "a-test-cluster-secret-0123456789"

// A node of an embedded cluster does not start without a route secret (or
// with a short one, or with the gone --nats-listen); --cluster-insecure
// lets it start, with a warning.
func TestClusterSecretRequired(t *testing.T) {
	base := []string{"signal", "--listen", "127.0.0.1:0", "--cluster-listen", "127.0.0.1:0", "--cluster-routes", "nats://127.0.0.1:1"}
	for _, tt := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"no secret", nil, "--cluster-listen needs --cluster-secret"},
		{"a short secret", []string{"--cluster-secret", "short"}, "--cluster-secret is too short"},
		{"secret and insecure", []string{"--cluster-secret", testClusterSecret, "--cluster-insecure"}, "exclude each other"},
		{"--nats-listen", []string{"--cluster-secret", testClusterSecret, "--nats-listen", "127.0.0.1:4222"}, "--nats-listen is gone"},
	} {
		_, stderr, code := run(t, 20*time.Second, append(base, tt.extra...)...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tt.name, code, stderr, tt.want)
		}
	}
	p := start(t, append(base, "--cluster-insecure")...)
	p.WaitLine(t, "ws://", 20*time.Second)
	waitStderr(t, p, "cluster node ", 20*time.Second)
	if !strings.Contains(p.Stderr(), "WARNING: --cluster-insecure") {
		t.Errorf("--cluster-insecure started without the warning; stderr:\n%s", p.Stderr())
	}
}

// loopNode is one `lanft signal` of a cluster on loopback.
type loopNode struct {
	p             *lanfttest.Proc
	http, cluster int // ports
}

// startLoopCluster runs two nodes with embedded NATS on loopback, with
// flags (the secret or --cluster-insecure), and waits until both serve.
func startLoopCluster(t *testing.T, flags ...string) []loopNode {
	t.Helper()
	nodes := make([]loopNode, 2)
	for i := range nodes {
		nodes[i] = loopNode{http: freePort(t), cluster: freePort(t)}
	}
	for i := range nodes {
		other := nodes[1-i]
		args := append([]string{"--log-level", "info", "signal", "--listen", fmt.Sprintf("127.0.0.1:%d", nodes[i].http),
			"--cluster-listen", fmt.Sprintf("127.0.0.1:%d", nodes[i].cluster), "--cluster-name", fmt.Sprintf("n%d", i),
			"--cluster-routes", fmt.Sprintf("nats://127.0.0.1:%d", other.cluster), "--nats-store", t.TempDir()}, flags...)
		nodes[i].p = start(t, args...)
	}
	for i, n := range nodes {
		deadline := time.Now().Add(60 * time.Second)
		for healthCode(n.http) != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("node %d not healthy after 60s:\n%s", i, n.p.Stderr())
			}
			time.Sleep(100 * time.Millisecond) // polling a process's health endpoint
		}
	}
	return nodes
}

func (n loopNode) url() string { return fmt.Sprintf("ws://127.0.0.1:%d/ws", n.http) }

// rogue is a nats-server that routes to the cluster port of a node, with
// the user info given (nil: none), and takes clients on loopback.
func rogue(t *testing.T, clusterPort int, user *url.Userinfo) (*server.Server, *nats.Conn) {
	t.Helper()
	s, err := server.NewServer(&server.Options{ServerName: "rogue", Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		Cluster: server.ClusterOpts{Name: "lanft", Host: "127.0.0.1", Port: server.RANDOM_PORT},
		Routes:  []*url.URL{{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", clusterPort), User: user}}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("the rogue nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return s, nc
}

// readBucket lists the keys of the service's bucket through nc.
func readBucket(nc *nats.Conn) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, "lanft_presence")
	if err != nil {
		return nil, err
	}
	l, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

// injectBob publishes, through nc, a login of bob and an offer from bob to
// alice, as node, and waits until nc's server has them.
func injectBob(t *testing.T, nc *nats.Conn, node string) {
	t.Helper()
	for _, ev := range []string{
		fmt.Sprintf(`{"k":"on","n":%q,"key":"bob","name":"bob","rev":1099511627776,"addr":"198.51.100.7"}`, node),
		fmt.Sprintf(`{"k":"msg","n":%q,"to":"alice","msg":{"type":"offer","name":"bob","offer":{"type":"offer","sdp":"forged"}}}`, node),
	} {
		if err := nc.Publish("lanft.ev", []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// tcpListeners are the TCP addresses process pid listens on, as
// "tcp 0100007F:port" ("tcp6 ...:port" for IPv6; /proc's hex address), by
// port: its sockets in /proc/pid/fd matched with /proc/net/tcp and tcp6 in
// state LISTEN.
func tcpListeners(t *testing.T, pid int) map[int]string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	ports := map[int]string{}
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" || !inodes[fs[9]] { // 0A: LISTEN
				continue
			}
			hexIP, hexPort, _ := strings.Cut(fs[1], ":")
			pb, err := hex.DecodeString(hexPort)
			if err != nil || len(pb) != 2 {
				t.Fatalf("%s: local address %q", f, fs[1])
			}
			ports[int(pb[0])<<8|int(pb[1])] = f + " " + hexIP
		}
	}
	return ports
}

// A cluster with a secret is closed: its nodes listen on TCP for --listen,
// --cluster-listen and the embedded NATS's client port, on loopback, which
// refuses a client without the process's own password; a nats-server that
// routes in with no password or a wrong one is refused, cannot read the
// service's bucket, and what it injects reaches nobody. The same rogue
// routes into a cluster run with --cluster-insecure and reads the bucket:
// the test can tell.
func TestClusterClosedToOutsiders(t *testing.T) {
	nodes := startLoopCluster(t, "--cluster-secret", testClusterSecret)
	for i, n := range nodes {
		ls := tcpListeners(t, n.p.Cmd.Process.Pid)
		var clientPorts []int
		for port, addr := range ls {
			if port != n.http && port != n.cluster {
				clientPorts = append(clientPorts, port)
				if addr != "tcp 0100007F" {
					t.Errorf("node %d: a listener on %s:%d, not on loopback", i, addr, port)
				}
			}
		}
		if len(ls) != 3 || len(clientPorts) != 1 {
			t.Fatalf("node %d listens on %v; want --listen (%d), --cluster-listen (%d) and one NATS client port", i, ls, n.http, n.cluster)
		}
		for _, opts := range [][]nats.Option{nil, {nats.UserInfo("lanft-node", "a-guess")}} {
			nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[0]), append(opts, nats.NoReconnect())...)
			if err == nil {
				nc.Close()
				t.Errorf("node %d: a NATS client got into the embedded server without the password", i)
			} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
				t.Errorf("node %d: a NATS client without the password: %v, want an authorization violation", i, err)
			}
		}
	}
	alice, _ := loginAt(t, websocket.Dialer{}, nodes[0].url(), "alice")

	for i, user := range []*url.Userinfo{nil, url.UserPassword("lanft", "a-wrong-secret-0123456789")} {
		before := strings.Count(nodes[0].p.Stderr(), "authentication error")
		srv, nc := rogue(t, nodes[0].cluster, user)
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(nodes[0].p.Stderr(), "authentication error") <= before {
			if time.Now().After(deadline) {
				t.Fatalf("rogue %d: node 0 logged no refused route within 20s:\n%s", i, nodes[0].p.Stderr())
			}
			time.Sleep(50 * time.Millisecond) // polling a process's stderr
		}
		// The rogue's side tears its refused route down a moment after
		// node 0 logged the refusal: a route that stays is one that joined.
		for settle := time.Now().Add(5 * time.Second); srv.NumRoutes() != 0 && time.Now().Before(settle); {
			time.Sleep(50 * time.Millisecond) // NATS has no event for a route that went away
		}
		if n := srv.NumRoutes(); n != 0 {
			t.Errorf("rogue %d (user %v): %d routes into the cluster 5s after node 0 refused it", i, user, n)
		}
		if keys, err := readBucket(nc); err == nil {
			t.Errorf("rogue %d (user %v) read the bucket: %q", i, user, keys)
		}
		injectBob(t, nc, "ForgedNode000000000000")
		srv.Shutdown()
	}
	carol, users := loginAt(t, websocket.Dialer{}, nodes[1].url(), "carol")
	carol.sees(users, "alice", "carol")
	if m := alice.next(10 * time.Second); m["type"] != "updata" || m["action"] != "login" || m["name"] != "carol" {
		t.Errorf("alice got %v, want carol's login (nothing from the rogues)", m)
	}

	// Control: with --cluster-insecure, the same rogue without a password
	// joins and reads who is online.
	open := startLoopCluster(t, "--cluster-insecure")
	loginAt(t, websocket.Dialer{}, open[0].url(), "dave")
	srv, nc := rogue(t, open[0].cluster, nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		keys, err := readBucket(nc)
		if err == nil && slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "u.") }) {
			t.Logf("a rogue in an insecure cluster (%d routes) reads the bucket: %q", srv.NumRoutes(), keys)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rogue did not read the insecure cluster's bucket within 20s (keys %q, %v)", keys, err)
		}
		time.Sleep(100 * time.Millisecond) // polling until the rogue's route is up
	}
}

// Two nodes over an external NATS; an insider with that NATS's
// credentials injects bob's login and an offer to alice in the name of a
// node that holds no lease: alice hears nothing of it, bob is offline
// (her offer to him is refused), and the node counts the events ignored.
// The same events in the name of a node id the insider gives a lease do
// reach alice: the test can tell.
func TestClusterIgnoresForgedEvents(t *testing.T) {
	ns := startNATS(t)
	natsURL := fmt.Sprintf("nats://lanft:s3cret@%s", ns.Addr())
	ports := []int{freePort(t), freePort(t)}
	for _, port := range ports {
		p := start(t, "signal", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--nats", natsURL)
		deadline := time.Now().Add(30 * time.Second)
		for healthCode(port) != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("node on %d not healthy:\n%s", port, p.Stderr())
			}
			time.Sleep(50 * time.Millisecond) // polling a process's health endpoint
		}
	}
	insider, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(insider.Close)
	alice, _ := loginAt(t, websocket.Dialer{}, fmt.Sprintf("ws://127.0.0.1:%d/ws", ports[0]), "alice")

	injectBob(t, insider, "ForgedNode000000000000")
	// Whatever the server had before carol's login reaches node 0 before it.
	carol, users := loginAt(t, websocket.Dialer{}, fmt.Sprintf("ws://127.0.0.1:%d/ws", ports[1]), "carol")
	carol.sees(users, "alice", "carol")
	if m := alice.next(10 * time.Second); m["type"] != "updata" || m["name"] != "carol" {
		t.Fatalf("alice got %v, want carol's login (nothing forged)", m)
	}
	alice.send(map[string]any{"type": "offer", "othername": "bob", "offer": map[string]any{}})
	if m := alice.next(10 * time.Second); m["type"] != "error" || !strings.Contains(fmt.Sprint(m["message"]), `"bob"`) {
		t.Errorf("alice's offer to the forged bob: got %v, want an error, bob offline", m)
	}
	if got := metric(t, ports[0], "lanft_cluster_events_ignored_total"); got != 2 {
		t.Errorf("node 0: lanft_cluster_events_ignored_total %v, want 2", got)
	}

	// Control: a lease written by the insider makes the node id a member.
	js, err := jetstream.New(insider)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "lanft_presence")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "n.LeasedByInsider0000000", []byte("now")); err != nil {
		t.Fatal(err)
	}
	injectBob(t, insider, "LeasedByInsider0000000")
	if m := alice.next(10 * time.Second); m["type"] != "updata" || m["name"] != "bob" {
		t.Fatalf("control: alice got %v, want bob's forged login", m)
	}
	if m := alice.next(10 * time.Second); m["type"] != "offer" || m["name"] != "bob" {
		b, _ := json.Marshal(m)
		t.Fatalf("control: alice got %s, want bob's forged offer", b)
	}
}

// metric reads one value from the node's /metrics.
func metric(t *testing.T, port int, name string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %q", name, line)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics:\n%s", name, b)
	return 0
}
