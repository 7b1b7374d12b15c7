package discovery

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The rule these tests check: mDNS is bound to the named interface only.
// Host 1 of the LAN gets a second interface, d0 (a veth whose peer d0p is
// in the same namespace; up, multicast, an address; the kernel here may
// lack the dummy driver), and discovery runs on v1 only. While it discovers host 2
// and for a few query intervals more, the test samples host 1's multicast
// memberships every 10 ms: 224.0.0.251 (and ff02::fb) may appear on v1
// (our responder joins there), never on another interface, nor their
// Ethernet addresses in /proc/net/dev_mcast; and d0 sends no
// packet at all (its IPv6 is off, so that the kernel's own IPv6 chatter
// does not count).

// mdnsIGMP and mdnsIGMP6 are 224.0.0.251 and ff02::fb as /proc/net/igmp and
// /proc/net/igmp6 print them.
// mdnsMAC and mdnsMAC6 are their Ethernet addresses as /proc/net/dev_mcast
// prints them.
const (
	mdnsIGMP  = "FB0000E0"
	mdnsIGMP6 = "ff0200000000000000000000000000fb"
	mdnsMAC   = "01005e0000fb"
	mdnsMAC6  = "3333000000fb"
)

func TestLANQuerierJoinsNoOtherInterface(t *testing.T) {
	tests := []struct {
		name   string
		routes [][]string // ip -n NS ... commands run in host 1's namespace
	}{
		// NewLAN routes 224.0.0.0/4 to v1: the named interface is the only
		// one with a multicast route.
		{"multicast route on the named interface only", nil},
		// The multi-homed laptop: the default route (and so the route to
		// 224.0.0.251) is on another interface. A querier that joins
		// without naming an interface joins there.
		{"default route on another interface", [][]string{
			{"route", "del", "224.0.0.0/4", "dev", "v1"},
			{"route", "add", "default", "dev", "d0"},
		}},
		// No route for 224.0.0.251 at all: joining without naming an
		// interface fails with "no such device".
		{"no multicast route", [][]string{
			{"route", "del", "224.0.0.0/4", "dev", "v1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, 2)
			ns := c.lan.Namespace(1)
			// A veth pair, both ends in host 1's namespace: d0 is up with a
			// carrier, as a second Ethernet would be.
			ipNS(t, ns, "link", "add", "d0", "type", "veth", "peer", "name", "d0p")
			for _, dev := range []string{"d0", "d0p"} {
				if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf."+dev+".disable_ipv6=1").CombinedOutput(); err != nil {
					t.Fatalf("disable IPv6 on %s: %v: %s", dev, err, out)
				}
			}
			ipNS(t, ns, "addr", "add", "192.0.2.1/24", "dev", "d0")
			ipNS(t, ns, "link", "set", "d0p", "up")
			ipNS(t, ns, "link", "set", "d0", "multicast", "on", "up")
			for _, r := range tt.routes {
				ipNS(t, ns, r...)
			}
			txBefore := txPackets(t, nsFile(t, ns, "/proc/net/dev"), "d0")

			begin := time.Now()
			a, b := c.start("a", 1, 8001), c.start("b", 2, 8002)
			w := watchGroups(t, a.cmd.Process.Pid, ns)
			host, took := c.waitAgreed("a and b agree", begin, 4*time.Second, a, b)
			time.Sleep(3 * DefaultQueryInterval) // a few more queries, at the steady pace
			w.stop()
			t.Logf("agreed on %s after %v; %d samples of host 1's memberships", host.id, took.Round(time.Millisecond), w.samples)

			if w.samples < 100 {
				t.Errorf("only %d samples of the memberships", w.samples)
			}
			if len(w.bad) > 0 {
				t.Errorf("mDNS group joined on an interface discovery was not given (membership: samples): %v", w.bad)
			}
			// Positive control: the reader sees our responder's membership.
			if !w.v1 {
				t.Errorf("never saw 224.0.0.251 on v1 in /proc/net/igmp: the check reads the wrong thing")
			}
			if txAfter := txPackets(t, nsFile(t, ns, "/proc/net/dev"), "d0"); txAfter != txBefore {
				t.Errorf("d0 sent %d packets while discovery ran on v1 only", txAfter-txBefore)
			}
		})
	}
}

