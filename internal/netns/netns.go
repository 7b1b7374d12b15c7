// Package netns builds small LANs of network namespaces for tests, so that
// multi-host behaviour (discovery, failover, transfers) is shown on several
// hosts without a packet reaching the machine's real interfaces.
//
// A LAN of n hosts is one namespace holding a bridge (the switch) and n host
// namespaces, each with a veth "vI" plugged into the bridge, the address
// 10.77.X.I/24 (X picked per run), loopback up and a route for 224.0.0.0/4
// (without one, joining a multicast group fails with "no such device").
// Namespace names hold the process id and a counter, so two runs never
// collide. Everything needs root and iproute2's ip.
package netns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// counter makes names unique within the process; the pid makes them unique
// across processes.
var counter atomic.Int64

// Require skips the test when it cannot build namespaces (not root, or no
// ip command), except under CI (CI=true), where it fails instead: CI runs as
// root and must not silently skip the multi-host tests.
func Require(t testing.TB) {
	t.Helper()
	_, lookErr := exec.LookPath("ip")
	skip, fail, msg := decide(os.Geteuid(), os.Getenv("CI"), lookErr == nil)
	switch {
	case fail:
		t.Fatal(msg)
	case skip:
		t.Skip(msg)
	}
}

// decide is Require's rule, apart from the environment.
func decide(euid int, ci string, haveIP bool) (skip, fail bool, msg string) {
	var why string
	switch {
	case euid != 0:
		why = "network namespace tests need root"
	case !haveIP:
		why = "network namespace tests need the ip command (iproute2)"
	default:
		return false, false, ""
	}
	if ci == "true" {
		return false, true, why + ", and CI=true: refusing to skip them"
	}
	return true, false, why + "; skipped (they run as root, as in CI)"
}

// LAN is a bridge namespace and n host namespaces. Hosts are numbered from 1.
type LAN struct {
	t      testing.TB
	prefix string // namespace name prefix, unique to the run
	net    byte   // X in 10.77.X.0/24
	n      int
}

// NewLAN builds a LAN of n hosts (1-250) and removes it when the test ends,
// whether it passed or not. It calls Require first.
func NewLAN(t testing.TB, n int) *LAN {
	t.Helper()
	Require(t)
	if n < 1 || n > 250 {
		t.Fatalf("netns: %d hosts, want 1-250", n)
	}
	pid := os.Getpid()
	c := counter.Add(1)
	l := &LAN{
		t:      t,
		prefix: fmt.Sprintf("lanft%d-%d", pid, c),
		net:    byte((pid+int(c))%250 + 1),
		n:      n,
	}
	sw := l.prefix + "-sw"
	l.mustIP("netns", "add", sw)
	t.Cleanup(func() { l.deleteNS(sw) })
	l.mustIP("-n", sw, "link", "add", "br0", "type", "bridge")
	l.mustIP("-n", sw, "link", "set", "br0", "up")
	for i := 1; i <= n; i++ {
		h := l.Namespace(i)
		l.mustIP("netns", "add", h)
		t.Cleanup(func() { l.deleteNS(h) })
		v, p := l.Iface(i), fmt.Sprintf("p%d", i)
		l.mustIP("link", "add", v, "netns", h, "type", "veth", "peer", "name", p, "netns", sw)
		l.mustIP("-n", sw, "link", "set", p, "master", "br0", "up")
		l.mustIP("-n", h, "addr", "add", l.Prefix(i).String(), "dev", v)
		l.mustIP("-n", h, "link", "set", v, "up")
		l.mustIP("-n", h, "link", "set", "lo", "up")
		l.mustIP("-n", h, "route", "add", "224.0.0.0/4", "dev", v)
	}
	return l
}

// Len returns the number of hosts.
func (l *LAN) Len() int { return l.n }

// Namespace returns the name of host i's namespace.
func (l *LAN) Namespace(i int) string {
	l.check(i)
	return fmt.Sprintf("%s-h%d", l.prefix, i)
}

// Iface returns the name of host i's interface on the LAN (inside its
// namespace).
func (l *LAN) Iface(i int) string {
	l.check(i)
	return fmt.Sprintf("v%d", i)
}

// Addr returns host i's address, 10.77.X.i.
func (l *LAN) Addr(i int) netip.Addr {
	l.check(i)
	return netip.AddrFrom4([4]byte{10, 77, l.net, byte(i)})
}

// Prefix returns host i's address with the LAN's prefix length, 10.77.X.i/24.
func (l *LAN) Prefix(i int) netip.Prefix {
	return netip.PrefixFrom(l.Addr(i), 24)
}

// Command returns a command that runs name with args inside host i's
// namespace (through "ip netns exec", which then execs name: the process
// is name itself).
func (l *LAN) Command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.Namespace(i), name}, args...)...)
}

// Cut unplugs host i from the switch, as a Wi-Fi drop would: its interface
// stays configured but loses its carrier. Call it from the test goroutine.
func (l *LAN) Cut(i int) {
	l.t.Helper()
	l.mustIP("-n", l.prefix+"-sw", "link", "set", fmt.Sprintf("p%d", i), "down")
}

// Restore plugs host i back in. Call it from the test goroutine.
func (l *LAN) Restore(i int) {
	l.t.Helper()
	l.mustIP("-n", l.prefix+"-sw", "link", "set", fmt.Sprintf("p%d", i), "up")
}

func (l *LAN) check(i int) {
	if i < 1 || i > l.n {
		panic(fmt.Sprintf("netns: host %d of a LAN of %d", i, l.n))
	}
}

func (l *LAN) mustIP(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("netns: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// deleteNS removes one of our namespaces. Processes left in it would keep
// it alive, unseen: they were started by this test in a namespace this test
// made, so they are killed first.
func (l *LAN) deleteNS(name string) {
	if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 && pid != os.Getpid() {
				if p, err := os.FindProcess(pid); err == nil {
					l.t.Logf("netns: killing process %d left in %s", pid, name)
					p.Kill()
				}
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		l.t.Errorf("netns: ip netns del %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
}
