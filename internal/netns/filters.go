package netns

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// LANs that get in the way (LAN-TESTING.md): filters a test puts on its
// own namespaces. Each is removed with them.

// SwitchNS is the name of the namespace that holds the LAN's bridge.
func (l *LAN) SwitchNS() string { return l.prefix + "-sw" }

// DropMulticast makes the switch drop every multicast frame between its
// ports (IPv4 224.0.0.0/4 and IPv6 ff00::/8), as networks that block mDNS
// do; unicast still flows. Call it from the test goroutine.
func (l *LAN) DropMulticast() {
	l.t.Helper()
	l.Nft(l.SwitchNS(), `table bridge lanftmc {
  chain fw { type filter hook forward priority 0; policy accept; ip daddr 224.0.0.0/4 drop; ip6 daddr ff00::/8 drop; }
}
`)
}

// Nft loads an nft rule set into namespace ns (one of the LAN's).
func (l *LAN) Nft(ns, rules string) {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("netns: nft in %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
	}
}

// IP runs ip with args (e.g. "-n", ns, "route", "add", ...) on the LAN's
// namespaces. Call it from the test goroutine.
func (l *LAN) IP(args ...string) {
	l.t.Helper()
	l.mustIP(args...)
}

// WatchConnectsOut counts the TCP connections namespace ns opens to other
// hosts from now on: the SYNs without an ACK it sends out of any interface
// but loopback (a SYN-ACK answers a connection; a dial to the namespace's
// own addresses stays on loopback). The function it returns reads the
// count. The rules go when ns does. Call it from the test goroutine.
func WatchConnectsOut(t testing.TB, ns string) func() int {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(`table inet lanftwatch {
  counter syns {}
  chain out { type filter hook output priority 0; policy accept; oifname != "lo" tcp flags & (syn | ack) == syn counter name "syns"; }
}
`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("netns: nft in %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
	}
	packetsRE := regexp.MustCompile(`packets (\d+)`)
	return func() int {
		t.Helper()
		out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "counter", "inet", "lanftwatch", "syns").CombinedOutput()
		if err != nil {
			t.Fatalf("netns: the SYN counter in %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
		}
		m := packetsRE.FindSubmatch(out)
		if m == nil {
			t.Fatalf("netns: the SYN counter in %s: no packet count in %q", ns, out)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
}
