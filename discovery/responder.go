package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The responder. Per interface and IP version, one socket made by
// net.ListenMulticastUDP: bound to the wildcard address, port 5353, with
// SO_REUSEADDR (and SO_REUSEPORT on the BSDs and macOS) so that avahi,
// mDNSResponder or another lanft share the port, and a member of 224.0.0.251
// (ff02::fb) on that interface only. Such a socket hears whatever reaches the
// machine on port 5353, whatever the interface: unicast to any of its
// addresses, and multicast for a group that some other socket joined
// elsewhere. So a packet is answered only if (respond):
//
//   - it came in on the responder's interface, as the socket's control
//     messages say (IP_PKTINFO, IPV6_PKTINFO). Where the system gives
//     none (Windows), the next check stands alone;
//   - its source is on the interface's link: in one of its prefixes, or a
//     link-local IPv6 address on it (zone.fromLink);
//   - it is at most maxPacket bytes and a query: it unpacks, QR, opcode and
//     rcode are 0.
//
// Then each question about us (records.go) gets its records, once per
// message, sent:
//
//   - from a source port other than 5353 (a one-shot or "legacy unicast"
//     query, RFC 6762 section 6.7, as lanft's own querier sends): by unicast
//     to that address and port, one message with the query's ID, its
//     questions repeated and TTLs cut to 10 s;
//   - else, for a question with the QU bit (section 5.4), or a query sent
//     to one of our unicast addresses (section 5.5): by unicast to the
//     source, with the query's ID;
//   - else by multicast to the group on the interface, ID 0, and the same
//     message at most once a second (section 6).
//
// Responses go out with TTL (hop limit) 255 and multicast loopback on, so
// that a querier on this machine hears them. There is no probing,
// announcing, known-answer suppression or goodbye (the instance names are
// random and per interface; see the package doc).

const (
	// maxQuestions bounds the questions looked at in one query: any more
	// are left unanswered.
	maxQuestions = 32
	// legacyTTL is the largest TTL in an answer to a legacy unicast query
	// (RFC 6762 section 6.7).
	legacyTTL = 10
	// multicastEvery is the least time between two multicasts of the same
	// response on one interface.
	multicastEvery = time.Second
)

var (
	errOtherIface = errors.New("came in on another interface")
	errOffLink    = errors.New("source is not on the interface's link")
	errNotQuery   = errors.New("not an mDNS query")
)

// packetInfo is what the socket says of a received packet.
type packetInfo struct {
	from netip.AddrPort // its source; a link-local IPv6 one is zoned
	// ifIndex is the interface it came in on; 0 where the system does not
	// tell (then no interface check is made).
	ifIndex int
	dst     netip.Addr // its destination; invalid when not told
}

// reply is one message to send.
type reply struct {
	to        netip.AddrPort // the unicast destination; unset for multicast
	multicast bool           // to the group on the interface
	msg       []byte
}

// respond returns the replies to one packet that a responder socket of z
// received, or why it gets none (a response, or a query with nothing about
// us, gets neither). It never panics, whatever pkt holds.
func (z *zone) respond(pkt []byte, in packetInfo) ([]reply, error) {
	switch {
	case len(pkt) > maxPacket:
		return nil, errTooLong
	case in.ifIndex != 0 && in.ifIndex != z.index:
		return nil, errOtherIface
	case !z.fromLink(in.from):
		return nil, errOffLink
	}
	var q dns.Msg
	if err := q.Unpack(pkt); err != nil {
		return nil, err
	}
	if q.Response {
		return nil, nil // a responder's, maybe ours looped back: nothing to say
	}
	if q.Opcode != dns.OpcodeQuery || q.Rcode != dns.RcodeSuccess {
		return nil, errNotQuery
	}
	questions := uniqueQuestions(q.Question)
	legacy := in.from.Port() != mdnsPort
	direct := in.dst.IsValid() && !in.dst.IsMulticast()
	var unicast, multicast []dns.RR
	var asked []dns.Question
	for _, qn := range questions {
		rrs := z.records(qn)
		if len(rrs) == 0 {
			continue
		}
		asked = append(asked, qn)
		if legacy || direct || qn.Qclass&classQU != 0 {
			unicast = appendNew(unicast, rrs)
		} else {
			multicast = appendNew(multicast, rrs)
		}
	}

	var out []reply
	if len(unicast) > 0 {
		m := responseMsg(q.Id, unicast)
		if legacy {
			m.Question = asked
			for _, rr := range m.Answer {
				rr.Header().Ttl = min(rr.Header().Ttl, legacyTTL)
			}
		}
		b, err := m.Pack()
		if err != nil {
			return nil, fmt.Errorf("pack a response: %w", err)
		}
		out = append(out, reply{to: in.from, msg: b})
	}
	if len(multicast) > 0 {
		b, err := responseMsg(0, multicast).Pack()
		if err != nil {
			return nil, fmt.Errorf("pack a response: %w", err)
		}
		out = append(out, reply{multicast: true, msg: b})
	}
	return out, nil
}

