package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The querier. hashicorp/mdns's query client listens on 224.0.0.251:5353
// with no interface, so the kernel joins the group on whichever interface
// the routing table picks for it (or fails with "no such device" when no
// route covers it): multicast on an interface we were not given. Ours
// joins no group at all. Each query opens one socket on one interface:
//
//   - IPv4: bound to the interface's first IPv4 address, port 0; IPv6 (an
//     interface without IPv4): bound to [::]:0, sending to ff02::fb zoned
//     to the interface.
//   - The multicast interface set to that interface (IP_MULTICAST_IF /
//     IPV6_MULTICAST_IF), so the query leaves only there whatever the
//     routes say, with TTL (hop limit) 255 (what RFC 6762 section 11 asks
//     of responses, and what mDNS stacks send queries with), and loopback
//     on so that another instance on this machine hears it.
//   - The question "PTR _lanft._tcp.local." with the unicast-response (QU)
//     bit set. Its source port is not 5353, so the responders treat it as
//     a one-shot ("legacy unicast", RFC 6762 section 6.7) query and answer
//     by unicast to that port, as ours does (responder.go) and so did
//     hashicorp/mdns's server of earlier releases. So the answers arrive
//     on the query socket, and no group membership is needed. (An answer
//     that a responder sends by multicast only is not heard; ours never
//     does that to a query from a port other than 5353.)
//   - Answers are read until the window ends: only from port 5353 (RFC
//     6762 section 6) and from the interface's link (a source in one of
//     its prefixes, or link-local IPv6 on it); at most maxPacket bytes
//     each; with our query ID or 0.

// mdnsPort is mDNS's port.
const mdnsPort = 5353

var (
	mdnsGroup4 = netip.AddrFrom4([4]byte{224, 0, 0, 251})
	mdnsGroup6 = netip.MustParseAddr("ff02::fb")
)

// openQuery opens the socket of one query on ifi, local being an IPv4
// address of ifi or the IPv6 unspecified address (see above), and returns
// it with the address to send the query to. It joins no multicast group.
func openQuery(ifi *net.Interface, local netip.Addr) (*net.UDPConn, netip.AddrPort, error) {
	if local.Is4() {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
		if err != nil {
			return nil, netip.AddrPort{}, err
		}
		p := ipv4.NewPacketConn(c)
		if err := errors.Join(p.SetMulticastInterface(ifi), p.SetMulticastTTL(255), p.SetMulticastLoopback(true)); err != nil {
			c.Close()
			return nil, netip.AddrPort{}, err
		}
		return c, netip.AddrPortFrom(mdnsGroup4, mdnsPort), nil
	}
	if !local.Is6() || !local.IsUnspecified() {
		return nil, netip.AddrPort{}, fmt.Errorf("query from %v: want an IPv4 address or ::", local)
	}
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	p := ipv6.NewPacketConn(c)
	if err := errors.Join(p.SetMulticastInterface(ifi), p.SetMulticastHopLimit(255), p.SetMulticastLoopback(true)); err != nil {
		c.Close()
		return nil, netip.AddrPort{}, err
	}
	return c, netip.AddrPortFrom(mdnsGroup6.WithZone(ifi.Name), mdnsPort), nil
}

// queryMsg returns the query, with ID id.
func queryMsg(id uint16) ([]byte, error) {
	m := &dns.Msg{
		MsgHdr:   dns.MsgHdr{Id: id, Opcode: dns.OpcodeQuery},
		Question: []dns.Question{{Name: browseName, Qtype: dns.TypePTR, Qclass: dns.ClassINET | 1<<15}},
	}
	return m.Pack()
}

// queryOnce sends one query on ifi from local (see openQuery) and reads the
// answers for window, or until ctx is done. fromLink says whether a source
// address is on the interface's link. found gets each instance as soon as
// it is complete, and again if what it says changes (see collector);
// ignored gets each packet dropped, with the reason. Both are called from
// the calling goroutine.
func queryOnce(ctx context.Context, ifi *net.Interface, local netip.Addr, window time.Duration,
	fromLink func(netip.AddrPort) bool, found func(answer), ignored func(netip.AddrPort, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	conn, dst, err := openQuery(ifi, local)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(window)); err != nil {
		return err
	}
	// Cut the window short when ctx is done (a deadline in the past makes
	// the blocked read return).
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	id := dns.Id()
	q, err := queryMsg(id)
	if err != nil {
		return err
	}
	if _, err := conn.WriteToUDPAddrPort(q, dst); err != nil {
		return fmt.Errorf("send query to %v: %w", dst, err)
	}

	buf := make([]byte, maxPacket+1)
	col := newCollector()
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return err
		}
		if n > maxPacket {
			ignored(from, errTooLong)
			continue
		}
		if from.Port() != mdnsPort {
			ignored(from, errors.New("source port is not 5353"))
			continue
		}
		if !fromLink(from) {
			ignored(from, errors.New("source is not on the interface's link"))
			continue
		}
		m, err := parseResponse(buf[:n], id)
		if err != nil {
			ignored(from, err)
			continue
		}
		for _, a := range col.add(m) {
			found(a)
		}
	}
}
