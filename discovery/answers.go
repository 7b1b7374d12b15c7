package discovery

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Parsing of the answers to our PTR query. Everything here comes from the
// network, spoofed answers included (see the package doc): every length is
// bounded before anything is kept, and an answer that breaks a rule is
// dropped, never an error of the query.

const (
	// maxPacket bounds one mDNS message: RFC 6762 section 17, at most
	// 9000 bytes with the IP and UDP headers. The read buffer is one byte
	// larger, so that a longer datagram (cut by the kernel to the buffer)
	// is seen and dropped rather than parsed truncated.
	maxPacket = 9000
	// maxInstances bounds the instances kept during one query window, and
	// maxHosts the host names whose addresses are kept.
	maxInstances = 128
	maxHosts     = 128
	// maxHostAddrs bounds the addresses kept for one host name.
	maxHostAddrs = 16
)

// browseName is the name queried: "_lanft._tcp.local.".
var browseName = dns.Fqdn(serviceName + ".local")

// answer is what one query window heard of one instance: its SRV, its TXT
// and the addresses of the SRV target.
type answer struct {
	name  string       // instance name, "ID-IFINDEX._lanft._tcp.local.", lower case
	host  string       // SRV target, lower case
	port  uint16       // SRV port
	txt   []string     // TXT strings, as received
	addrs []netip.Addr // the target's A and AAAA addresses, unzoned, in arrival order
}

// instanceRecs is the SRV and TXT heard so far for one instance.
type instanceRecs struct {
	host   string
	port   uint16
	txt    []string
	hasTXT bool
	sent   string // key of the last answer returned for it
}

// collector gathers the records of the responses to one query, which may
// come split across several packets, and returns each instance once its
// SRV, TXT and an address of its SRV target are known, and again whenever
// one of them changes. It keeps at most maxInstances instances and maxHosts
// host names; what comes beyond is dropped.
type collector struct {
	instances map[string]*instanceRecs
	hosts     map[string][]netip.Addr
}

func newCollector() *collector {
	return &collector{instances: map[string]*instanceRecs{}, hosts: map[string][]netip.Addr{}}
}

var (
	errNotResponse = errors.New("not an mDNS response")
	errTooLong     = errors.New("message longer than 9000 bytes")
	errQueryID     = errors.New("query ID is neither ours nor 0")
)

// parseResponse unpacks one message received on a query socket and checks
// it is a response to the query with ID id (RFC 6762 section 18: QR set,
// opcode and rcode 0; a unicast response repeats the query ID, a multicast
// one has ID 0).
func parseResponse(pkt []byte, id uint16) (*dns.Msg, error) {
	if len(pkt) > maxPacket {
		return nil, errTooLong
	}
	m := new(dns.Msg)
	if err := m.Unpack(pkt); err != nil {
		return nil, err
	}
	if !m.Response || m.Opcode != dns.OpcodeQuery || m.Rcode != dns.RcodeSuccess {
		return nil, errNotResponse
	}
	if m.Id != id && m.Id != 0 {
		return nil, errQueryID
	}
	return m, nil
}

// add takes the records of one response (answer and additional sections;
// the authority section only serves probing) and returns the instances that
// became complete or changed.
func (c *collector) add(m *dns.Msg) []answer {
	for _, sec := range [][]dns.RR{m.Answer, m.Extra} {
		for _, rr := range sec {
			c.addRR(rr)
		}
	}
	var out []answer
	for name, in := range c.instances {
		if in.host == "" || in.port == 0 || !in.hasTXT {
			continue
		}
		addrs := c.hosts[in.host]
		if len(addrs) == 0 {
			continue
		}
		a := answer{name: name, host: in.host, port: in.port, txt: in.txt, addrs: addrs}
		if k := a.key(); k != in.sent {
			in.sent = k
			a.txt, a.addrs = slices.Clone(a.txt), slices.Clone(a.addrs)
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b answer) int { return strings.Compare(a.name, b.name) })
	return out
}

// key identifies the content of an answer, to return it only when it
// changes. Its length is bounded by the bounds on what is kept.
func (a answer) key() string {
	var b strings.Builder
	b.WriteString(a.host)
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(int(a.port)))
	for _, t := range a.txt {
		b.WriteByte(0)
		b.WriteString(t)
	}
	b.WriteByte(1)
	for _, ad := range a.addrs {
		b.WriteString(ad.String())
		b.WriteByte(0)
	}
	return b.String()
}

func (c *collector) addRR(rr dns.RR) {
	h := rr.Header()
	// The top bit of the class is mDNS's cache-flush bit (RFC 6762
	// section 10.2). A TTL of 0 is a goodbye: it is no answer.
	if h.Class&^(1<<15) != dns.ClassINET || h.Ttl == 0 {
		return
	}
	name := dns.CanonicalName(h.Name)
	switch rr := rr.(type) {
	case *dns.PTR:
		if name == browseName {
			c.instance(dns.CanonicalName(rr.Ptr))
		}
	case *dns.SRV:
		if in := c.instance(name); in != nil {
			in.host, in.port = dns.CanonicalName(rr.Target), rr.Port
		}
	case *dns.TXT:
		if len(rr.Txt) > maxTXTItems {
			return // parseTXT would refuse it; keep no more than it takes
		}
		if in := c.instance(name); in != nil {
			in.txt, in.hasTXT = slices.Clone(rr.Txt), true
		}
	case *dns.A:
		if a, ok := netip.AddrFromSlice(rr.A); ok {
			c.hostAddr(name, a.Unmap())
		}
	case *dns.AAAA:
		if a, ok := netip.AddrFromSlice(rr.AAAA); ok && !a.Is4In6() {
			c.hostAddr(name, a)
		}
	}
}

// instance returns the records of the instance name, adding it if there is
// room, or nil if name is no instance of our service (exactly one label
// under browseName).
func (c *collector) instance(name string) *instanceRecs {
	if in := c.instances[name]; in != nil {
		return in
	}
	if dns.CountLabel(name) != dns.CountLabel(browseName)+1 || !dns.IsSubDomain(browseName, name) ||
		len(c.instances) >= maxInstances {
		return nil
	}
	in := &instanceRecs{}
	c.instances[name] = in
	return in
}

func (c *collector) hostAddr(name string, a netip.Addr) {
	addrs, ok := c.hosts[name]
	if !ok && len(c.hosts) >= maxHosts {
		return
	}
	if len(addrs) >= maxHostAddrs || slices.Contains(addrs, a) {
		return
	}
	c.hosts[name] = append(addrs, a)
}
