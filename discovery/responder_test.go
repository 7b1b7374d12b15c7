package discovery

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// These tests exercise the responder's decisions (respond) without sockets;
// the namespace tests (lan_test.go, cmd/lanft's TestLANListensOnlyOnTheLAN)
// run it for real.

// lanftQuery returns the query lanft's querier sends (queryMsg).
func lanftQuery(t testing.TB, id uint16) []byte {
	t.Helper()
	b, err := queryMsg(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stackQuery returns a query as mDNS stacks browsing from port 5353 send
// it: the PTR question without the QU bit (unless qu), and a known answer
// of another instance.
func stackQuery(t testing.TB, qu bool) []byte {
	t.Helper()
	class := uint16(dns.ClassINET)
	if qu {
		class |= classQU
	}
	return pack(t, &dns.Msg{
		Question: []dns.Question{{Name: "_LANFT._tcp.local.", Qtype: dns.TypePTR, Qclass: class}},
		Answer:   []dns.RR{&dns.PTR{Hdr: hdr(browseName, dns.TypePTR, dns.ClassINET, 4500), Ptr: "other-3." + browseName}},
	})
}

// digQuery returns a query as "dig -p 5353 @224.0.0.251" sends it: a
// random ID, RD set, an EDNS0 OPT record.
func digQuery(t testing.TB, name string, qtype uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0x1234
	m.SetEdns0(1232, false)
	return pack(t, m)
}

var (
	onLink4  = netip.MustParseAddrPort("10.77.0.5:40000")
	onLink4m = netip.MustParseAddrPort("10.77.0.5:5353")
	group4   = netip.AddrFrom4([4]byte{224, 0, 0, 251})
)

func TestRespond(t *testing.T) {
	z := testZone(t, "abc", "10.77.0.1/24", "fe80::1/64")
	from := func(ap netip.AddrPort, ifIndex int) packetInfo {
		return packetInfo{from: ap, ifIndex: ifIndex, dst: group4}
	}
	tests := []struct {
		name    string
		pkt     []byte
		in      packetInfo
		err     error  // want this error (any error if errAny)
		replies string // the replies: "u" unicast, "m" multicast, in order
	}{
		{"lanft's query (legacy unicast)", lanftQuery(t, 7), from(onLink4, 2), nil, "u"},
		{"interface not told (Windows)", lanftQuery(t, 7), from(onLink4, 0), nil, "u"},
		{"QM from 5353", stackQuery(t, false), from(onLink4m, 2), nil, "m"},
		{"QU from 5353", stackQuery(t, true), from(onLink4m, 2), nil, "u"},
		{"QM from 5353 to our unicast address", stackQuery(t, false),
			packetInfo{from: onLink4m, ifIndex: 2, dst: netip.MustParseAddr("10.77.0.1")}, nil, "u"},
		{"dig for the instance's TXT", digQuery(t, "abc-2._lanft._tcp.local.", dns.TypeTXT), from(onLink4, 2), nil, "u"},
		{"dig for the host's A", digQuery(t, "LANFT-abc-2.local.", dns.TypeA), from(onLink4, 2), nil, "u"},
		{"link-local source on the interface", lanftQuery(t, 7),
			packetInfo{from: netip.MustParseAddrPort("[fe80::5%v1]:40000"), ifIndex: 2}, nil, "u"},

		{"another interface", lanftQuery(t, 7), from(onLink4, 3), errOtherIface, ""},
		{"source off the link", lanftQuery(t, 7), from(netip.MustParseAddrPort("10.78.1.101:40000"), 2), errOffLink, ""},
		{"source off the link, interface not told", lanftQuery(t, 7), from(netip.MustParseAddrPort("10.78.1.101:40000"), 0), errOffLink, ""},
		{"link-local source on another interface", lanftQuery(t, 7),
			packetInfo{from: netip.MustParseAddrPort("[fe80::5%x0]:40000"), ifIndex: 2}, errOffLink, ""},
		{"a response", hashicorpResponse(t, z, 7), from(onLink4, 2), nil, ""},
		{"opcode 4", pack(t, &dns.Msg{MsgHdr: dns.MsgHdr{Opcode: dns.OpcodeNotify}, Question: []dns.Question{{Name: browseName, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}}),
			from(onLink4, 2), errNotQuery, ""},
		{"too long", make([]byte, maxPacket+1), from(onLink4, 2), errTooLong, ""},
		{"garbage", []byte{1, 2, 3}, from(onLink4, 2), errAny, ""},
		{"another service", digQuery(t, "_ipp._tcp.local.", dns.TypePTR), from(onLink4, 2), nil, ""},
		{"a class other than IN", pack(t, &dns.Msg{Question: []dns.Question{{Name: browseName, Qtype: dns.TypePTR, Qclass: dns.ClassCHAOS}}}),
			from(onLink4, 2), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			replies, err := z.respond(tt.pkt, tt.in)
			switch {
			case tt.err == errAny && err == nil, tt.err != errAny && !errors.Is(err, tt.err):
				t.Fatalf("respond: %v, want %v", err, tt.err)
			}
			var kinds string
			for _, r := range replies {
				if r.multicast {
					kinds += "m"
				} else {
					kinds += "u"
					if r.to != tt.in.from {
						t.Errorf("unicast reply to %v, want the asker %v", r.to, tt.in.from)
					}
				}
			}
			if kinds != tt.replies {
				t.Fatalf("replies %q, want %q", kinds, tt.replies)
			}
		})
	}
}

// errAny stands for any error in TestRespond.
var errAny = errors.New("any error")

// TestRespondLegacyUnicast: lanft's query gets one message that its
// collector turns into the instance, with the query's ID and question and
// TTLs of at most 10 s (RFC 6762 section 6.7).
func TestRespondLegacyUnicast(t *testing.T) {
	z := testZone(t, "abc", "10.77.0.1/24", "fe80::1/64")
	replies, err := z.respond(lanftQuery(t, 0x4c21), packetInfo{from: onLink4, ifIndex: 2})
	if err != nil || len(replies) != 1 {
		t.Fatalf("respond: %d replies, %v", len(replies), err)
	}
	m, err := parseResponse(replies[0].msg, 0x4c21)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Question) != 1 || m.Question[0].Name != browseName || m.Question[0].Qtype != dns.TypePTR {
		t.Errorf("question section %v, want the query's", m.Question)
	}
	for _, rr := range m.Answer {
		if rr.Header().Ttl > legacyTTL || rr.Header().Class != dns.ClassINET {
			t.Errorf("record %v: want TTL <= %d and class IN without cache-flush", rr, legacyTTL)
		}
	}
	got := newCollector().add(m)
	if len(got) != 1 || got[0].name != "abc-2."+browseName || got[0].port != 8443 ||
		!slices.Equal(got[0].addrs, []netip.Addr{netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("fe80::1")}) {
		t.Fatalf("collected %+v", got)
	}
}

// TestRespondAsHashicorp: to a QU query from port 5353, the answer has the
// very bytes hashicorp/mdns's server sent (captured in a test namespace):
// queriers of earlier releases parse it alike.
func TestRespondAsHashicorp(t *testing.T) {
	const id = "3f2a9c1d0b7e4d65"
	z := testZone(t, id, "10.77.65.1/24", "fe80::b0cc:bfff:fe32:ec3c/64")
	rec := record{ID: id, Name: id, Port: 8443, Host: true, HostSince: 1795642923682}
	if err := z.setTXT(rec.txt()); err != nil {
		t.Fatal(err)
	}
	want, err := hex.DecodeString(capturedAnswer)
	if err != nil {
		t.Fatal(err)
	}
	replies, err := z.respond(lanftQuery(t, 0x4c21), packetInfo{from: netip.MustParseAddrPort("10.77.65.2:5353"), ifIndex: 2})
	if err != nil || len(replies) != 1 || replies[0].multicast {
		t.Fatalf("respond: %+v, %v", replies, err)
	}
	if !bytes.Equal(replies[0].msg, want) {
		t.Errorf("answer differs from hashicorp's:\n%x\n%s", replies[0].msg, capturedAnswer)
	}
}

// TestRespondBounded: a query repeating questions gets each record once,
// and no more than maxQuestions questions are looked at.
func TestRespondBounded(t *testing.T) {
	z := testZone(t, "abc", "10.77.0.1/24")
	m := new(dns.Msg)
	for i := range 100 { // one question, in two spellings
		name := browseName
		if i%2 == 1 {
			name = strings.ToUpper(browseName)
		}
		m.Question = append(m.Question, dns.Question{Name: name, Qtype: dns.TypePTR, Qclass: dns.ClassINET})
	}
	for i := range 31 { // 31 more, not about us: 32 distinct (maxQuestions)
		m.Question = append(m.Question, dns.Question{Name: fmt.Sprintf("x%d.local.", i), Qtype: dns.TypePTR, Qclass: dns.ClassINET})
	}
	// The 33rd distinct question, about us, is not looked at.
	m.Question = append(m.Question, dns.Question{Name: servicesName, Qtype: dns.TypePTR, Qclass: dns.ClassINET})
	replies, err := z.respond(pack(t, m), packetInfo{from: onLink4, ifIndex: 2})
	if err != nil || len(replies) != 1 {
		t.Fatalf("respond: %d replies, %v", len(replies), err)
	}
	var got dns.Msg
	if err := got.Unpack(replies[0].msg); err != nil {
		t.Fatal(err)
	}
	// PTR, SRV, A, TXT once each, for the one question answered.
	if len(got.Answer) != 4 || len(got.Question) != 1 {
		t.Fatalf("%d records, %d questions, want 4 and 1:\n%v", len(got.Answer), len(got.Question), &got)
	}
}

func TestAllowMulticast(t *testing.T) {
	last := map[string]time.Time{}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		msg  string
		at   time.Duration
		want bool
	}{
		{"a", 0, true},
		{"a", 500 * time.Millisecond, false},
		{"b", 500 * time.Millisecond, true},
		{"a", time.Second, true},
		{"b", 1200 * time.Millisecond, false},
	}
	for _, s := range steps {
		if got := allowMulticast(last, []byte(s.msg), now.Add(s.at)); got != s.want {
			t.Errorf("%q at %v: %v, want %v", s.msg, s.at, got, s.want)
		}
	}
	for i := range 1000 {
		allowMulticast(last, []byte{byte(i), byte(i >> 8)}, now.Add(2*time.Second))
	}
	if len(last) > 64 {
		t.Errorf("%d messages remembered, want at most 64", len(last))
	}
}

