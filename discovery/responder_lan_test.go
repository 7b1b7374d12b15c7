package discovery

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
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