func ipNS(t *testing.T, ns string, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
}

// nsFile reads a file inside the test namespace ns.
func nsFile(t *testing.T, ns, path string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", path).Output()
	if err != nil {
		t.Fatalf("read %s in %s: %v", path, ns, err)
	}
	return string(out)
}

// txPackets returns the packets sent by dev, from /proc/net/dev.
func txPackets(t *testing.T, procNetDev, dev string) int64 {
	t.Helper()
	for _, line := range strings.Split(procNetDev, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != dev {
			continue
		}
		f := strings.Fields(rest) // 8 receive counters, then tx bytes, tx packets
		if len(f) < 10 {
			break
		}
		n, err := strconv.ParseInt(f[9], 10, 64)
		if err != nil {
			break
		}
		return n
	}
	t.Fatalf("no counters for %s in:\n%s", dev, procNetDev)
	return 0
}

// groupWatch samples the multicast memberships of a process's network
// namespace.
type groupWatch struct {
	stop    func()
	samples int
	v1      bool           // 224.0.0.251 seen on v1
	bad     map[string]int // "IFACE GROUP" seen elsewhere: samples
}

// watchGroups reads /proc/PID/net/igmp and igmp6 every 10 ms until stop,
// counting only samples taken while pid is in the namespace ns (the helper
// starts as ip netns exec, in the machine's namespace).
func watchGroups(t *testing.T, pid int, ns string) *groupWatch {
	w := &groupWatch{bad: map[string]int{}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			igmp, igmp6, macs, ok := readGroups(pid, ns)
			if !ok {
				continue
			}
			w.samples++
			for _, g := range igmp {
				if g[1] == mdnsIGMP {
					if g[0] == "v1" {
						w.v1 = true
					} else {
						w.bad[g[0]+" 224.0.0.251"]++
					}
				}
			}
			for _, g := range igmp6 {
				if g[1] == mdnsIGMP6 && g[0] != "v1" {
					w.bad[g[0]+" ff02::fb"]++
				}
			}
			for _, g := range macs {
				if (g[1] == mdnsMAC || g[1] == mdnsMAC6) && g[0] != "v1" {
					w.bad[g[0]+" "+g[1]]++
				}
			}
		}
	})
	var once sync.Once
	w.stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(w.stop)
	return w
}

// readGroups returns the (interface, group) pairs of /proc/PID/net/igmp,
// igmp6 and dev_mcast, if pid is in the namespace ns before and after
// reading them.
func readGroups(pid int, ns string) (igmp, igmp6, macs [][2]string, ok bool) {
	if !pidInNS(pid, ns) {
		return nil, nil, nil, false
	}
	b4, err4 := os.ReadFile(fmt.Sprintf("/proc/%d/net/igmp", pid))
	b6, err6 := os.ReadFile(fmt.Sprintf("/proc/%d/net/igmp6", pid))
	bm, errm := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev_mcast", pid))
	if err4 != nil || err6 != nil || errm != nil || !pidInNS(pid, ns) {
		return nil, nil, nil, false
	}
	return parseIGMP(string(b4)), parseIGMP6(string(b6)), parseDevMcast(string(bm)), true
}

func pidInNS(pid int, ns string) bool {
	var want, got syscall.Stat_t
	return syscall.Stat("/run/netns/"+ns, &want) == nil &&
		syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &got) == nil &&
		want.Dev == got.Dev && want.Ino == got.Ino
}

