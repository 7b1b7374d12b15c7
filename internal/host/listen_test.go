package host

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/lanft/lanft/discovery"
)

// loop127 are loopback addresses: on Linux all of 127.0.0.0/8 is this
// machine's, so tests listen on several without root.
func loop127(last ...byte) []serveAddr {
	var out []serveAddr
	for _, b := range last {
		out = append(out, serveAddr{addr: netip.AddrFrom4([4]byte{127, 0, 0, b})})
	}
	return out
}

// servedSet opens a listenSet on want and serves "ok" over HTTP on it.
func servedSet(t *testing.T, want []serveAddr, prefer int) *listenSet {
	t.Helper()
	s := newListenSet(slog.New(slog.DiscardHandler))
	if err := s.open(want, prefer); err != nil {
		t.Fatal(err)
	}
	s.serve()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(s) }()
	t.Cleanup(func() { srv.Close(); s.Close(); <-done })
	return s
}

// get fetches http://addr:port/ and returns the body or the error.
func get(addr netip.Addr, port int) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + net.JoinHostPort(addr.String(), strconv.Itoa(port)) + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func mustAnswer(t *testing.T, a netip.Addr, port int) {
	t.Helper()
	if body, err := get(a, port); err != nil || body != "ok" {
		t.Errorf("%s:%d: got %q, %v; want ok", a, port, body, err)
	}
}

func mustRefuse(t *testing.T, a netip.Addr, port int) {
	t.Helper()
	if _, err := get(a, port); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%s:%d: got %v; want the connection refused", a, port, err)
	}
}

// TestListenSetFollowsAddresses: one port on every address asked for;
// an address added later gets a listener on that port, one dropped loses
// its listener while the others keep answering.
func TestListenSetFollowsAddresses(t *testing.T) {
	s := servedSet(t, loop127(1, 2), 0)
	a1, a2, a3 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	mustAnswer(t, a1, s.port)
	mustAnswer(t, a2, s.port)
	mustRefuse(t, a3, s.port)

	if missing := s.set(loop127(1, 3)); missing {
		t.Fatal("set reports an address without a listener")
	}
	mustAnswer(t, a1, s.port)
	mustRefuse(t, a2, s.port)
	mustAnswer(t, a3, s.port)
	if got := s.addrs(); len(got) != 2 || got[0] != a1 || got[1] != a3 {
		t.Errorf("addrs() = %v, want [%s %s]", got, a1, a3)
	}
}

// TestListenSetPortTakenElsewhere: the preferred port is held on one of
// the addresses by another program: the set moves to a port free on all.
func TestListenSetPortTakenElsewhere(t *testing.T) {
	other, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	taken := other.Addr().(*net.TCPAddr).Port
	s := servedSet(t, loop127(1, 2), taken)
	if s.port == taken {
		t.Fatalf("listening on port %d, which another program holds on 127.0.0.2", taken)
	}
	mustAnswer(t, netip.MustParseAddr("127.0.0.1"), s.port)
	mustAnswer(t, netip.MustParseAddr("127.0.0.2"), s.port)

	// Later, an address where another program holds our port: no
	// listener there (reported missing), the others unharmed.
	blocker, err := net.Listen("tcp", net.JoinHostPort("127.0.0.4", strconv.Itoa(s.port)))
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	if missing := s.set(loop127(1, 2, 4)); !missing {
		t.Error("set does not report 127.0.0.4, where the port is taken")
	}
	mustAnswer(t, netip.MustParseAddr("127.0.0.1"), s.port)
}

// TestListenSetClose: after Close, nothing answers and set adds nothing.
func TestListenSetClose(t *testing.T) {
	s := servedSet(t, loop127(1), 0)
	s.Close()
	mustRefuse(t, netip.MustParseAddr("127.0.0.1"), s.port)
	s.set(loop127(1, 5))
	mustRefuse(t, netip.MustParseAddr("127.0.0.5"), s.port)
	if _, err := s.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

// TestServeAddrs: the interfaces' addresses in order, then loopback's,
// each once.
func TestServeAddrs(t *testing.T) {
	local := []discovery.LocalAddr{
		{Iface: "v1", Addr: netip.MustParseAddr("10.0.0.1")},
		{Iface: "v1", Addr: netip.MustParseAddr("fe80::1%v1")},
		{Iface: "lo", Addr: netip.MustParseAddr("127.0.0.1")},
	}
	got := serveAddrs(local, []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")})
	want := []serveAddr{
		{"v1", netip.MustParseAddr("10.0.0.1")},
		{"v1", netip.MustParseAddr("fe80::1%v1")},
		{"lo", netip.MustParseAddr("127.0.0.1")},
		{"", netip.MustParseAddr("::1")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] got %v, want %v", i, got[i], want[i])
		}
	}
}
