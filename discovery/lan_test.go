package discovery

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// The multi-host tests run real mDNS between processes in network
// namespaces (internal/netns). The test binary is the program: with
// LANFT_DISCOVERY_HELPER=1 it runs one Discovery on LANFT_IFACE and prints
// each State as a JSON line until it is killed. Its debug log goes to
// stderr, shown when a test fails or LANFT_SHOW_STDERR is set.

func TestMain(m *testing.M) {
	if os.Getenv("LANFT_DISCOVERY_HELPER") == "1" {
		os.Exit(runHelper())
	}
	os.Exit(m.Run())
}

// helperLine is one line of the helper's output.
type helperLine struct {
	State State
}

func runHelper() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	// Safety: mDNS only on a named interface, and never in the machine's
	// own network namespace.
	iface := os.Getenv("LANFT_IFACE")
	if iface == "" {
		return fail(errors.New("LANFT_IFACE is required"))
	}
	if err := inNamespace(os.Getenv("LANFT_NETNS")); err != nil {
		return fail(err)
	}
	prio, _ := strconv.Atoi(os.Getenv("LANFT_PRIO"))
	port, _ := strconv.Atoi(os.Getenv("LANFT_PORT"))
	d, err := New(Config{
		Self:       Self{ID: os.Getenv("LANFT_ID"), Name: os.Getenv("LANFT_ID"), Priority: prio, Port: port},
		Interfaces: []string{iface},
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		enc := json.NewEncoder(os.Stdout)
		for st := range d.Updates() {
			if err := enc.Encode(helperLine{State: st}); err != nil {
				stop()
			}
		}
	})
	err = d.Run(ctx)
	wg.Wait()
	if err != nil {
		return fail(err)
	}
	return 0
}

// inNamespace checks that this process runs in the named network namespace
// (one a test made), never in the machine's own.
func inNamespace(name string) error {
	if name == "" || strings.ContainsRune(name, '/') {
		return fmt.Errorf("refusing to run: LANFT_NETNS %q does not name a test namespace", name)
	}
	var want, got syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+name, &want); err != nil {
		return fmt.Errorf("refusing to run: %w", err)
	}
	if err := syscall.Stat("/proc/self/ns/net", &got); err != nil {
		return fmt.Errorf("refusing to run: %w", err)
	}
	if want.Dev != got.Dev || want.Ino != got.Ino {
		return fmt.Errorf("refusing to run outside the test namespace %s", name)
	}
	return nil
}

// cluster tracks the helper processes of one test and their latest states.
type cluster struct {
	t   testing.TB
	lan *netns.LAN
	exe string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every new state
	procs   map[string]*proc
}

type proc struct {
	id     string
	host   int // LAN host number
	port   int
	cmd    *exec.Cmd
	stderr *lanfttest.SyncBuffer
	done   chan struct{} // stdout closed
	state  State         // guarded by cluster.mu
	alive  bool          // guarded by cluster.mu
	closed bool          // stdout closed (the process ended); guarded by cluster.mu
}

func newCluster(t testing.TB, hosts int) *cluster {
	lan := netns.NewLAN(t, hosts)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, lan: lan, exe: exe, changed: make(chan struct{}), procs: map[string]*proc{}}
}