// responseMsg returns a response with ID id and answers rrs, as RFC 6762
// section 18 has it (QR and AA set, all else 0), compressed.
func responseMsg(id uint16, rrs []dns.RR) *dns.Msg {
	return &dns.Msg{
		MsgHdr:   dns.MsgHdr{Id: id, Response: true, Opcode: dns.OpcodeQuery, Authoritative: true},
		Compress: true,
		Answer:   rrs,
	}
}

// uniqueQuestions returns the first maxQuestions distinct questions of qs
// (same name, type and class, QU bit aside, are one question).
func uniqueQuestions(qs []dns.Question) []dns.Question {
	var out []dns.Question
	for _, q := range qs {
		if len(out) == maxQuestions {
			break
		}
		dup := false
		for _, o := range out {
			if o.Qtype == q.Qtype && o.Qclass&^classQU == q.Qclass&^classQU && dns.CanonicalName(o.Name) == dns.CanonicalName(q.Name) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, q)
		}
	}
	return out
}

// appendNew appends to rrs the records of add that it does not hold yet.
func appendNew(rrs, add []dns.RR) []dns.RR {
	for _, rr := range add {
		dup := false
		for _, o := range rrs {
			if dns.IsDuplicate(o, rr) {
				dup = true
				break
			}
		}
		if !dup {
			rrs = append(rrs, rr)
		}
	}
	return rrs
}

// respConn is one responder socket (IPv4 or IPv6) on one interface.
type respConn struct {
	c      *net.UDPConn
	v4     *ipv4.PacketConn // one of v4 and v6
	v6     *ipv6.PacketConn
	group  netip.AddrPort // where multicast replies go
	ifInfo bool           // the system tells each packet's interface
}

// openResponder opens ifi's responder sockets: IPv4 and IPv6, each unless
// it cannot be (an interface without IPv6, IPv6 turned off). It fails only
// if neither can be opened.
func openResponder(ifi *net.Interface, logger *slog.Logger) ([]*respConn, error) {
	var out []*respConn
	var errs []error
	for _, open := range []func(*net.Interface) (*respConn, error){listen4, listen6} {
		c, err := open(ifi)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !c.ifInfo {
			logger.Debug("discovery: the system does not tell which interface a packet came in on; answering queries by their source address only",
				"iface", ifi.Name, "group", c.group.Addr())
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("listen on UDP %d: %w", mdnsPort, errors.Join(errs...))
	}
	return out, nil
}

func listen4(ifi *net.Interface) (*respConn, error) {
	c, err := net.ListenMulticastUDP("udp4", ifi, net.UDPAddrFromAddrPort(netip.AddrPortFrom(mdnsGroup4, mdnsPort)))
	if err != nil {
		return nil, err
	}
	p := ipv4.NewPacketConn(c)
	if err := errors.Join(p.SetMulticastTTL(255), p.SetTTL(255), p.SetMulticastLoopback(true)); err != nil {
		c.Close()
		return nil, fmt.Errorf("udp4 on %s: %w", ifi.Name, err)
	}
	ifInfo := p.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true) == nil
	return &respConn{c: c, v4: p, group: netip.AddrPortFrom(mdnsGroup4, mdnsPort), ifInfo: ifInfo}, nil
}

