package main

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanft/lanft/discovery"
	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// Discovery without multicast (issue 22): the switch of a namespace LAN
// drops every multicast frame, so mDNS finds nothing, and the instances
// find each other through the unicast fallback (discovery/unicast.go).

// TestLANMulticastDroppedShareReceive: a share and a receive on two hosts
// find each other within 5 s of the receive's start, and transfer.
func TestLANMulticastDroppedShareReceive(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	lan.DropMulticast()
	src := filepath.Join(t.TempDir(), "nomc.bin")
	lanfttest.WriteRandom(t, src, 4<<20)
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)

	out := t.TempDir()
	start := time.Now()
	recv := onHost(t, lan, 2, "receive", "--log-level", "info", "--interface", lan.Iface(2), "--name", "beta", "--yes", "--json", "--out", out)
	online := recv.WaitLine(t, `"event":"online"`, 20*time.Second)
	found := time.Since(start)
	t.Logf("multicast dropped: the receive was online at the share's host %v after it started", found.Round(time.Millisecond))
	if !strings.Contains(online.Text, hostURL(lan, 1)) {
		t.Errorf("the receive logged in elsewhere than the share on h1: %s", online.Text)
	}
	if found > 5*time.Second {
		t.Errorf("found the share after %v, want within 5s", found)
	}
	recv.WaitLine(t, `"event":"done"`, 60*time.Second)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "nomc.bin"))
	if !strings.Contains(recv.Stderr(), "probing the subnet") {
		t.Errorf("the receive's log does not say it probed the subnet:\n%s", recv.Stderr())
	}
}

// TestLANPeerFlagWithoutMulticast: with multicast dropped and the sweep
// off on both sides, --peer alone gets the receive to the share.
func TestLANPeerFlagWithoutMulticast(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	lan.DropMulticast()
	src := filepath.Join(t.TempDir(), "peer.bin")
	lanfttest.WriteRandom(t, src, 1<<20)
	share := onHost(t, lan, 1, "share", "--no-probe", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)

	out := t.TempDir()
	recv := onHost(t, lan, 2, "receive", "--no-probe", "--peer", lan.Addr(1).String(), "--log-level", "info",
		"--interface", lan.Iface(2), "--name", "beta", "--yes", "--json", "--out", out)
	recv.WaitLine(t, `"event":"done"`, 60*time.Second)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "peer.bin"))
	if strings.Contains(recv.Stderr(), "probing the subnet") {
		t.Errorf("the receive probed the subnet despite --no-probe:\n%s", recv.Stderr())
	}
}

// TestLANProbeStaysInSubnet captures every TCP SYN to the hello port and
// every ARP request one instance sends (tcpdump in its namespace) and checks that each goes to
// an address of the interface's own private subnets, at most a /24 each:
// none to its public prefix, none to the /24 beyond its /23's, none over
// the VPN-like link whose route covers half of the LAN; and that the sweep
// stops at its bound, a /24's 254 addresses for the interface.
func TestLANProbeStaysInSubnet(t *testing.T) {
	lan := netns.NewLAN(t, 1)
	lan.DropMulticast()
	ns, dev := lan.Namespace(1), lan.Iface(1)
	lanNet := lan.Prefix(1).Masked()
	b := lan.Addr(1).As4()
	wide := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, b[2] &^ 1, 1}), 23) // swept only in its own /24
	public := netip.MustParsePrefix("203.0.113.1/24")                              // not private: never swept
	lan.IP("-n", ns, "addr", "add", wide.String(), "dev", dev)
	lan.IP("-n", ns, "addr", "add", public.String(), "dev", dev)
	vpn := lan.AddLink(1)
	upper := netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], b[2], 128}), 25)
	lan.IP("-n", ns, "route", "add", upper.String(), "dev", vpn.HostIface) // a VPN route over half the LAN

	syns := captureSYNs(t, lan, 1, discovery.DefaultHelloPort)
	p := onHost(t, lan, 1, "receive", "--log-level", "info", "--interface", dev, "--name", "lonely", "--yes", "--json", "--out", t.TempDir())
	done := waitLog(t, p, regexp.MustCompile(`probe done" of=subnet.*`), 30*time.Second)
	t.Logf("probe: %s", done)
	p.Interrupt()
	got := syns.stop(t)

	mine := netip.PrefixFrom(wide.Addr(), 24).Masked()
	perAddr := map[netip.Addr]int{}
	var inLAN, inWide int
	for _, s := range got {
		perAddr[s.dst]++
		switch {
		case s.iface != dev:
			t.Errorf("a probe left over %s (want %s only): %+v", s.iface, dev, s)
		case lanNet.Contains(s.dst):
			inLAN++
		case mine.Contains(s.dst):
			inWide++
		default:
			t.Errorf("a probe went outside the interface's subnets: %+v", s)
		}
	}
	nLAN, nWide := 0, 0
	for a, n := range perAddr {
		if n > 4 { // ARP's 3 tries, or a SYN and one retransmission, within the probe's timeout
			t.Errorf("%v was sent %d packets, want at most 4", a, n)
		}
		if lanNet.Contains(a) {
			nLAN++
		} else if mine.Contains(a) {
			nWide++
		}
	}
	t.Logf("captured %d SYNs and ARP requests to %d addresses: %d in %v, %d in %v (the /24 of %v)", len(got), len(perAddr), nLAN, lanNet, nWide, mine, wide)
	// At most a /24's 254 host addresses per interface: the 253 others of
	// the LAN's /24, then the first of the /23's /24, and no more.
	if nLAN != 253 || nWide != 1 || len(perAddr) != 254 {
		t.Errorf("probed %d addresses of %v and %d of %v (%d in all), want 253, 1 and 254", nLAN, lanNet, nWide, mine, len(perAddr))
	}
}