// start runs an instance named id on LAN host `host`.
func (c *cluster) start(id string, host, port int) *proc {
	t := c.t
	t.Helper()
	cmd := c.lan.Command(context.Background(), host, c.exe)
	cmd.Env = append(os.Environ(),
		"LANFT_DISCOVERY_HELPER=1",
		"LANFT_IFACE="+c.lan.Iface(host),
		"LANFT_NETNS="+c.lan.Namespace(host),
		"LANFT_ID="+id,
		"LANFT_PORT="+strconv.Itoa(port),
	)
	p := &proc{id: id, host: host, port: port, cmd: cmd, stderr: &lanfttest.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s on host %d: %v", id, host, err)
	}
	c.mu.Lock()
	c.procs[id] = p
	p.alive = true
	c.mu.Unlock()
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l helperLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("%s: bad line %q: %v", id, sc.Text(), err)
				continue
			}
			c.mu.Lock()
			p.state = l.State
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
		}
		c.mu.Lock()
		p.closed = true
		close(c.changed) // waitFor notices an unexpected exit at once
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}()
	t.Cleanup(func() {
		c.kill(p)
		if t.Failed() || os.Getenv("LANFT_SHOW_STDERR") != "" {
			t.Logf("stderr of %s (last 4 KiB):\n%s", id, p.stderr.Tail(4096))
		}
	})
	return p
}

// kill ends p's process with SIGKILL: no goodbye, as a crash.
func (c *cluster) kill(p *proc) {
	c.mu.Lock()
	p.alive = false
	c.mu.Unlock()
	p.cmd.Process.Kill()
	<-p.done
	p.cmd.Wait()
}

// waitAgreed waits until the given processes agree (see agreement) and
// their HostURL points at the host process's address and port. It returns
// the host's id and the time it took from `since`.
func (c *cluster) waitAgreed(what string, since time.Time, limit time.Duration, ps ...*proc) (*proc, time.Duration) {
	c.t.Helper()
	var host *proc
	took := c.waitFor(what, since, limit, func() bool {
		states := map[string]State{}
		for _, p := range ps {
			states[p.id] = p.state
		}
		id, ok := agreement(states)
		if !ok {
			return false
		}
		host = c.procs[id]
		want := fmt.Sprintf("ws://%s:%d/ws", c.lan.Addr(host.host), host.port)
		for _, p := range ps {
			if got := p.state.HostURL(); got != want {
				return false
			}
		}
		return true
	}, ps...)
	return host, took
}

// waitFor waits for cond (called with c.mu held) to hold after each new
// state, until limit has passed since `since`. It fails at once if one of
// the shown processes ends without having been killed.
func (c *cluster) waitFor(what string, since time.Time, limit time.Duration, cond func() bool, show ...*proc) time.Duration {
	c.t.Helper()
	deadline := time.NewTimer(time.Until(since.Add(limit)))
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok, changed := cond(), c.changed
		var b strings.Builder
		var died *proc
		for _, p := range show {
			fmt.Fprintf(&b, "\n  %s (host %d): peers %s host %q url %q IAmHost %v", p.id, p.host, peerIDs(p.state), p.state.Host.ID, p.state.HostURL(), p.state.IAmHost)
			if p.closed && p.alive {
				died = p
			}
		}
		c.mu.Unlock()
		if ok {
			return time.Since(since)
		}
		if died != nil {
			c.t.Fatalf("%s: %s (host %d) ended without being killed:%s", what, died.id, died.host, b.String())
		}
		select {
		case <-changed:
		case <-deadline.C:
			c.t.Fatalf("%s: not within %v:%s", what, limit, b.String())
		}
	}
}

func TestLANDiscoveryAndFailover(t *testing.T) {
	c := newCluster(t, 3)
	begin := time.Now()
	ps := []*proc{c.start("a", 1, 8001), c.start("b", 2, 8002), c.start("c", 3, 8003)}

	listed := c.waitFor("each lists the other two", begin, 3*time.Second, func() bool {
		for _, p := range ps {
			if peerIDs(p.state) != "a,b,c" {
				return false
			}
		}
		return true
	}, ps...)
	host, took := c.waitAgreed("one host", begin, 3*time.Second, ps...)
	t.Logf("discovery: all list each other after %v; agreed on host %s after %v", listed.Round(time.Millisecond), host.id, took.Round(time.Millisecond))

	killed := time.Now()
	c.kill(host)
	var rest []*proc
	for _, p := range ps {
		if p != host {
			rest = append(rest, p)
		}
	}
	newHost, took := c.waitAgreed("failover after killing the host", killed, 5*time.Second, rest...)
	t.Logf("failover: host %s killed; %s agreed as new host after %v", host.id, newHost.id, took.Round(time.Millisecond))

	// The old host comes back as a new process: it joins without deposing.
	back := time.Now()
	ps = append(rest, c.start("a2", host.host, host.port))
	again, took := c.waitAgreed("restarted instance joins", back, 3*time.Second, ps...)
	if again != newHost {
		t.Errorf("host after restart %s, want %s to stay", again.id, newHost.id)
	}
	t.Logf("restart: a new instance on host %d listed and agreeing after %v", host.host, took.Round(time.Millisecond))
}

