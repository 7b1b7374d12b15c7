package discovery

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// hashicorpResponse returns the bytes hashicorp/mdns's server sends for a
// PTR query of ours to z (built as its handleQuery does: one message, every
// record in the answer section, compressed; the query ID since we ask for a
// unicast response).
func hashicorpResponse(t testing.TB, z *zone, id uint16) []byte {
	t.Helper()
	q := dns.Question{Name: browseName, Qtype: dns.TypePTR, Qclass: dns.ClassINET | 1<<15}
	m := &dns.Msg{
		MsgHdr:   dns.MsgHdr{Id: id, Response: true, Opcode: dns.OpcodeQuery, Authoritative: true},
		Compress: true,
		Answer:   z.records(q),
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testZone returns the zone of instance id on interface index 2, with the
// given addresses and a valid TXT record.
func testZone(t testing.TB, id string, prefixes ...string) *zone {
	t.Helper()
	z := &zone{iface: "v1", index: 2, instance: id + "-2", host: "lanft-" + id + "-2.local.", port: 8443}
	for _, p := range prefixes {
		z.prefixes = append(z.prefixes, netip.MustParsePrefix(p))
	}
	if err := z.setTXT(record{ID: id, Name: "N " + id, Port: 8443}.txt()); err != nil {
		t.Fatal(err)
	}
	return z
}

func pack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hdr(name string, typ uint16, class uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: typ, Class: class, Ttl: ttl}
}

// avahiStyle returns a response in the style of other responders: only the
// PTR in the answer section, the rest as additional records with the
// cache-flush bit, mixed-case names, and records of another service.
func avahiStyle(t testing.TB, id uint16) []byte {
	t.Helper()
	const inst, host = "Zz-3._LANFT._tcp.local.", "Lanft-Zz-3.local."
	flush := uint16(dns.ClassINET | 1<<15)
	m := &dns.Msg{
		MsgHdr:   dns.MsgHdr{Id: id, Response: true, Authoritative: true},
		Compress: true,
		Answer: []dns.RR{
			&dns.PTR{Hdr: hdr(browseName, dns.TypePTR, dns.ClassINET, 4500), Ptr: inst},
		},
		Extra: []dns.RR{
			&dns.SRV{Hdr: hdr(inst, dns.TypeSRV, flush, 120), Port: 9000, Target: host},
			&dns.TXT{Hdr: hdr(inst, dns.TypeTXT, flush, 4500), Txt: record{ID: "Zz", Name: "z", Port: 9000}.txt()},
			&dns.A{Hdr: hdr(host, dns.TypeA, flush, 120), A: netip.MustParseAddr("10.77.0.9").AsSlice()},
			&dns.AAAA{Hdr: hdr(host, dns.TypeAAAA, flush, 120), AAAA: netip.MustParseAddr("fe80::9").AsSlice()},
			&dns.SRV{Hdr: hdr("printer._ipp._tcp.local.", dns.TypeSRV, flush, 120), Port: 631, Target: host},
		},
	}
	return pack(t, m)
}

func TestParseHashicorpResponse(t *testing.T) {
	z := testZone(t, "abc", "10.77.0.1/24", "fe80::1/64")
	pkt := hashicorpResponse(t, z, 77)
	m, err := parseResponse(pkt, 77)
	if err != nil {
		t.Fatal(err)
	}
	got := newCollector().add(m)
	want := answer{
		name:  "abc-2._lanft._tcp.local.",
		host:  "lanft-abc-2.local.",
		port:  8443,
		txt:   z.txt,
		addrs: []netip.Addr{netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("fe80::1")},
	}
	if len(got) != 1 || got[0].key() != want.key() || got[0].name != want.name {
		t.Fatalf("answers %+v, want [%+v]", got, want)
	}
	sg, ok := z.sighting(got[0])
	if !ok || !slices.Equal(sg.Addrs, []netip.Addr{netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("fe80::1%v1")}) {
		t.Fatalf("sighting %+v, %v", sg, ok)
	}
	if rec, err := parseTXT(sg.TXT); err != nil || rec.ID != "abc" {
		t.Fatalf("TXT %q: %+v, %v", sg.TXT, rec, err)
	}
}

// capturedAnswer is hashicorp/mdns's server's answer to queryMsg(0x4c21),
// captured in a test namespace (also in testdata/fuzz/FuzzParseAnswers).
const capturedAnswer = "4c2184000000000500000000065f6c616e6674045f746370056c6f63616c00000c000100000078001512336632613963316430623765346436352d32c00cc02900210001000000780026000a000120fb186c616e66742d336632613963316430623765346436352d32056c6f63616c00c050000100010000007800040a4d4101c050001c0001000000780010fe80000000000000b0ccbffffe32ec3cc0290010000100000078005a03763d311369643d33663261396331643062376534643635156e616d653d33663261396331643062376534643635067072696f3d3009706f72743d3834343306686f73743d311373696e63653d31373935363432393233363832"

func TestParseCapturedAnswer(t *testing.T) {
	pkt, err := hex.DecodeString(capturedAnswer)
	if err != nil {
		t.Fatal(err)
	}
	const id = "3f2a9c1d0b7e4d65"
	z := testZone(t, id, "10.77.65.1/24", "fe80::b0cc:bfff:fe32:ec3c/64")
	rec := record{ID: id, Name: id, Port: 8443, Host: true, HostSince: 1795642923682}
	if err := z.setTXT(rec.txt()); err != nil {
		t.Fatal(err)
	}
	// hashicorpResponse builds the same bytes as the real server.
	if built := hashicorpResponse(t, z, 0x4c21); !bytes.Equal(built, pkt) {
		t.Errorf("hashicorpResponse differs from the captured answer:\n%x\n%s", built, capturedAnswer)
	}
	m, err := parseResponse(pkt, 0x4c21)
	if err != nil {
		t.Fatal(err)
	}
	got := newCollector().add(m)
	if len(got) != 1 {
		t.Fatalf("answers %+v", got)
	}
	sg, ok := z.sighting(got[0])
	want := []netip.Addr{netip.MustParseAddr("10.77.65.1"), netip.MustParseAddr("fe80::b0cc:bfff:fe32:ec3c%v1")}
	if !ok || !slices.Equal(sg.Addrs, want) || got[0].port != 8443 {
		t.Fatalf("sighting %+v, %v of %+v", sg, ok, got[0])
	}
	if r, err := parseTXT(sg.TXT); err != nil || r != rec {
		t.Fatalf("TXT %q: %+v, %v; want %+v", sg.TXT, r, err, rec)
	}
}

func TestParseResponseChecks(t *testing.T) {
	z := testZone(t, "abc", "10.77.0.1/24")
	good := hashicorpResponse(t, z, 77)
	if _, err := parseResponse(good, 78); err == nil {
		t.Error("accepted another query's ID")
	}
	m := new(dns.Msg)
	if err := m.Unpack(good); err != nil {
		t.Fatal(err)
	}
	m.Id = 0
	if _, err := parseResponse(pack(t, m), 78); err != nil {
		t.Errorf("ID 0 (a multicast response) refused: %v", err)
	}
	for name, mod := range map[string]func(*dns.Msg){
		"a query":  func(m *dns.Msg) { m.Response = false },
		"opcode 4": func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify },
		"rcode 3":  func(m *dns.Msg) { m.Rcode = dns.RcodeNameError },
		"oversized": func(m *dns.Msg) {
			m.Extra = append(m.Extra, &dns.NULL{Hdr: hdr("x.", dns.TypeNULL, 1, 1), Data: strings.Repeat("x", 9000)})
		},
		"cut in half": nil,
	} {
		var pkt []byte
		if mod == nil {
			pkt = good[:len(good)/2]
		} else {
			m := new(dns.Msg)
			if err := m.Unpack(good); err != nil {
				t.Fatal(err)
			}
			mod(m)
			pkt = pack(t, m)
		}
		if _, err := parseResponse(pkt, 77); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCollectorSplitAndOtherResponders(t *testing.T) {
	const inst, host = "x-1._lanft._tcp.local.", "h.local."
	txt := record{ID: "x", Name: "x", Port: 1}.txt()
	a1 := netip.MustParseAddr("10.0.0.1")
	c := newCollector()
	step := func(rrs ...dns.RR) []answer { return c.add(&dns.Msg{Answer: rrs}) }

	// The parts arrive in separate packets: nothing until all are there.
	if got := step(&dns.PTR{Hdr: hdr(browseName, dns.TypePTR, 1, 120), Ptr: inst}); got != nil {
		t.Fatalf("PTR alone: %+v", got)
	}
	if got := step(&dns.SRV{Hdr: hdr(inst, dns.TypeSRV, 1, 120), Port: 1, Target: host}); got != nil {
		t.Fatalf("PTR and SRV: %+v", got)
	}
	if got := step(&dns.TXT{Hdr: hdr(inst, dns.TypeTXT, 1, 120), Txt: txt}); got != nil {
		t.Fatalf("no address yet: %+v", got)
	}
	got := step(&dns.A{Hdr: hdr(host, dns.TypeA, 1, 120), A: a1.AsSlice()})
	if len(got) != 1 || got[0].name != inst || got[0].port != 1 || !slices.Equal(got[0].addrs, []netip.Addr{a1}) || !slices.Equal(got[0].txt, txt) {
		t.Fatalf("complete: %+v", got)
	}
	// The same again: nothing new. A goodbye (TTL 0) or another class is
	// no answer.
	if got := step(&dns.A{Hdr: hdr(host, dns.TypeA, 1, 120), A: a1.AsSlice()}); got != nil {
		t.Fatalf("repeat: %+v", got)
	}
	if got := step(&dns.A{Hdr: hdr(host, dns.TypeA, 1, 0), A: []byte{10, 0, 0, 2}},
		&dns.A{Hdr: hdr(host, dns.TypeA, dns.ClassCHAOS, 120), A: []byte{10, 0, 0, 3}}); got != nil {
		t.Fatalf("goodbye or CHAOS: %+v", got)
	}
	// A second address: the instance again, with both.
	got = step(&dns.AAAA{Hdr: hdr(host, dns.TypeAAAA, 1|1<<15, 120), AAAA: netip.MustParseAddr("fe80::1").AsSlice()})
	if len(got) != 1 || len(got[0].addrs) != 2 {
		t.Fatalf("second address: %+v", got)
	}

	// Names that are no instance of ours are ignored.
	for _, name := range []string{"_lanft._tcp.local.", "a.b._lanft._tcp.local.", "x._other._tcp.local."} {
		step(&dns.SRV{Hdr: hdr(name, dns.TypeSRV, 1, 120), Port: 1, Target: host},
			&dns.TXT{Hdr: hdr(name, dns.TypeTXT, 1, 120), Txt: txt})
		if _, ok := c.instances[dns.CanonicalName(name)]; ok {
			t.Errorf("kept %q", name)
		}
	}

	// Another responder's layout: PTR in answers, the rest in additionals,
	// cache-flush bits and mixed case.
	m, err := parseResponse(avahiStyle(t, 5), 5)
	if err != nil {
		t.Fatal(err)
	}
	got = newCollector().add(m)
	if len(got) != 1 || got[0].name != "zz-3._lanft._tcp.local." || got[0].port != 9000 || len(got[0].addrs) != 2 {
		t.Fatalf("avahi style: %+v", got)
	}
}

func TestCollectorBounds(t *testing.T) {
	c := newCollector()
	var rrs []dns.RR
	for i := range maxInstances + 10 {
		name := "i" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "-" + string(rune('a'+i/26)) + "._lanft._tcp.local."
		rrs = append(rrs, &dns.PTR{Hdr: hdr(browseName, dns.TypePTR, 1, 120), Ptr: name})
	}
	for i := range maxHosts + 10 {
		for j := range maxHostAddrs + 3 {
			rrs = append(rrs, &dns.A{Hdr: hdr("h"+string(rune('a'+i%26))+string(rune('a'+i/26))+".local.", dns.TypeA, 1, 120), A: []byte{10, 0, byte(i), byte(j)}})
		}
	}
	many := make([]string, maxTXTItems+1)
	rrs = append(rrs, &dns.TXT{Hdr: hdr("ia-a._lanft._tcp.local.", dns.TypeTXT, 1, 120), Txt: many})
	c.add(&dns.Msg{Answer: rrs})
	if len(c.instances) != maxInstances || len(c.hosts) != maxHosts {
		t.Errorf("kept %d instances, %d hosts; want %d, %d", len(c.instances), len(c.hosts), maxInstances, maxHosts)
	}
	for h, a := range c.hosts {
		if len(a) > maxHostAddrs {
			t.Errorf("host %s: %d addresses", h, len(a))
		}
	}
	if in := c.instances["ia-a._lanft._tcp.local."]; in != nil && in.hasTXT {
		t.Error("kept a TXT record of too many strings")
	}
}

// FuzzParseAnswers feeds arbitrary packets, one by one into one query's
// collector (as answers split across packets), and checks that what comes
// out stays within the bounds. Besides the seeds below,
// testdata/fuzz/FuzzParseAnswers holds an answer captured from
// hashicorp/mdns's server in a test namespace (to queryMsg(0x4c21)).
func FuzzParseAnswers(f *testing.F) {
	z := testZone(f, "abc", "10.77.0.1/24", "2001:db8::1/64", "fe80::1/64")
	f.Add(hashicorpResponse(f, z, 77), []byte(nil))
	f.Add(avahiStyle(f, 77), hashicorpResponse(f, testZone(f, "def", "10.77.0.2/24"), 0))
	full := hashicorpResponse(f, z, 77)
	f.Add(full[:len(full)/2], full[len(full)/2:])
	f.Fuzz(func(t *testing.T, p1, p2 []byte) {
		c := newCollector()
		var id uint16 // the first packet's ID: the query's
		if len(p1) >= 2 {
			id = uint16(p1[0])<<8 | uint16(p1[1])
		}
		for _, p := range [][]byte{p1, p2} {
			m, err := parseResponse(p, id)
			if err != nil {
				continue
			}
			for _, a := range c.add(m) {
				if a.port == 0 || a.host == "" || len(a.addrs) == 0 || len(a.addrs) > maxHostAddrs || len(a.txt) > maxTXTItems {
					t.Fatalf("incomplete or unbounded answer %+v", a)
				}
				if !dns.IsSubDomain(browseName, a.name) || dns.CountLabel(a.name) != dns.CountLabel(browseName)+1 {
					t.Fatalf("answer for %q", a.name)
				}
				if sg, ok := z.sighting(a); ok {
					for _, ad := range sg.Addrs {
						if !ad.IsValid() || (ad.Zone() != "" && ad.Zone() != "v1") {
							t.Fatalf("sighting address %v", ad)
						}
					}
				}
			}
		}
		if len(c.instances) > maxInstances || len(c.hosts) > maxHosts {
			t.Fatalf("%d instances, %d hosts", len(c.instances), len(c.hosts))
		}
	})
}