// syn is one captured TCP SYN or ARP request.
type syn struct {
	kind  string // "syn" or "arp"
	iface string
	dst   netip.Addr
}

// synCapture is a tcpdump running in one host's namespace.
type synCapture struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	mu     sync.Mutex
	got    []syn
	done   chan struct{}
}

// What tcpdump -i any -n -t prints for a SYN sent, "v1 Out IP
// 10.0.0.1.4321 > 10.0.0.2.7781: Flags [S], ...", and for an ARP request,
// "v1 Out ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28": a
// probe of an address nobody has sends only the ARP requests (the kernel
// holds the SYN until the address resolves).
var (
	synLine = regexp.MustCompile(`^(\S+)\s+Out\s+IP\s+\S+\s+>\s+(\d+\.\d+\.\d+\.\d+)\.\d+:`)
	arpLine = regexp.MustCompile(`^(\S+)\s+Out\s+ARP, Request who-has (\d+\.\d+\.\d+\.\d+)`)
)

// captureSYNs starts tcpdump in host i on every interface, for the SYNs
// sent to port and the ARP requests sent, and returns once it listens.
func captureSYNs(t *testing.T, lan *netns.LAN, i, port int) *synCapture {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tcpdump is needed on CI (.ci/run installs it)")
		}
		t.Skip("tcpdump is not installed: apt-get install tcpdump")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &synCapture{cancel: cancel, done: make(chan struct{})}
	c.cmd = lan.Command(ctx, i, "tcpdump", "-i", "any", "-n", "-t", "-l", "-Q", "out",
		fmt.Sprintf("arp or (tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0 and dst port %d)", port))
	stdout, _ := c.cmd.StdoutPipe()
	stderr, _ := c.cmd.StderrPipe()
	if err := c.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("tcpdump: %v", err)
	}
	t.Cleanup(func() { c.stop(t) })
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			m, kind := synLine.FindStringSubmatch(sc.Text()), "syn"
			if m == nil {
				m, kind = arpLine.FindStringSubmatch(sc.Text()), "arp"
			}
			if m == nil {
				continue
			}
			c.mu.Lock()
			c.got = append(c.got, syn{kind: kind, iface: m[1], dst: netip.MustParseAddr(m[2])})
			c.mu.Unlock()
		}
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.OnceFunc(func() { close(ready) })
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				once()
			}
		}
		once()
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not start listening within 10s")
	}
	return c
}

// stop ends the capture and returns what it saw.
func (c *synCapture) stop(t *testing.T) []syn {
	if c.cmd.Process != nil {
		c.cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.cancel()
		<-c.done
	}
	c.cmd.Wait()
	c.cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]syn(nil), c.got...)
}