// parseIGMP reads /proc/net/igmp: a line per interface ("IDX\tNAME : ..."),
// then an indented line per group (hex address first).
func parseIGMP(s string) [][2]string {
	var out [][2]string
	dev := ""
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || strings.HasPrefix(line, "Idx"):
		case line[0] != ' ' && line[0] != '\t':
			dev = strings.TrimSuffix(f[1], ":")
		default:
			out = append(out, [2]string{dev, f[0]})
		}
	}
	return out
}

// parseIGMP6 reads /proc/net/igmp6: "IDX NAME GROUP USERS FLAGS TIMER".
func parseIGMP6(s string) [][2]string {
	var out [][2]string
	for _, line := range strings.Split(s, "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			out = append(out, [2]string{f[1], f[2]})
		}
	}
	return out
}

// parseDevMcast reads /proc/net/dev_mcast: "IDX NAME USERS GLOBAL MAC".
func parseDevMcast(s string) [][2]string {
	var out [][2]string
	for _, line := range strings.Split(s, "\n") {
		if f := strings.Fields(line); len(f) >= 5 {
			out = append(out, [2]string{f[1], f[4]})
		}
	}
	return out
}

func TestParseIGMP(t *testing.T) {
	igmp := "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n" +
		"1\tlo        :     1      V3\n\t\t\t\t010000E0     1 0:00000000\t\t0\n" +
		"2\tv1        :     2      V3\n\t\t\t\tFB0000E0     1 0:00000000\t\t0\n\t\t\t\t010000E0     1 0:00000000\t\t0\n"
	got := parseIGMP(igmp)
	want := [][2]string{{"lo", "010000E0"}, {"v1", "FB0000E0"}, {"v1", "010000E0"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseIGMP = %v, want %v", got, want)
	}
	igmp6 := "1    lo              ff020000000000000000000000000001     1 0000000C 0\n" +
		"2    v1              ff0200000000000000000000000000fb     1 00000004 0\n"
	got = parseIGMP6(igmp6)
	want = [][2]string{{"lo", "ff020000000000000000000000000001"}, {"v1", mdnsIGMP6}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseIGMP6 = %v, want %v", got, want)
	}
	got = parseDevMcast("2    v1              1     0     01005e0000fb\n2    v1              1     0     333300000001\n")
	want = [][2]string{{"v1", mdnsMAC}, {"v1", "333300000001"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseDevMcast = %v, want %v", got, want)
	}
}

// TestLANIPv6Only runs discovery on interfaces without IPv4: the query goes
// to ff02::fb on the interface and the answers carry link-local addresses,
// zoned to it. Two instances share host 1, as in TestLANTwoOnOneHost.
func TestLANIPv6Only(t *testing.T) {
	c := newCluster(t, 2)
	for i := 1; i <= 2; i++ {
		ipNS(t, c.lan.Namespace(i), "addr", "del", c.lan.Prefix(i).String(), "dev", c.lan.Iface(i))
	}
	begin := time.Now()
	ps := []*proc{c.start("a", 1, 8001), c.start("b", 1, 8002), c.start("c", 2, 8003)}
	// Up to a few seconds more than on IPv4: the link-local addresses are
	// unusable until duplicate address detection is over.
	took := c.waitFor("all agree over IPv6", begin, 8*time.Second, func() bool {
		states := map[string]State{}
		for _, p := range ps {
			states[p.id] = p.state
		}
		id, ok := agreement(states)
		if !ok {
			return false
		}
		host := c.procs[id]
		for _, p := range ps {
			url := p.state.HostURL()
			if peerIDs(p.state) != "a,b,c" || !strings.HasPrefix(url, "ws://[fe80::") ||
				!strings.HasSuffix(url, fmt.Sprintf("%%25%s]:%d/ws", c.lan.Iface(p.host), host.port)) {
				return false
			}
		}
		return true
	}, ps...)
	t.Logf("agreed over link-local IPv6 after %v: %s", took.Round(time.Millisecond), ps[0].state.HostURL())
}
