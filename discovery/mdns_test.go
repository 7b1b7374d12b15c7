package discovery

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// These tests exercise the mDNS glue without sockets.

func TestZoneSighting(t *testing.T) {
	z := &zone{iface: "v1", prefixes: []netip.Prefix{
		netip.MustParsePrefix("10.77.0.1/24"),
		netip.MustParsePrefix("2001:db8::1/64"),
		netip.MustParsePrefix("fe80::1/64"),
	}}
	txt := []string{"v=1"}
	tests := []struct {
		name string
		v4   string
		v6   string
		want []string // nil: dropped
	}{
		{"ipv4 on the link", "10.77.0.2", "", []string{"10.77.0.2"}},
		{"ipv4 of another network (answer leaked from another interface)", "192.168.1.5", "", nil},
		{"link-local ipv6 gets the zone", "", "fe80::2", []string{"fe80::2%v1"}},
		{"global ipv6 on the link and ipv4", "10.77.0.3", "2001:db8::3", []string{"10.77.0.3", "2001:db8::3"}},
		{"global ipv6 off the link", "", "2001:db9::3", nil},
		{"no address", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := answer{name: "x._lanft._tcp.local.", txt: txt}
			if tt.v4 != "" {
				a.addrs = append(a.addrs, netip.MustParseAddr(tt.v4))
			}
			if tt.v6 != "" {
				a.addrs = append(a.addrs, netip.MustParseAddr(tt.v6))
			}
			sg, ok := z.sighting(a)
			if tt.want == nil {
				if ok {
					t.Fatalf("kept %+v, want it dropped", sg)
				}
				return
			}
			var got []string
			for _, a := range sg.Addrs {
				got = append(got, a.String())
			}
			if !ok || !slices.Equal(got, tt.want) || sg.Iface != "v1" || !slices.Equal(sg.TXT, txt) {
				t.Fatalf("sighting = %+v, %v; want addrs %v on v1", sg, ok, tt.want)
			}
		})
	}
}

func TestZoneRecords(t *testing.T) {
	z := &zone{iface: "v1", instance: "abc-2", host: "lanft-abc-2.local.", port: 8443}
	q := dns.Question{Name: "_lanft._tcp.local.", Qtype: dns.TypePTR, Qclass: dns.ClassINET}
	if rrs := z.records(q); rrs != nil {
		t.Fatalf("records before any address: %v", rrs)
	}
	z.prefixes = []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")}
	rec := record{ID: "abc", Name: "A", Port: 8443}
	for _, r := range []record{rec, {ID: "abc", Name: "A", Port: 8443, Host: true, HostSince: 42}} {
		if err := z.setTXT(r.txt()); err != nil {
			t.Fatal(err)
		}
		var txt []string
		var port uint16
		var addr net.IP
		for _, rr := range z.records(q) {
			switch rr := rr.(type) {
			case *dns.TXT:
				txt = rr.Txt
			case *dns.SRV:
				port = rr.Port
			case *dns.A:
				addr = rr.A
			}
		}
		if got, err := parseTXT(txt); err != nil || got != r {
			t.Fatalf("advertised TXT %q = %+v, %v; want %+v", txt, got, err, r)
		}
		if port != 8443 || !addr.Equal(net.ParseIP("10.77.0.1")) {
			t.Fatalf("advertised port %d addr %v, want 8443 10.77.0.1", port, addr)
		}
	}
}
