//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/lanft/lanft/internal/lanfttest"
)

// BenchmarkClusterLoad3000 runs three `lanft signal` processes on loopback,
// each with an embedded nats-server of one cluster, logs in 3,000 clients
// in 300 rooms spread over them (each room has users on every node), then
// relays candidates between users of different nodes one at a time, then
// SIGKILLs a node while the others keep relaying. It prints figures; it
// fails only on correctness.
//
//	go test -run '^$' -bench BenchmarkClusterLoad3000 -benchtime 1x ./cmd/lanft/
func BenchmarkClusterLoad3000(b *testing.B) {
	const users, rooms, relays = 3000, 300, 2000
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < 2*users+1024 {
		lim.Cur = min(lim.Max, 2*users+1024)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	for range b.N {
		benchClusterLoad(b, users, rooms, relays)
	}
	b.ReportMetric(0, "ns/op")
}

func freePort(b testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// benchClient is one WebSocket client; its reader counts what it hears.
type benchClient struct {
	ws      *websocket.Conn
	name    string
	node    int
	room    int
	mu      sync.Mutex
	online  map[string]bool
	changed chan struct{}  // capacity 1
	got     map[string]int // sender -> candidates received
	lastN   map[string]int // sender -> last number received (order check)
	late    []time.Duration
	bad     atomic.Int64 // candidates out of order
	wmu     sync.Mutex
}

func (c *benchClient) read() {
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m struct {
			Type, Action, Name string
			Users              []string
			Candidate          struct {
				N  int   `json:"n"`
				At int64 `json:"at"`
			}
		}
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		c.mu.Lock()
		switch m.Type {
		case "userlist":
			for _, u := range m.Users {
				c.online[u] = true
			}
		case "updata":
			c.online[m.Name] = m.Action == "login"
		case "candidate":
			if last, ok := c.lastN[m.Name]; ok && m.Candidate.N <= last {
				c.bad.Add(1)
			}
			c.lastN[m.Name] = m.Candidate.N
			c.got[m.Name]++
			if m.Candidate.At != 0 {
				c.late = append(c.late, time.Since(time.Unix(0, m.Candidate.At)))
			}
		}
		c.mu.Unlock()
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
}

func (c *benchClient) send(v any) error {
	b, _ := json.Marshal(v)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// waitUntil waits until cond holds on c's state.
func (c *benchClient) waitUntil(limit time.Duration, cond func(c *benchClient) bool) bool {
	deadline := time.After(limit)
	for {
		c.mu.Lock()
		ok := cond(c)
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-c.changed:
		case <-deadline:
			return false
		}
	}
}

func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func benchClusterLoad(b *testing.B, users, rooms, relays int) {
	var hport, clus [3]int
	for i := range 3 {
		hport[i], clus[i] = freePort(b), freePort(b)
	}
	procs := make([]*lanfttest.Proc, 3)
	for i := range 3 {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", clus[j]))
			}
		}
		procs[i] = lanfttest.Start(b, lanftBin, "--config-dir", b.TempDir(), "signal",
			"--listen", fmt.Sprintf("127.0.0.1:%d", hport[i]),
			"--cluster-listen", fmt.Sprintf("127.0.0.1:%d", clus[i]), "--cluster-name", fmt.Sprintf("n%d", i),
			"--cluster-routes", strings.Join(routes, ","), "--cluster-secret", testClusterSecret, "--nats-store", b.TempDir())
	}
	for i := range 3 {
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := (&net.Dialer{}).Dial("tcp", fmt.Sprintf("127.0.0.1:%d", hport[i]))
			if err == nil {
				resp.Close()
				if code := healthCode(hport[i]); code == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("node %d not healthy after 60s:\n%s", i, procs[i].Stderr())
			}
			time.Sleep(100 * time.Millisecond) // polling a process's health endpoint
		}
	}

	// The login storm: every client dials and logs in at once (200 at a
	// time dialling), then waits until it sees its whole room.
	clients := make([]*benchClient, users)
	start := time.Now()
	var g errgroup.Group
	g.SetLimit(200)
	for i := range users {
		g.Go(func() error {
			c := &benchClient{name: fmt.Sprintf("u%d", i), node: (i / rooms) % 3, room: i % rooms,
				online: map[string]bool{}, changed: make(chan struct{}, 1), got: map[string]int{}, lastN: map[string]int{}}
			url := fmt.Sprintf("ws://127.0.0.1:%d/ws/room%03d", hport[c.node], c.room)
			// From 16 loopback addresses, as from a crowd of hosts: each
			// within the per-address limits of lanft signal.
			src := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%16))}}
			ws, _, err := (&websocket.Dialer{NetDialContext: src.DialContext, HandshakeTimeout: 45 * time.Second}).Dial(url, nil)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			c.ws = ws
			clients[i] = c
			go c.read()
			return c.send(map[string]any{"type": "login", "name": c.name})
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		for _, c := range clients {
			c.ws.Close()
		}
	}()
	per := users / rooms
	for _, c := range clients {
		if !c.waitUntil(60*time.Second, func(c *benchClient) bool { return countTrue(c.online) == per }) {
			b.Fatalf("%s sees %d users of its room, want %d", c.name, countTrue(c.online), per)
		}
	}
	storm := time.Since(start)

	// Relays one at a time between users of one room on different nodes.
	byRoom := make([][]*benchClient, rooms)
	for _, c := range clients {
		byRoom[c.room] = append(byRoom[c.room], c)
	}
	var lat []time.Duration
	for k := range relays {
		r := byRoom[k%rooms]
		from, to := r[k%len(r)], r[(k+1)%len(r)]
		if from.node == to.node {
			to = r[(k+2)%len(r)]
		}
		sent := time.Now()
		before := 0
		to.mu.Lock()
		before = to.got[from.name]
		to.mu.Unlock()
		if err := from.send(map[string]any{"type": "candidate", "othername": to.name, "candidate": map[string]any{"n": k + 1}}); err != nil {
			b.Fatal(err)
		}
		if !to.waitUntil(10*time.Second, func(c *benchClient) bool { return c.got[from.name] > before }) {
			b.Fatalf("relay %d from %s (node %d) to %s (node %d) lost", k, from.name, from.node, to.name, to.node)
		}
		lat = append(lat, time.Since(sent))
	}
	slices.Sort(lat)

	var rss [3]int64
	for i := range 3 {
		rss[i] = vmHWM(procs[i].Cmd.Process.Pid)
	}

	// Node 2 paused (SIGSTOP) for 2 s, its nats-server with it: nobody may
	// be shown offline. A wrong death would come 1-2 s into the pause;
	// the window runs 3 s past it.
	pg := -procs[2].Cmd.Process.Pid
	if err := syscall.Kill(pg, syscall.SIGSTOP); err != nil {
		b.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the pause is what is measured
	if err := syscall.Kill(pg, syscall.SIGCONT); err != nil {
		b.Fatal(err)
	}
	time.Sleep(3 * time.Second) // watching for a wrong offline
	shownOffline := 0
	for _, c := range clients {
		c.mu.Lock()
		if countTrue(c.online) < per {
			shownOffline++
		}
		c.mu.Unlock()
	}
	if shownOffline > 0 {
		b.Errorf("node 2 paused 2 s: %d clients were shown someone of their room offline", shownOffline)
	}

	// Node 2 SIGKILLed while users of nodes 0 and 1 keep relaying to each
	// other (numbered, timestamped): how long until everyone sees node 2's
	// users offline, and is any survivor's message lost?
	type pair struct {
		from, to *benchClient
		sent     *atomic.Int64
	}
	var pairs []pair
	for _, r := range byRoom {
		var a, c *benchClient
		for _, u := range r {
			switch {
			case u.node == 0 && a == nil:
				a = u
			case u.node == 1 && c == nil:
				c = u
			}
		}
		pairs = append(pairs, pair{a, c, new(atomic.Int64)})
	}
	for _, c := range clients { // fresh counters for the survivors' traffic
		c.mu.Lock()
		c.got, c.lastN, c.late = map[string]int{}, map[string]int{}, nil
		c.mu.Unlock()
	}
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 1; ; n++ {
			for _, p := range pairs {
				select {
				case <-stop:
					return
				default:
				}
				if p.from.send(map[string]any{"type": "candidate", "othername": p.to.name,
					"candidate": map[string]any{"n": n, "at": time.Now().UnixNano()}}) == nil {
					sent.Add(1)
					p.sent.Add(1)
				}
			}
			time.Sleep(20 * time.Millisecond) // pacing the load: 300 relays per round, under the per-client rate limit
		}
	})
	time.Sleep(time.Second) // load running before the kill
	killed := time.Now()
	procs[2].Kill()
	var gone []string
	for _, c := range clients {
		if c.node == 2 {
			gone = append(gone, c.name)
		}
	}
	var offlineAll time.Duration
	for _, c := range clients {
		if c.node == 2 {
			continue
		}
		if !c.waitUntil(60*time.Second, func(c *benchClient) bool {
			for _, u := range gone {
				if c.online[u] && sameRoom(u, c, rooms) {
					return false
				}
			}
			return true
		}) {
			b.Fatalf("%s still sees node 2's users after 60s", c.name)
		}
	}
	offlineAll = time.Since(killed)
	time.Sleep(time.Second) // load running after the kill
	close(stop)
	wg.Wait()
	// Let what is in flight arrive (5 s at most): what is missing then is lost.
	for _, p := range pairs {
		p.to.waitUntil(5*time.Second, func(c *benchClient) bool { return int64(c.got[p.from.name]) >= p.sent.Load() })
	}
	received := int64(0)
	var afterLat []time.Duration
	var outOfOrder int64
	for _, p := range pairs {
		p.to.mu.Lock()
		received += int64(p.to.got[p.from.name])
		afterLat = append(afterLat, p.to.late...)
		p.to.mu.Unlock()
		outOfOrder += p.to.bad.Load()
	}
	slices.Sort(afterLat)
	lost := sent.Load() - received
	fmt.Printf("cluster load: %d clients in %d rooms over 3 nodes logged in, every one with its full %d-user room, after %v; "+
		"cross-node relay of %d candidates one at a time p50 %v p99 %v max %v; peak RSS per node %.0f / %.0f / %.0f MiB; "+
		"node 2 SIGSTOPped 2 s: %d clients shown anyone offline; "+
		"node 2 SIGKILLed under load: its %d users offline for all %d others after %v; survivors sent %d relays during it, lost %d, out of order %d, p99 latency %v\n",
		users, rooms, per, storm.Round(time.Millisecond), relays, lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1],
		float64(rss[0])/(1<<20), float64(rss[1])/(1<<20), float64(rss[2])/(1<<20),
		shownOffline, len(gone), users-len(gone), offlineAll.Round(time.Millisecond), sent.Load(), lost, outOfOrder, pct(afterLat, 99))
	b.ReportMetric(float64(storm.Milliseconds()), "login-storm-ms")
	b.ReportMetric(us(lat[len(lat)/2]), "relay-p50-µs")
	b.ReportMetric(us(lat[len(lat)*99/100]), "relay-p99-µs")
	b.ReportMetric(float64(max(rss[0], rss[1], rss[2]))/(1<<20), "max-node-RSS-MiB")
	b.ReportMetric(offlineAll.Seconds(), "kill-offline-s")
	b.ReportMetric(float64(shownOffline), "pause-shown-offline")
	b.ReportMetric(float64(lost), "lost")
}

func healthCode(port int) int {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func countTrue(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

// sameRoom reports whether user name ("uN") is in c's room.
func sameRoom(name string, c *benchClient, rooms int) bool {
	i, _ := strconv.Atoi(strings.TrimPrefix(name, "u"))
	return i%rooms == c.room
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)*p/100]
}