// FuzzRespond feeds arbitrary packets to the responder, from an on-link
// source on its interface at an arbitrary port: it must not panic, and
// what it sends is a response of bounded size, by unicast only to the asker.
func FuzzRespond(f *testing.F) {
	z := testZone(f, "abc", "10.77.0.1/24", "2001:db8::1/64", "fe80::1/64")
	f.Add(lanftQuery(f, 0x4c21), uint16(40000))
	f.Add(stackQuery(f, false), uint16(mdnsPort))
	f.Add(stackQuery(f, true), uint16(mdnsPort))
	f.Add(digQuery(f, "abc-2._lanft._tcp.local.", dns.TypeANY), uint16(53000))
	f.Add(digQuery(f, servicesName, dns.TypePTR), uint16(mdnsPort))
	f.Add(hashicorpResponse(f, z, 7), uint16(mdnsPort))
	f.Fuzz(func(t *testing.T, pkt []byte, port uint16) {
		in := packetInfo{from: netip.AddrPortFrom(netip.MustParseAddr("10.77.0.5"), port), ifIndex: 2, dst: group4}
		replies, err := z.respond(pkt, in)
		if err != nil && len(replies) > 0 {
			t.Fatalf("replies with an error: %v", err)
		}
		for _, r := range replies {
			if !r.multicast && r.to != in.from {
				t.Fatalf("unicast reply to %v, not the asker %v", r.to, in.from)
			}
			if len(r.msg) > maxPacket {
				t.Fatalf("reply of %d bytes", len(r.msg))
			}
			var m dns.Msg
			if err := m.Unpack(r.msg); err != nil || !m.Response || len(m.Answer) == 0 {
				t.Fatalf("reply %x: %v", r.msg, err)
			}
		}
	})
}
