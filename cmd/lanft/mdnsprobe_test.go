package main

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/lanft/lanft/internal/netns"
)

// askMDNS sends lanft's browse query (PTR _lanft._tcp.local. with the QU
// bit, from a port of its own, as lanft's querier does) from namespace ns
// to `to`, out of interface out when to is a multicast group, and returns
// the instance names ("name=" in a lanft TXT record) of every answer heard
// within window, from anyone. It returns as soon as an answer names want
// (want "" waits the whole window).
func askMDNS(t *testing.T, ns string, to netip.AddrPort, out string, window time.Duration, want string) []string {
	t.Helper()
	var c *net.UDPConn
	err := netns.DoIn(ns, func() error {
		network := "udp4"
		if to.Addr().Is6() {
			network = "udp6"
		}
		var err error
		if c, err = net.ListenUDP(network, nil); err != nil {
			return err
		}
		if !to.Addr().IsMulticast() {
			return nil
		}
		ifi, err := net.InterfaceByName(out)
		if err != nil {
			return err
		}
		if to.Addr().Is4() {
			return ipv4.NewPacketConn(c).SetMulticastInterface(ifi)
		}
		return ipv6.NewPacketConn(c).SetMulticastInterface(ifi)
	})
	if err != nil {
		if c != nil {
			c.Close()
		}
		t.Fatalf("query socket in %s: %v", ns, err)
	}
	defer c.Close()
	q := &dns.Msg{
		MsgHdr:   dns.MsgHdr{Id: dns.Id()},
		Question: []dns.Question{{Name: "_lanft._tcp.local.", Qtype: dns.TypePTR, Qclass: dns.ClassINET | 1<<15}},
	}
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatalf("send a query from %s to %s: %v", ns, to, err)
	}
	c.SetReadDeadline(time.Now().Add(window))
	var names []string
	buf := make([]byte, 9001)
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return names
		}
		if err != nil {
			t.Fatalf("read answers in %s: %v", ns, err)
		}
		var m dns.Msg
		if m.Unpack(buf[:n]) != nil {
			continue
		}
		for _, rr := range append(m.Answer, m.Extra...) {
			txt, ok := rr.(*dns.TXT)
			if !ok {
				continue
			}
			for _, s := range txt.Txt {
				if name, ok := strings.CutPrefix(s, "name="); ok && !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
		if want != "" && slices.Contains(names, want) {
			return names
		}
	}
}

// groupListener joins 224.0.0.251 on iface in namespace ns on a socket of
// port 5353 of the test's own (sharing the port, as avahi would) and
// reports on the returned channel each lanft query it hears.
func groupListener(t *testing.T, ns, iface string) <-chan netip.AddrPort {
	t.Helper()
	var c *net.UDPConn
	if err := netns.DoIn(ns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		c, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353})
		return err
	}); err != nil {
		t.Fatalf("join 224.0.0.251 on %s in %s: %v", iface, ns, err)
	}
	heard := make(chan netip.AddrPort, 16)
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 9001)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var m dns.Msg
			if m.Unpack(buf[:n]) == nil && !m.Response && len(m.Question) > 0 && m.Question[0].Name == "_lanft._tcp.local." {
				select {
				case heard <- from:
				default:
				}
			}
		}
	}()
	return heard
}

// linkLocal returns the link-local IPv6 address of iface in namespace ns
// once it is usable (duplicate address detection over), zoned to iface;
// false if it has none within 10 s (IPv6 off).
func linkLocal(t *testing.T, ns, iface string) (netip.Addr, bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := exec.Command("ip", "-n", ns, "-6", "addr", "show", "dev", iface, "scope", "link").Output()
		if err != nil {
			t.Fatalf("ip -n %s -6 addr show dev %s: %v", ns, iface, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != "inet6" || strings.Contains(line, "tentative") {
				continue
			}
			if p, err := netip.ParsePrefix(f[1]); err == nil {
				return p.Addr().WithZone(iface), true
			}
		}
		time.Sleep(100 * time.Millisecond) // the kernel tells of no change
	}
	return netip.Addr{}, false
}