func TestLANPartitionMerge(t *testing.T) {
	c := newCluster(t, 3)
	begin := time.Now()
	ps := []*proc{c.start("a", 1, 8001), c.start("b", 2, 8002), c.start("c", 3, 8003)}
	host, _ := c.waitAgreed("one host", begin, 3*time.Second, ps...)

	others := func(x *proc) []*proc {
		var out []*proc
		for _, p := range ps {
			if p != x {
				out = append(out, p)
			}
		}
		return out
	}

	// Cut a non-host off until it elects itself, then heal.
	cut := others(host)[0]
	cutAt := time.Now()
	c.lan.Cut(cut.host)
	took := c.waitFor("isolated instance elects itself", cutAt, 10*time.Second, func() bool {
		return cut.state.IAmHost && peerIDs(cut.state) == cut.id
	}, cut)
	c.waitAgreed("the rest keep their host", cutAt, 10*time.Second, others(cut)...)
	t.Logf("partition: isolated %s elected itself after %v", cut.id, took.Round(time.Millisecond))
	healed := time.Now()
	c.lan.Restore(cut.host)
	merged, took := c.waitAgreed("one host after healing", healed, 10*time.Second, ps...)
	if merged != host {
		t.Errorf("host after merge %s, want %s (the older host)", merged.id, host.id)
	}
	t.Logf("merge: one host (%s) after %v from healing a non-host", merged.id, took.Round(time.Millisecond))

	// Cut the host: the rest elect another; after healing, the older host
	// wins and the newer one steps down.
	cutAt = time.Now()
	c.lan.Cut(host.host)
	second, took := c.waitAgreed("the rest elect a new host", cutAt, 10*time.Second, others(host)...)
	t.Logf("partition: %s cut, %s elected by the rest after %v", host.id, second.id, took.Round(time.Millisecond))
	healed = time.Now()
	c.lan.Restore(host.host)
	merged, took = c.waitAgreed("one host after healing the old host", healed, 10*time.Second, ps...)
	if merged != host {
		t.Errorf("host after merge %s, want %s (the older host)", merged.id, host.id)
	}
	t.Logf("merge: one host (%s) after %v from healing the old host", merged.id, took.Round(time.Millisecond))
}

// TestLANTwoOnOneHost runs two instances in one namespace (lanft share and
// lanft receive on one laptop) and one on another host.
func TestLANTwoOnOneHost(t *testing.T) {
	c := newCluster(t, 2)
	begin := time.Now()
	ps := []*proc{c.start("a", 1, 8001), c.start("b", 1, 8002), c.start("c", 2, 8003)}
	host, took := c.waitAgreed("one host", begin, 3*time.Second, ps...)
	t.Logf("two instances on host 1, one on host 2: agreed on %s after %v", host.id, took.Round(time.Millisecond))

	killed := time.Now()
	c.kill(host)
	var rest []*proc
	for _, p := range ps {
		if p != host {
			rest = append(rest, p)
		}
	}
	newHost, took := c.waitAgreed("failover", killed, 5*time.Second, rest...)
	t.Logf("failover: %s killed, %s host after %v", host.id, newHost.id, took.Round(time.Millisecond))
}
