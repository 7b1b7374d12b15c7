package discovery

import (
	"net/netip"

	"github.com/miekg/dns"
)

// The records a responder answers with: the DNS-SD records (RFC 6763) of
// one instance of _lanft._tcp.local. on one interface. They are the records
// hashicorp/mdns's MDNSService gave (the responder of releases before this
// one): the same names, order, TTL, SRV priority and weight, so that every
// querier parses them alike:
//
//	_services._dns-sd._udp.local. PTR  _lanft._tcp.local.
//	_lanft._tcp.local.            PTR  ID-IFINDEX._lanft._tcp.local.
//	ID-IFINDEX._lanft._tcp.local. SRV  10 1 PORT lanft-ID-IFINDEX.local.
//	lanft-ID-IFINDEX.local.       A    the interface's IPv4 addresses
//	lanft-ID-IFINDEX.local.       AAAA its IPv6 addresses
//	ID-IFINDEX._lanft._tcp.local. TXT  the record (txt.go)
//
// A PTR question for the service gets all but the first; SRV gets SRV, A and
// AAAA; ANY on the instance gets SRV, A, AAAA and TXT. Names are matched
// case-insensitively, the class must be IN or ANY (the top bit is the QU bit).

const (
	// recordTTL is the TTL of every record, in seconds.
	recordTTL = 120
	// classQU is the unicast-response bit of a question's class (RFC 6762
	// section 5.4), the cache-flush bit in a record's.
	classQU = 1 << 15
)

// servicesName is DNS-SD's service enumeration name.
const servicesName = "_services._dns-sd._udp.local."

// service is what one zone advertises. Its fields are set once; records
// builds new RRs at each call, so callers may change them.
type service struct {
	instance string       // "ID-IFINDEX._lanft._tcp.local."
	host     string       // "lanft-ID-IFINDEX.local."
	port     uint16       // the signaling server's
	addrs    []netip.Addr // the interface's, at most maxHostAddrs
	txt      []string
}

// records returns the records that answer q, or nil if q is not about s.
func (s *service) records(q dns.Question) []dns.RR {
	if c := q.Qclass &^ classQU; c != dns.ClassINET && c != dns.ClassANY {
		return nil
	}
	name := dns.CanonicalName(q.Name)
	anyType := q.Qtype == dns.TypeANY
	switch {
	case name == servicesName && (anyType || q.Qtype == dns.TypePTR):
		return []dns.RR{s.ptr(servicesName, browseName)}
	case name == browseName && (anyType || q.Qtype == dns.TypePTR):
		return append([]dns.RR{s.ptr(browseName, s.instance)}, s.instanceRecords(dns.TypeANY)...)
	case name == dns.CanonicalName(s.instance):
		return s.instanceRecords(q.Qtype)
	case name == dns.CanonicalName(s.host) && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA):
		return s.addrRecords(q.Qtype)
	}
	return nil
}

func (s *service) instanceRecords(qtype uint16) []dns.RR {
	switch qtype {
	case dns.TypeANY:
		return append(s.instanceRecords(dns.TypeSRV), s.instanceRecords(dns.TypeTXT)...)
	case dns.TypeSRV:
		srv := &dns.SRV{Hdr: s.hdr(s.instance, dns.TypeSRV), Priority: 10, Weight: 1, Port: s.port, Target: s.host}
		rrs := append([]dns.RR{srv}, s.addrRecords(dns.TypeA)...)
		return append(rrs, s.addrRecords(dns.TypeAAAA)...)
	case dns.TypeTXT:
		return []dns.RR{&dns.TXT{Hdr: s.hdr(s.instance, dns.TypeTXT), Txt: s.txt}}
	}
	return nil
}

// addrRecords returns the A (qtype A) or AAAA records of s's addresses.
func (s *service) addrRecords(qtype uint16) []dns.RR {
	var rrs []dns.RR
	for _, a := range s.addrs {
		switch {
		case qtype == dns.TypeA && a.Is4():
			rrs = append(rrs, &dns.A{Hdr: s.hdr(s.host, dns.TypeA), A: a.AsSlice()})
		case qtype == dns.TypeAAAA && a.Is6():
			rrs = append(rrs, &dns.AAAA{Hdr: s.hdr(s.host, dns.TypeAAAA), AAAA: a.WithZone("").AsSlice()})
		}
	}
	return rrs
}

func (s *service) ptr(name, target string) dns.RR {
	return &dns.PTR{Hdr: s.hdr(name, dns.TypePTR), Ptr: target}
}

func (s *service) hdr(name string, typ uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: recordTTL}
}