// waitLog waits for a line of p's log (stderr) that matches re, and
// returns the match.
func waitLog(t *testing.T, p *lanfttest.Proc, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		if m := re.FindString(p.Stderr()); m != "" {
			return m
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Fatalf("no log line matching %q within %v; stderr:\n%s", re, timeout, p.Stderr())
	return ""
}

// TestLANRememberedInstance: a receive that once found a share through
// --peer finds it again, multicast dropped and the sweep off, from the
// instances it remembered in its config folder.
func TestLANRememberedInstance(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	lan.DropMulticast()
	dir := t.TempDir()
	src := filepath.Join(dir, "again.txt")
	os.WriteFile(src, []byte("remembered"), 0o644)
	share := onHost(t, lan, 1, "share", "--no-probe", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)

	conf := t.TempDir() // the receive's, kept across its two runs
	receive := func(args ...string) {
		t.Helper()
		out := t.TempDir()
		argv := append([]string{"ip", "netns", "exec", lan.Namespace(2), lanftBin, "--config-dir", conf, "receive", "--no-probe",
			"--interface", lan.Iface(2), "--name", "beta", "--yes", "--json", "--out", out}, args...)
		recv := lanfttest.Start(t, argv...)
		recv.WaitLine(t, `"event":"done"`, 30*time.Second)
		if code := recv.ExitCode(); code != 0 {
			t.Fatalf("receive exited %d: %s", code, recv.Stderr())
		}
		lanfttest.SameFile(t, src, filepath.Join(out, "again.txt"))
	}
	receive("--peer", lan.Addr(1).String())
	b, err := os.ReadFile(filepath.Join(conf, knownPeersFile))
	if err != nil || !strings.Contains(string(b), lan.Addr(1).String()+":") {
		t.Fatalf("the receive remembered %q (%v), want %v", b, err, lan.Addr(1))
	}
	t.Logf("remembered:\n%s", b)
	receive() // no --peer this time
}

// TestLANVPNRouteOverTheLAN: the receive's machine has a VPN-like link
// whose route takes the share's address (a VPN that routes the LAN's
// range); discovery and the transfer still go over the LAN interface, on
// the direct path and on the data channel alike.
func TestLANVPNRouteOverTheLAN(t *testing.T) {
	for _, path := range []string{"auto", "datachannel"} {
		t.Run(path, func(t *testing.T) {
			lan := netns.NewLAN(t, 2)
			vpn := lan.AddLink(2)
			lan.IP("-n", lan.Namespace(2), "route", "add", netip.PrefixFrom(lan.Addr(1), 32).String(), "dev", vpn.HostIface)
			src := filepath.Join(t.TempDir(), "vpn.bin")
			lanfttest.WriteRandom(t, src, 4<<20)
			share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
			share.WaitLine(t, `"event":"online"`, 20*time.Second)

			out := t.TempDir()
			recv := onHost(t, lan, 2, "receive", "--path", path, "--interface", lan.Iface(2), "--name", "beta", "--yes", "--json", "--out", out)
			peer := recv.WaitLine(t, `"event":"peer"`, 30*time.Second)
			recv.WaitLine(t, `"event":"done"`, 60*time.Second)
			if code := recv.ExitCode(); code != 0 {
				t.Fatalf("receive exited %d: %s", code, recv.Stderr())
			}
			lanfttest.SameFile(t, src, filepath.Join(out, "vpn.bin"))
			t.Logf("a VPN route over the share's address: %s", peer.Text)
		})
	}
}

// TestLANSecondInterface: the receive's machine is on a second network
// too (multicast-capable, so discovery uses both by default), and the LAN
// drops multicast: the probe sweeps each interface's own subnet, and the
// receive finds the share and transfers.
func TestLANSecondInterface(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	lan.DropMulticast()
	other := lan.AddLink(2)
	lan.IP("-n", lan.Namespace(2), "link", "set", "dev", other.HostIface, "multicast", "on")
	lan.IP("-n", other.NS, "link", "set", "dev", other.FarIface, "multicast", "on")
	src := filepath.Join(t.TempDir(), "two.bin")
	lanfttest.WriteRandom(t, src, 1<<20)
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)

	out := t.TempDir()
	recv := onHost(t, lan, 2, "receive", "--log-level", "info", "--name", "beta", "--yes", "--json", "--out", out) // default interfaces
	recv.WaitLine(t, `"event":"done"`, 60*time.Second)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "two.bin"))
	log := recv.Stderr()
	said := regexp.MustCompile(`msg="LAN discovery" interfaces="?\[([^\]]*)\]`).FindStringSubmatch(log)
	if said == nil || !strings.Contains(said[1], lan.Iface(2)) || !strings.Contains(said[1], other.HostIface) {
		t.Errorf("the log does not say both interfaces are in use: %v\n%s", said, log)
	}
	for _, iface := range []string{lan.Iface(2), other.HostIface} {
		if !strings.Contains(log, `probing the subnet" iface=`+iface) {
			t.Errorf("no probe of %s's subnet in the log:\n%s", iface, log)
		}
	}
}
