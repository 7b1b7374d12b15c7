package discovery

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"

	"github.com/lanft/lanft/internal/netns"
)

// TestLANResponderAnswersOtherStacks asks instance a on host 1 as mDNS
// stacks (avahi, mDNSResponder) do, from port 5353 on host 2 with a socket
// that joined the group: a query without the QU bit is answered by
// multicast to the group (ID 0), one with it by unicast to the asker (the
// query's ID); both with TTL 255 (RFC 6762 section 11) and a's record.
func TestLANResponderAnswersOtherStacks(t *testing.T) {
	c := newCluster(t, 2)
	c.start("a", 1, 8001)
	var conn *net.UDPConn
	if err := c.lan.Do(2, func() error {
		ifi, err := net.InterfaceByName(c.lan.Iface(2))
		if err != nil {
			return err
		}
		conn, err = net.ListenMulticastUDP("udp4", ifi, net.UDPAddrFromAddrPort(netip.AddrPortFrom(mdnsGroup4, mdnsPort)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := ipv4.NewPacketConn(conn)
	if err := errors.Join(p.SetControlMessage(ipv4.FlagDst|ipv4.FlagTTL, true), p.SetMulticastTTL(255)); err != nil {
		t.Fatal(err)
	}
	group := net.UDPAddrFromAddrPort(netip.AddrPortFrom(mdnsGroup4, mdnsPort))

	tests := []struct {
		name  string
		class uint16
		dst   netip.Addr // where the answer must be sent
		id    uint16     // the answer's ID
	}{
		{"QM: multicast", dns.ClassINET, mdnsGroup4, 0},
		{"QU: unicast", dns.ClassINET | classQU, c.lan.Addr(2), 0x5151},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := pack(t, &dns.Msg{
				MsgHdr:   dns.MsgHdr{Id: 0x5151},
				Question: []dns.Question{{Name: browseName, Qtype: dns.TypePTR, Qclass: tt.class}},
			})
			// a may not be up yet: ask every 1.1 s (above the responder's
			// multicast limit) until it answers, within 10 s.
			deadline := time.Now().Add(10 * time.Second)
			buf := make([]byte, maxPacket+1)
			for time.Now().Before(deadline) {
				if _, err := p.WriteTo(q, nil, group); err != nil {
					t.Fatal(err)
				}
				p.SetReadDeadline(time.Now().Add(1100 * time.Millisecond))
				for {
					n, cm, from, err := p.ReadFrom(buf)
					if errors.Is(err, os.ErrDeadlineExceeded) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					m, err := parseResponse(buf[:n], tt.id)
					src := from.(*net.UDPAddr).AddrPort()
					if err != nil || m.Id != tt.id || src.Addr().Unmap() != c.lan.Addr(1) {
						continue // our own query looped back, a late answer of the step before
					}
					got := newCollector().add(m)
					if len(got) != 1 || !slices.ContainsFunc(got[0].txt, func(s string) bool { return s == "id=a" }) {
						t.Fatalf("answer %v", m)
					}
					dst, _ := netip.AddrFromSlice(cm.Dst)
					if dst.Unmap() != tt.dst || cm.TTL != 255 || src.Port() != mdnsPort {
						t.Fatalf("answer from %v to %v, TTL %d, ID %#x; want from port 5353 to %v, TTL 255, ID %#x", src, dst, cm.TTL, m.Id, tt.dst, tt.id)
					}
					return
				}
			}
			t.Fatalf("no answer from a within 10 s")
		})
	}
}

// TestLANResponderChecksTheInterface: a query whose source is on the LAN's
// subnet but that came in over another link of the machine (host 1 gets a
// second link, and its far end sends from an address of the LAN's prefix)
// passes the source check; the responder refuses it for its interface.
// Its answer could not reach that sender anyway (the route to the LAN's
// prefix is the LAN), so what shows the refusal is the responder's debug
// log.
func TestLANResponderChecksTheInterface(t *testing.T) {
	c := newCluster(t, 2)
	far := c.lan.AddLink(1)
	a := c.start("a", 1, 8001)
	c.waitFor("a elects itself", time.Now(), 10*time.Second, func() bool { return a.state.IAmHost }, a)

	b := c.lan.Addr(1).As4()
	b[3] = 200
	spoof := netip.AddrFrom4(b)
	ipNS(t, far.NS, "addr", "add", netip.PrefixFrom(spoof, 32).String(), "dev", far.FarIface)
	var conn *net.UDPConn
	if err := netns.DoIn(far.NS, func() (err error) {
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(spoof, 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q, err := queryMsg(0x7777)
	if err != nil {
		t.Fatal(err)
	}
	to := netip.AddrPortFrom(far.HostAddr, mdnsPort)
	want := fmt.Sprintf("from=%s", conn.LocalAddr())
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := conn.WriteToUDPAddrPort(q, to); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(a.stderr.String(), "\n") {
			if !strings.Contains(line, want) {
				continue
			}
			if !strings.Contains(line, errOtherIface.Error()) {
				t.Fatalf("the query from %s over the second link: %s; want it refused for its interface", spoof, line)
			}
			t.Logf("refused: %s", line)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no word of the query from %s to %s in a's log within 5 s", conn.LocalAddr(), to)
		}
		time.Sleep(100 * time.Millisecond) // the log tells of no change
	}
}