func listen6(ifi *net.Interface) (*respConn, error) {
	c, err := net.ListenMulticastUDP("udp6", ifi, net.UDPAddrFromAddrPort(netip.AddrPortFrom(mdnsGroup6, mdnsPort)))
	if err != nil {
		return nil, err
	}
	p := ipv6.NewPacketConn(c)
	if err := errors.Join(p.SetMulticastHopLimit(255), p.SetHopLimit(255), p.SetMulticastLoopback(true)); err != nil {
		c.Close()
		return nil, fmt.Errorf("udp6 on %s: %w", ifi.Name, err)
	}
	ifInfo := p.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true) == nil
	group := netip.AddrPortFrom(mdnsGroup6.WithZone(ifi.Name), mdnsPort)
	return &respConn{c: c, v6: p, group: group, ifInfo: ifInfo}, nil
}

// Close closes the socket; a blocked read returns.
func (c *respConn) Close() error { return c.c.Close() }

// read reads one packet into buf.
func (c *respConn) read(buf []byte) (int, packetInfo, error) {
	var (
		n   int
		src net.Addr
		err error
		in  packetInfo
	)
	if c.v4 != nil {
		var cm *ipv4.ControlMessage
		n, cm, src, err = c.v4.ReadFrom(buf)
		if cm != nil {
			in.ifIndex = cm.IfIndex
			in.dst, _ = netip.AddrFromSlice(cm.Dst)
		}
	} else {
		var cm *ipv6.ControlMessage
		n, cm, src, err = c.v6.ReadFrom(buf)
		if cm != nil {
			in.ifIndex = cm.IfIndex
			in.dst, _ = netip.AddrFromSlice(cm.Dst)
		}
	}
	if err != nil {
		return 0, packetInfo{}, err
	}
	if ua, ok := src.(*net.UDPAddr); ok {
		in.from = ua.AddrPort()
		in.from = netip.AddrPortFrom(in.from.Addr().Unmap(), in.from.Port())
	}
	in.dst = in.dst.Unmap()
	return n, in, nil
}

// write sends r.
func (c *respConn) write(r reply) error {
	to := r.to
	if r.multicast {
		to = c.group
	}
	dst := net.UDPAddrFromAddrPort(to)
	var err error
	if c.v4 != nil {
		_, err = c.v4.WriteTo(r.msg, nil, dst)
	} else {
		_, err = c.v6.WriteTo(r.msg, nil, dst)
	}
	return err
}

// serve answers the queries c receives for z until c is closed or ctx is
// done.
func (s *mdnsSource) serve(ctx context.Context, z *zone, c *respConn) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	buf := make([]byte, maxPacket+1)
	lastMulticast := map[string]time.Time{}
	for {
		n, in, err := c.read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (Windows reports an ICMP port unreachable on the
			// next read): go on, without spinning if it is not.
			s.log.Debug("discovery: responder read", "iface", z.iface, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		replies, err := z.respond(buf[:n], in)
		if err != nil {
			s.log.Debug("discovery: query not answered", "iface", z.iface, "from", in.from, "err", err)
			continue
		}
		for _, r := range replies {
			if r.multicast && !allowMulticast(lastMulticast, r.msg, time.Now()) {
				continue
			}
			if err := c.write(r); err != nil {
				s.log.Debug("discovery: send response", "iface", z.iface, "to", r.to, "multicast", r.multicast, "err", err)
			}
		}
	}
}

// allowMulticast reports whether msg may be multicast at now, at most once
// every multicastEvery, and notes it in last (which it keeps small).
func allowMulticast(last map[string]time.Time, msg []byte, now time.Time) bool {
	k := string(msg)
	if t, ok := last[k]; ok && now.Sub(t) < multicastEvery {
		return false
	}
	if len(last) >= 64 {
		for k, t := range last {
			if now.Sub(t) >= multicastEvery {
				delete(last, k)
			}
		}
		if len(last) >= 64 {
			clear(last)
		}
	}
	last[k] = now
	return true
}
