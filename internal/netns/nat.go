package netns

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// NAT kinds of a home router.
type NAT int

const (
	// HomeNAT keeps the source port where it can (endpoint-independent
	// mapping) and lets only established traffic back in: hole punching
	// between two of them works.
	HomeNAT NAT = iota
	// SymmetricNAT picks a new port per destination (masquerade
	// random,fully-random): only a relay gets through to it.
	SymmetricNAT
	// NoUDP is a HomeNAT that lets no UDP out (networks that allow only
	// TCP): only TURN over TCP gets through.
	NoUDP
)

// Internet is an "internet" (a bridge namespace) holding one server host
// at 10.99.0.100 and, behind it, one home network per router: router I is
// 10.99.0.I on the internet and 10.98.I.1 at home, and its one peer is
// 10.98.I.2 (interface "h0", default route through the router). Addresses
// are fixed: they exist only inside the run's own namespaces.
type Internet struct {
	t      testing.TB
	prefix string
	homes  []NAT
}

// NewInternet builds the internet and one home per entry of homes, and
// removes everything when the test ends. It calls Require first, and needs
// nft (Debian's nftables).
func NewInternet(t testing.TB, homes ...NAT) *Internet {
	t.Helper()
	Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("NAT tests need nft (apt-get install nftables), and CI=true: refusing to skip them")
		}
		t.Skip("NAT tests need nft (apt-get install nftables); skipped")
	}
	n := &Internet{t: t, prefix: fmt.Sprintf("lanft%d-%d", os.Getpid(), counter.Add(1)), homes: homes}
	inet := n.prefix + "-inet"
	n.addNS(inet)
	n.ip("-n", inet, "link", "add", "br0", "type", "bridge")
	n.ip("-n", inet, "link", "set", "br0", "up")

	srv := n.Server()
	n.addNS(srv)
	n.plug(srv, "w0", "ps", "10.99.0.100/24")

	for i, kind := range homes {
		i++
		r, p := n.router(i), n.Peer(i)
		n.addNS(r)
		n.addNS(p)
		n.plug(r, "w0", fmt.Sprintf("pr%d", i), fmt.Sprintf("10.99.0.%d/24", i))
		n.ip("link", "add", "l0", "netns", r, "type", "veth", "peer", "name", "h0", "netns", p)
		n.ip("-n", r, "addr", "add", fmt.Sprintf("10.98.%d.1/24", i), "dev", "l0")
		n.ip("-n", r, "link", "set", "l0", "up")
		n.ip("-n", p, "addr", "add", fmt.Sprintf("10.98.%d.2/24", i), "dev", "h0")
		n.ip("-n", p, "link", "set", "h0", "up")
		n.ip("-n", p, "link", "set", "lo", "up")
		n.ip("-n", p, "route", "add", "default", "via", fmt.Sprintf("10.98.%d.1", i))
		n.run("ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		// The input chain drops unsolicited datagrams to the router, as a
		// home router does. Without it, a peer's early hole-punching
		// datagram is delivered to the router (port unreachable) and its
		// conntrack entry is kept: the router's own later mapping to that
		// peer then clashes with it and masquerade picks another port, so
		// hole punching fails even between two "home" NATs.
		masq := "masquerade"
		if kind == SymmetricNAT {
			masq = "masquerade random,fully-random"
		}
		out := `iifname "l0" accept;`
		if kind == NoUDP {
			out = `iifname "l0" meta l4proto udp drop; iifname "l0" accept;`
		}
		rules := fmt.Sprintf(`table ip nat {
  chain pre { type nat hook prerouting priority -100; }
  chain post { type nat hook postrouting priority 100; oifname "w0" %s; }
}
table ip filter {
  chain fw { type filter hook forward priority 0; policy drop; ct state established,related accept; %s }
  chain in { type filter hook input priority 0; policy accept; iifname "w0" ct state new drop; }
}
`, masq, out)
		cmd := exec.Command("ip", "netns", "exec", r, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("netns: nft in %s: %v: %s", r, err, out)
		}
	}
	return n
}

// Server is the namespace of the host on the internet.
func (n *Internet) Server() string { return n.prefix + "-srv" }

// ServerAddr is the server's address, 10.99.0.100.
func (n *Internet) ServerAddr() netip.Addr { return netip.MustParseAddr("10.99.0.100") }

// Peer is the namespace of home i's peer (from 1).
func (n *Internet) Peer(i int) string { n.check(i); return fmt.Sprintf("%s-p%d", n.prefix, i) }

// PeerAddr is home i's peer's address, 10.98.I.2.
func (n *Internet) PeerAddr(i int) netip.Addr {
	n.check(i)
	return netip.AddrFrom4([4]byte{10, 98, byte(i), 2})
}

// RouterAddr is router i's address on the internet, 10.99.0.I: where the
// internet sees home i's peer.
func (n *Internet) RouterAddr(i int) netip.Addr {
	n.check(i)
	return netip.AddrFrom4([4]byte{10, 99, 0, byte(i)})
}

func (n *Internet) router(i int) string { return fmt.Sprintf("%s-r%d", n.prefix, i) }

func (n *Internet) check(i int) {
	if i < 1 || i > len(n.homes) {
		panic(fmt.Sprintf("netns: home %d of %d", i, len(n.homes)))
	}
}

// plug connects namespace ns to the internet's bridge with interface name
// at address.
func (n *Internet) plug(ns, name, port, addr string) {
	inet := n.prefix + "-inet"
	n.ip("link", "add", name, "netns", ns, "type", "veth", "peer", "name", port, "netns", inet)
	n.ip("-n", inet, "link", "set", port, "master", "br0", "up")
	n.ip("-n", ns, "addr", "add", addr, "dev", name)
	n.ip("-n", ns, "link", "set", name, "up")
	n.ip("-n", ns, "link", "set", "lo", "up")
}

func (n *Internet) addNS(name string) {
	n.ip("netns", "add", name)
	l := &LAN{t: n.t}
	n.t.Cleanup(func() { l.deleteNS(name) })
}

func (n *Internet) ip(args ...string) {
	n.t.Helper()
	n.run("ip", args...)
}

func (n *Internet) run(name string, args ...string) {
	n.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		n.t.Fatalf("netns: %s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// AddServer plugs one more server host into the internet, at 10.99.0.(100+i)
// for i from 2 to 99 (the first one is Server, 10.99.0.100), and returns its
// namespace and address.
func (n *Internet) AddServer(i int) (string, netip.Addr) {
	n.t.Helper()
	if i < 2 || i > 99 {
		n.t.Fatalf("netns: server %d, want 2-99", i)
	}
	ns := fmt.Sprintf("%s-srv%d", n.prefix, i)
	addr := netip.AddrFrom4([4]byte{10, 99, 0, byte(100 + i)})
	n.addNS(ns)
	n.plug(ns, "w0", fmt.Sprintf("ps%d", i), addr.String()+"/24")
	return ns, addr
}
