//go:build linux

package signal

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLoad1000 logs in 1,000 clients at once to a server with the
// default Config on loopback, then relays offers between random pairs. It
// measures and prints; it passes or fails only on correctness. The
// clients come from loadAddrs loopback addresses, as from a crowd of
// hosts, each within the per-address limits (Config.MaxUsersPerAddr).
//
//	go test -run '^$' -bench BenchmarkLoad1000 -benchtime 1x ./signal/
func BenchmarkLoad1000(b *testing.B) { benchLoad(b, 1) }

// BenchmarkLoad1000Rooms100 is BenchmarkLoad1000 with the 1,000 clients in
// 100 rooms of 10 (at /ws/roomNNN): each list holds its room, offers go
// between users of one room.
//
//	go test -run '^$' -bench BenchmarkLoad1000Rooms100 -benchtime 1x ./signal/
func BenchmarkLoad1000Rooms100(b *testing.B) { benchLoad(b, 100) }

func benchLoad(b *testing.B, rooms int) {
	const users, offers = 1000, 2000
	needLoopbackAddrs(b)
	raiseFileLimit(b, 2*users+512)
	for range b.N {
		r := runLoad(b, users, offers, rooms)
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(r.loggedIn.Milliseconds()), "login-all-ms")
		b.ReportMetric(float64(r.listed.Milliseconds()), "full-list-ms")
		b.ReportMetric(us(r.seq[len(r.seq)/2]), "relay-p50-µs")
		b.ReportMetric(us(r.seq[len(r.seq)*99/100]), "relay-p99-µs")
		b.ReportMetric(us(r.burst[len(r.burst)/2]), "burst-p50-µs")
		b.ReportMetric(us(r.burst[len(r.burst)*99/100]), "burst-p99-µs")
		b.ReportMetric(float64(r.hostRSS)/(1<<20), "host-peak-RSS-MiB")
		b.ReportMetric(float64(r.peakRSS)/(1<<20), "clients-peak-RSS-MiB")
		fmt.Printf("load: %d clients in %d room(s) logged in after %v, all with the full %d-user list after %v; "+
			"relay of %d offers one at a time p50 %v p99 %v max %v; %d sent at once p50 %v p99 %v max %v; host peak RSS %.0f MiB (its own process); the 1,000 clients' process %.0f MiB\n",
			users, rooms, r.loggedIn.Round(time.Millisecond), users/rooms, r.listed.Round(time.Millisecond),
			offers, r.seq[len(r.seq)/2], r.seq[len(r.seq)*99/100], r.seq[len(r.seq)-1],
			offers, r.burst[len(r.burst)/2], r.burst[len(r.burst)*99/100], r.burst[len(r.burst)-1],
			float64(r.hostRSS)/(1<<20), float64(r.peakRSS)/(1<<20))
	}
}

// loadAddrs is how many source addresses (127.0.0.2 on) the load's
// clients come from.
const loadAddrs = 16

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

type loadResult struct {
	loggedIn, listed time.Duration
	seq, burst       []time.Duration // sorted
	peakRSS          int64           // the clients' process
	hostRSS          int64           // the host's own process
}

// TestMain lets the test binary run the host alone in a child process
// (LANFT_LOAD_SERVER=1), so that the benchmark can read the host's own
// peak RSS apart from its 1,000 clients'.
func TestMain(m *testing.M) {
	if os.Getenv("LANFT_LOAD_SERVER") == "1" {
		os.Exit(serveForLoad())
	}
	os.Exit(m.Run())
}

func serveForLoad() int {
	srv, err := NewServer(Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("ws://%s%s\n", ln.Addr(), Path)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }() // ends when the parent closes stdin
	if err := srv.Serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startLoadServer runs the host in a child process and returns its URL
// and a function that reads its peak RSS and stops it.
func startLoadServer(b *testing.B) (string, func() int64) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "LANFT_LOAD_SERVER=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatalf("load server: %v", err)
	}
	return strings.TrimSpace(line), func() int64 {
		rss := peakRSSOf(b, fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		stdin.Close()
		cmd.Wait()
		return rss
	}
}

