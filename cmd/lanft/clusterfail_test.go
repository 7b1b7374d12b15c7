package main

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// offlineWithin reads c's messages for window and returns the names whose
// offline updata came meanwhile (the other messages are dropped).
func (c *wsClient) offlineWithin(window time.Duration) []string {
	var names []string
	deadline := time.After(window)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				return append(names, "(its own connection closed)")
			}
			if m["type"] == "updata" && m["action"] == "offline" {
				names = append(names, fmt.Sprint(m["name"]))
			}
		case <-deadline:
			return names
		}
	}
}

// heard waits until each of the nodes has heard node i's heartbeats, so
// that they watch it (they log it, at level info).
func (cl *clusterLAN) heard(i int, nodes ...int) {
	cl.t.Helper()
	id := regexp.MustCompile(`cluster node (\w+):`).FindStringSubmatch(cl.procs[i].Stderr())
	if id == nil {
		cl.t.Fatalf("node %d did not say its id", i)
	}
	want := `msg="cluster: node heard: its death is seen within a few heartbeats" node=` + id[1]
	for _, n := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(cl.procs[n].Stderr(), want) {
			if time.Now().After(deadline) {
				cl.t.Fatalf("node %d did not hear node %d within 10s", n, i)
			}
			time.Sleep(50 * time.Millisecond) // polling a process's log
		}
	}
}

// TestClusterPauseAndKill: three `lanft signal` nodes with embedded NATS
// on namespace hosts. Node 3 is SIGSTOPped for 2 s (a stall: its
// nats-server with it, the routes open): nobody is shown offline, and its
// users work on after SIGCONT. Then node 3 is SIGKILLed: NATS drops its
// routes, and its users are offline for the users on the others within the
// bound (about a second here, against 14 s on the lease alone); the others
// keep relaying.
func TestClusterPauseAndKill(t *testing.T) {
	cl := newClusterLAN(t)
	alice, users := cl.login(1, "alice")
	alice.sees(users, "alice")
	bob, users := cl.login(2, "bob")
	bob.sees(users, "alice", "bob")
	carol, users := cl.login(3, "carol")
	carol.sees(users, "alice", "bob", "carol")
	dan, users := cl.login(3, "dan")
	dan.sees(users, "alice", "bob", "carol", "dan")
	for _, c := range []*wsClient{alice, bob} {
		c.waitUpdata("login", "carol", 5*time.Second)
		c.waitUpdata("login", "dan", 5*time.Second)
	}
	carol.relay(alice, 1)
	cl.heard(3, 1, 2)

	pgid := -cl.procs[3].Cmd.Process.Pid
	if err := syscall.Kill(pgid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the pause itself is what is tested
	if err := syscall.Kill(pgid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// A wrong death would come 1-2 s after the pause began (GoneAfter and
	// two probes): watch well past that.
	for _, c := range []*wsClient{alice, bob} {
		if gone := c.offlineWithin(3 * time.Second); len(gone) > 0 {
			t.Fatalf("node 3 paused 2 s: %s was shown %q offline", c.name, gone)
		}
	}
	carol.relay(bob, 2)
	dan.relay(alice, 3)
	alice.relay(dan, 4)

	killed := time.Now()
	cl.procs[3].Kill()
	for _, c := range []*wsClient{alice, bob} {
		for _, who := range []string{"carol", "dan"} {
			c.waitUpdata("offline", who, 6*time.Second)
			t.Logf("node 3 SIGKILLed: %s offline for %s after %v", who, c.name, time.Since(killed).Round(time.Millisecond))
		}
	}
	// One of three NATS servers gone: JetStream may elect new leaders
	// meanwhile. Nobody else goes offline.
	for _, c := range []*wsClient{alice, bob} {
		if gone := c.offlineWithin(2 * time.Second); len(gone) > 0 {
			t.Fatalf("after node 3's death, %s was shown %q offline", c.name, gone)
		}
	}
	alice.relay(bob, 5)
	bob.relay(alice, 6)
	// The name is free again once the survivors have deleted it: at once,
	// or once JetStream has a new leader if node 3 was the bucket's.
	freed := time.Now()
	carol2, users := cl.loginRetry(2, "carol", 15*time.Second)
	t.Logf("carol's name free again %v after node 3's death (%v of asking)", time.Since(killed).Round(time.Millisecond), time.Since(freed).Round(time.Millisecond))
	carol2.sees(users, "alice", "bob", "carol")
	carol2.relay(alice, 7)
}

// loginRetry logs in as name at node, asking again while the login is
// refused (the name not free yet, or "try again" during a JetStream leader
// election, as a client would), for up to limit.
func (cl *clusterLAN) loginRetry(node int, name string, limit time.Duration) (*wsClient, []string) {
	cl.t.Helper()
	start := time.Now()
	for {
		if c, users := cl.tryLogin(node, name); c != nil {
			return c, users
		}
		if time.Since(start) > limit {
			cl.t.Fatalf("%s: login at node %d still refused after %v", name, node, limit)
		}
		time.Sleep(200 * time.Millisecond) // asking again, as a client would
	}
}

// tryLogin logs in as name at node, or returns nil if the login is refused.
func (cl *clusterLAN) tryLogin(node int, name string) (*wsClient, []string) {
	cl.t.Helper()
	d := websocket.Dialer{NetDialContext: cl.dialFrom(4), HandshakeTimeout: 5 * time.Second}
	c := dialClient(cl.t, d, cl.url(node), name)
	c.send(map[string]any{"type": "login", "name": name})
	if m := c.next(10 * time.Second); m["type"] != "login" || m["success"] != true {
		c.ws.Close()
		return nil, nil
	}
	cl.t.Cleanup(func() { c.ws.Close() })
	return c, c.users()
}
