package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lanft/lanft/discovery"
	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// socketTable reads the sockets of namespace ns from /proc/net/<proto>
// and <proto>6 ("tcp" or "udp"): the local address of each, of those in
// the kernel state state (hex, "0A" is LISTEN; "" for any).
func socketTable(t *testing.T, ns, proto, state string) []netip.AddrPort {
	t.Helper()
	var out []netip.AddrPort
	for _, file := range []string{"/proc/net/" + proto, "/proc/net/" + proto + "6"} {
		b, err := exec.Command("ip", "netns", "exec", ns, "cat", file).Output()
		if err != nil {
			t.Fatalf("read %s in %s: %v", file, ns, err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || state != "" && f[3] != state {
				continue
			}
			ap, err := procAddr(f[1])
			if err != nil {
				t.Fatalf("%s: %q: %v", file, f[1], err)
			}
			out = append(out, ap)
		}
	}
	return out
}

// procAddr parses a /proc/net address: hex words in host (little-endian)
// order, a colon, a hex port.
func procAddr(s string) (netip.AddrPort, error) {
	host, port, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(host)
	p, perr := strconv.ParseUint(port, 16, 16)
	if !ok || err != nil || perr != nil || len(raw)%4 != 0 {
		return netip.AddrPort{}, fmt.Errorf("not an address")
	}
	for i := 0; i < len(raw); i += 4 { // each 32-bit word to network order
		binary.BigEndian.PutUint32(raw[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), nil
}

// dialIn returns a dialer whose connections start in namespace ns.
func dialIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := netns.DoIn(ns, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// connectFrom tries a TCP connection from ns to to within 3 s.
func connectFrom(ns string, to netip.AddrPort) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := dialIn(ns)(ctx, "tcp", to.String())
	if err == nil {
		c.Close()
	}
	return err
}

// pageStatus fetches url from namespace ns: its status code, or the error.
func pageStatus(ns, url string) (int, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dialIn(ns), DisableKeepAlives: true}}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// listenOn opens a plain listener of the test's own in namespace ns, for
// showing that a path carries connections at all.
func listenOn(t *testing.T, ns string, a netip.Addr) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	if err := netns.DoIn(ns, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// TestLANListensOnlyOnTheLAN: a sharer with a second link without
// multicast (a VPN, a container's) listens only on its LAN address and
// loopback, each socket bound to its interface: from the far end of the
// second link no lanft port answers, on the link's address or on the LAN
// address routed over that link, the page does not load, mDNS queries get
// no answer, and a receive pointed at the sharer's address there gets
// nothing. ICE keeps off that
// link too, while a receiver on the LAN gets the file.
func TestLANListensOnlyOnTheLAN(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	far := lan.AddLink(1)
	h1 := lan.Namespace(1)
	src := filepath.Join(t.TempDir(), "lan-only.bin")
	lanfttest.WriteRandom(t, src, 8<<20)
	// No --interface: discovery's own choice, which skips the link
	// without multicast.
	share, stdin := lanfttest.StartWithStdin(t, "ip", "netns", "exec", h1, lanftBin, "--config-dir", t.TempDir(),
		"share", "--name", "alice", "--ask", "--json", src)
	share.WaitLine(t, `"event":"online"`, 30*time.Second)

	listening := socketTable(t, h1, "tcp", "0A")
	t.Logf("the sharer's namespace listens on TCP %v", listening)
	var ports []uint16
	onLAN := false
	for _, ap := range listening {
		switch a := ap.Addr(); {
		case a.IsUnspecified():
			t.Errorf("a socket listens on every address: %s", ap)
		case a == far.HostAddr:
			t.Errorf("a socket listens on the second link's address: %s", ap)
		case a == lan.Addr(1):
			onLAN = true
		case !a.IsLoopback():
			t.Errorf("a socket listens on %s, neither the LAN address nor loopback", ap)
		}
		// The hello port answers only discovery's unicast probes
		// (discovery.DefaultHelloPort), on the same addresses.
		if ap.Port() != discovery.DefaultHelloPort && !slices.Contains(ports, ap.Port()) {
			ports = append(ports, ap.Port())
		}
	}
	if len(ports) != 1 {
		t.Fatalf("want one port for the page and signaling (and the hello port %d), got %v", discovery.DefaultHelloPort, listening)
	}
	if !onLAN {
		t.Errorf("no socket listens on the LAN address %s: %v", lan.Addr(1), listening)
	}
	port := ports[0]

	// The far end reaches the sharer over the link (a listener of the
	// test's own answers on either address, the LAN one routed over the
	// link), but no lanft port.
	if out, err := exec.Command("ip", "-n", far.NS, "route", "add", lan.Prefix(1).Masked().String(), "dev", far.FarIface).CombinedOutput(); err != nil {
		t.Fatalf("route the LAN over the link: %v: %s", err, out)
	}
	for _, a := range []netip.Addr{far.HostAddr, lan.Addr(1)} {
		if control := listenOn(t, h1, a); connectFrom(far.NS, control) != nil {
			t.Fatalf("the far namespace cannot reach a plain listener at %s: the test proves nothing", control)
		}
		for _, p := range ports {
			to := netip.AddrPortFrom(a, p)
			if err := connectFrom(far.NS, to); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("TCP %s from the second link: %v, want the connection refused", to, err)
			}
		}
	}
	checkMDNSOnlyOnTheLAN(t, lan, far)
	pageURL := "http://" + netip.AddrPortFrom(far.HostAddr, port).String() + "/"
	if code, err := pageStatus(far.NS, pageURL); err == nil {
		t.Errorf("the page at %s answered %d from the second link", pageURL, code)
	}
	if code, err := pageStatus(lan.Namespace(2), "http://"+netip.AddrPortFrom(lan.Addr(1), port).String()+"/"); err != nil || code != http.StatusOK {
		t.Errorf("the page from the LAN: %d, %v; want 200", code, err)
	}

	// A receiver on the LAN: while the sharer is asked about it, ICE's
	// sockets are open; none is on the second link.
	lanOut := t.TempDir()
	recv := onHost(t, lan, 2, "receive", "--name", "bob", "--from", "alice", "--yes", "--json", "--out", lanOut)
	share.WaitLine(t, `"event":"ask"`, 60*time.Second)
	udp := socketTable(t, h1, "udp", "")
	t.Logf("the sharer's namespace has UDP sockets %v", udp)
	iceOnLAN := false
	for _, ap := range udp {
		switch a := ap.Addr(); {
		case a == far.HostAddr:
			t.Errorf("a UDP socket is bound on the second link's address: %s", ap)
		case a == lan.Addr(1) && ap.Port() != 5353:
			iceOnLAN = true
		}
	}
	if !iceOnLAN {
		t.Errorf("no UDP socket on the LAN address while connected: the check above proves nothing")
	}
	fmt.Fprintln(stdin, `{"peer":"bob","accept":true}`)
	recv.WaitLine(t, `"event":"done"`, 60*time.Second)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive on the LAN exited %d: %s", code, recv.Stderr())
	}
	lanfttest.SameFile(t, src, filepath.Join(lanOut, "lan-only.bin"))

	// A receive pointed at the sharer's address on the second link. The
	// sharer would accept it if asked (the line waits on its stdin), so
	// only the listeners stand in its way.
	fmt.Fprintln(stdin, `{"peer":"mallory","accept":true}`)
	out := t.TempDir()
	stdout, stderr, code := lanfttest.Run(t, time.Minute, "ip", "netns", "exec", far.NS, lanftBin, "--config-dir", t.TempDir(),
		"receive", "--signal", "ws://"+netip.AddrPortFrom(far.HostAddr, port).String()+"/ws", "--name", "mallory", "--from", "alice", "--yes", "--out", out)
	if code == 0 {
		t.Errorf("a receive over the second link succeeded:\n%s%s", stdout, stderr)
	}
	emptyFolder(t, out)
	t.Logf("the receive over the second link: exit %d: %s", code, lastLine(t, stderr, ""))
}

// TestLANListenerFollowsAddresses: an address added to the LAN interface
// after the start gets a listener on the same port within a few query
// intervals, and loses it when the address is removed.
func TestLANListenerFollowsAddresses(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	h1 := lan.Namespace(1)
	f := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(f, []byte("x"), 0o644)
	share := onHost(t, lan, 1, "share", "--name", "alice", "--json", f)
	share.WaitLine(t, `"event":"online"`, 30*time.Second)
	var port uint16
	for _, ap := range socketTable(t, h1, "tcp", "0A") {
		// The page's port, not the hello port of discovery's probes.
		if ap.Addr() == lan.Addr(1) && ap.Port() != discovery.DefaultHelloPort {
			port = ap.Port()
		}
	}
	if port == 0 {
		t.Fatalf("no listener on %s", lan.Addr(1))
	}
	added := lan.Addr(1).As4()
	added[3] = 201
	extra := netip.AddrPortFrom(netip.AddrFrom4(added), port)
	prefix := netip.PrefixFrom(extra.Addr(), 24).String()
	listens := func() bool { return slices.Contains(socketTable(t, h1, "tcp", "0A"), extra) }
	// waitFor polls the socket table (the kernel tells of no change)
	// until it shows want, within limit.
	waitFor := func(want bool, limit time.Duration) time.Duration {
		start := time.Now()
		for listens() != want {
			if time.Since(start) > limit {
				t.Fatalf("listening on %s: still %v after %s", extra, !want, limit)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(start)
	}
	if listens() {
		t.Fatalf("listening on %s before it exists", extra)
	}

	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", h1}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("addr", "add", prefix, "dev", lan.Iface(1))
	took := waitFor(true, 15*time.Second)
	t.Logf("listening on the new address %s %v after it was added", extra, took.Round(time.Millisecond))
	if code, err := pageStatus(lan.Namespace(2), "http://"+extra.String()+"/"); err != nil || code != http.StatusOK {
		t.Errorf("the page at the new address: %d, %v; want 200", code, err)
	}

	ip("addr", "del", prefix, "dev", lan.Iface(1))
	took = waitFor(false, 15*time.Second)
	t.Logf("the listener on %s closed %v after the address was removed", extra, took.Round(time.Millisecond))
	if code, err := pageStatus(lan.Namespace(2), "http://"+netip.AddrPortFrom(lan.Addr(1), port).String()+"/"); err != nil || code != http.StatusOK {
		t.Errorf("the page at the first address afterwards: %d, %v; want 200", code, err)
	}
}

// checkMDNSOnlyOnTheLAN: the sharer on host 1 of lan has a responder
// socket on UDP 5353 of every address (it must, to hear the group), yet
// answers only what came in on the LAN from the LAN. From the LAN, a query
// to the group or to the sharer's address gets alice's record; from the far
// end of link (its route to the LAN over the link already in place), a
// query to the sharer's address on the link, to its LAN address, to its
// link-local IPv6 address on the link, or to the group over the link, gets
// no answer at all.
func checkMDNSOnlyOnTheLAN(t *testing.T, lan *netns.LAN, far netns.Link) {
	t.Helper()
	h1 := lan.Namespace(1)
	mdns := func(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, 5353) }
	group := mdns(netip.AddrFrom4([4]byte{224, 0, 0, 251}))
	if udp := socketTable(t, h1, "udp", ""); !slices.Contains(udp, mdns(netip.IPv4Unspecified())) {
		t.Fatalf("no UDP socket on 0.0.0.0:5353 in the sharer's namespace (%v): the checks below prove nothing", udp)
	}
	for _, to := range []netip.AddrPort{group, mdns(lan.Addr(1))} {
		if names := askMDNS(t, lan.Namespace(2), to, lan.Iface(2), 5*time.Second, "alice"); !slices.Contains(names, "alice") {
			t.Errorf("mDNS query from the LAN to %s: answers name %q, want alice", to, names)
		}
	}

	targets := []netip.AddrPort{mdns(far.HostAddr), mdns(lan.Addr(1))}
	hostLL, ok1 := linkLocal(t, h1, far.HostIface)
	_, ok2 := linkLocal(t, far.NS, far.FarIface)
	if ok1 && ok2 {
		targets = append(targets, mdns(hostLL.WithZone(far.FarIface)))
	} else {
		t.Logf("no usable IPv6 on the link: no query over IPv6")
	}
	for _, to := range targets {
		if names := askMDNS(t, far.NS, to, far.FarIface, 2*time.Second, ""); len(names) > 0 {
			t.Errorf("mDNS query from the second link to %s: answered, naming %q", to, names)
		}
	}

	// The group over the link reaches port 5353 in the sharer's namespace
	// once a socket there (as avahi's would) joined it on the link.
	heard := groupListener(t, h1, far.HostIface)
	if names := askMDNS(t, far.NS, group, far.FarIface, 2*time.Second, ""); len(names) > 0 {
		t.Errorf("mDNS query to the group over the second link: answered, naming %q", names)
	}
	select {
	case from := <-heard:
		t.Logf("the group query over the link reached the sharer's port 5353 (from %s)", from)
	default:
		t.Errorf("the group query over the link never reached the sharer's namespace: that check proves nothing")
	}
}