// runLoad spreads users over rooms (1: all in the default room); users must
// be a multiple of rooms.
func runLoad(b *testing.B, users, offers, rooms int) loadResult {
	var r loadResult
	url, stopServer := startLoadServer(b)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			r.hostRSS = stopServer()
		}
	}
	defer stop()

	// Log in everyone at once.
	clients := make([]*Client, users)
	errs := make([]error, users)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			u := url
			if rooms > 1 {
				u = fmt.Sprintf("%s/room%03d", url, i%rooms)
			}
			clients[i], errs[i] = Dial(ctx, ClientConfig{URL: u, Name: fmt.Sprintf("user%04d", i),
				NetDialContext: fromAddr(fmt.Sprintf("127.0.0.%d", 2+i%loadAddrs))})
		})
	}
	wg.Wait()
	r.loggedIn = time.Since(start)
	for i, err := range errs {
		if err != nil {
			b.Fatalf("client %d: %v", i, err)
		}
	}

	runCtx, stopRuns := context.WithCancel(context.Background())
	var runs sync.WaitGroup
	defer func() {
		stopRuns()
		stop()
		runs.Wait()
	}()
	for _, c := range clients {
		runs.Go(func() { c.Run(runCtx) })
	}

	// Wait until every client's list, built from userlist and updata,
	// holds all users of its room.
	perRoom := users / rooms
	listed := make([]time.Duration, users)
	for i, c := range clients {
		wg.Go(func() {
			deadline := time.After(time.Minute)
			for len(c.Peers()) != perRoom {
				select {
				case <-c.Changes():
				case <-deadline:
					return
				}
			}
			listed[i] = time.Since(start)
		})
	}
	wg.Wait()
	for i, d := range listed {
		if d == 0 {
			b.Fatalf("%s sees %d users after a minute, want %d", clients[i].Name(), len(clients[i].Peers()), perRoom)
		}
	}
	r.listed = slices.Max(listed)

	// Offers between random pairs of one room, one at a time: the relay's
	// latency. Client i is in room i%rooms.
	rng := rand.New(rand.NewPCG(1, 2))
	pair := func() (*Client, *Client) {
		i := rng.IntN(users)
		j := (i + rooms*(1+rng.IntN(perRoom-1))) % users
		return clients[i], clients[j]
	}
	for k := range offers {
		from, to := pair()
		t0 := time.Now()
		if err := from.Send(Message{Type: TypeOffer, OtherName: to.Name(), Offer: offerPayload(k, t0)}); err != nil {
			b.Fatal(err)
		}
		select {
		case m := <-to.Messages():
			if m.Type != TypeOffer || m.Name != from.Name() {
				b.Fatalf("%s got %+v, want %s's offer", to.Name(), m, from.Name())
			}
			r.seq = append(r.seq, time.Since(t0))
		case <-time.After(waitFor):
			b.Fatalf("offer %d from %s to %s not relayed", k, from.Name(), to.Name())
		}
	}

	// The same number sent at once: latency under load.
	type delivery struct {
		k int
		d time.Duration
	}
	got := make(chan delivery, offers)
	recvCtx, stopRecv := context.WithCancel(context.Background())
	var recv sync.WaitGroup
	for _, c := range clients {
		recv.Go(func() {
			for {
				select {
				case m := <-c.Messages():
					var p struct {
						K    int   `json:"k"`
						Sent int64 `json:"sent"`
					}
					if json.Unmarshal(m.Offer, &p) == nil {
						got <- delivery{p.K, time.Since(time.Unix(0, p.Sent))}
					}
				case <-recvCtx.Done():
					return
				}
			}
		})
	}
	froms, tos := make([]*Client, offers), make([]*Client, offers)
	for k := range offers {
		froms[k], tos[k] = pair()
	}
	for k := range offers {
		wg.Go(func() {
			froms[k].Send(Message{Type: TypeOffer, OtherName: tos[k].Name(), Offer: offerPayload(k, time.Now())})
		})
	}
	wg.Wait()
	seen := make(map[int]bool, offers)
	timeout := time.After(waitFor)
	for len(seen) < offers {
		select {
		case d := <-got:
			seen[d.k] = true
			r.burst = append(r.burst, d.d)
		case <-timeout:
			b.Fatalf("%d of %d offers sent at once arrived", len(seen), offers)
		}
	}
	stopRecv()
	recv.Wait()

	slices.Sort(r.seq)
	slices.Sort(r.burst)
	r.peakRSS = peakRSSOf(b, "/proc/self/status")
	stop()
	return r
}

func offerPayload(k int, sent time.Time) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"offer","k":%d,"sent":%d,"sdp":"v=0\r\no=- %d 2 IN IP4 127.0.0.1\r\ns=-\r\n"}`,
		k, sent.UnixNano(), k))
}

// peakRSSOf reads a process's peak resident set (VmHWM) from its status file.
func peakRSSOf(b *testing.B, status string) int64 {
	f, err := os.Open(status)
	if err != nil {
		b.Logf("peak RSS: %v", err)
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to at least n (each client
// here costs two descriptors, its own and the server's).
func raiseFileLimit(b *testing.B, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		b.Skipf("RLIMIT_NOFILE hard limit %d, need %d", lim.Max, n)
	}
	old := lim.Cur
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("setrlimit: %v", err)
	}
	b.Cleanup(func() {
		lim.Cur = old
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	})
}
