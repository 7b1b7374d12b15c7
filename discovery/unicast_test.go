package discovery

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSweepAddrs(t *testing.T) {
	pfx := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	tests := []struct {
		name        string
		prefixes    []netip.Prefix
		bits        int
		n           int
		first, last string
	}{
		{"a /24", pfx("192.168.1.10/24"), 24, 253, "192.168.1.1", "192.168.1.254"},
		{"a /16 is cut to the /24 around us", pfx("10.1.2.3/16"), 24, 253, "10.1.2.1", "10.1.2.254"},
		{"a /28", pfx("172.16.0.1/28"), 24, 13, "172.16.0.2", "172.16.0.14"},
		{"public is never swept", pfx("203.0.113.5/24"), 24, 0, "", ""},
		{"CGNAT (a VPN's) is not private", pfx("100.64.0.1/24"), 24, 0, "", ""},
		{"loopback", pfx("127.0.0.1/8"), 24, 0, "", ""},
		{"IPv6", pfx("fd00::1/64", "fe80::1/64"), 24, 0, "", ""},
		{"a /31 and /32 have no neighbours to sweep", pfx("10.0.0.0/31", "10.0.0.9/32"), 24, 0, "", ""},
		{"two prefixes share one bound", pfx("10.0.0.1/24", "192.168.5.1/24"), 24, 254, "10.0.0.2", "192.168.5.2"},
		{"a narrower bound", pfx("10.9.9.9/16"), 28, 13, "10.9.9.1", "10.9.9.14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sweepAddrs(tt.prefixes, tt.bits)
			if len(got) != tt.n {
				t.Fatalf("got %d addresses, want %d: %v", len(got), tt.n, got)
			}
			if tt.n == 0 {
				return
			}
			if got[0].String() != tt.first || got[len(got)-1].String() != tt.last {
				t.Errorf("got %v..%v, want %s..%s", got[0], got[len(got)-1], tt.first, tt.last)
			}
			for _, a := range got {
				in := false
				for _, p := range tt.prefixes {
					in = in || p.Masked().Contains(a) && a != p.Addr()
				}
				if !in {
					t.Errorf("%v is outside the interface's subnets (or its own address)", a)
				}
			}
			if len(slices.Compact(slices.Clone(got))) != len(got) {
				t.Errorf("duplicates in %v", got)
			}
		})
	}
}

func TestSplitPeer(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
		err  string
	}{
		{"10.0.0.5", "10.0.0.5", DefaultHelloPort, ""},
		{"10.0.0.5:4000", "10.0.0.5", 4000, ""},
		{"laptop.local", "laptop.local", DefaultHelloPort, ""},
		{"http://10.0.0.5:43122/", "10.0.0.5", 43122, ""},
		{"ws://10.0.0.5:43122/ws", "10.0.0.5", 43122, ""},
		{"[fd00::1]:80", "fd00::1", 80, ""},
		{"10.0.0.5:0", "", 0, "port 1-65535"},
		{"10.0.0.5:99999", "", 0, "port 1-65535"},
		{"http://:80/", "", 0, "not a URL with a host"},
		{"", "", 0, "empty"},
	}
	for _, tt := range tests {
		host, port, err := SplitPeer(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("SplitPeer(%q): err %v, want one with %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || host != tt.host || port != tt.port {
			t.Errorf("SplitPeer(%q) = %q, %d, %v; want %q, %d", tt.in, host, port, err, tt.host, tt.port)
		}
	}
}

// helloSeeds are answers, good and bad, for the table test and the fuzz
// corpus.
var helloSeeds = []string{
	`{"txt":["v=1","id=abc","name=x","prio=0","port=1234","host=0","since=0"]}`,
	`{"txt":["v=1","id=abc","name=x","prio=0","port=1234","host=0","since=0"],"peers":[{"txt":["v=1","id=def"],"addrs":["10.0.0.7"]}]}`,
	`{"txt":[]}`,
	`{"peers":[]}`,
	`{"txt":["v=1"],"peers":[{"txt":[],"addrs":["10.0.0.1","10.0.0.2","10.0.0.3","10.0.0.4","10.0.0.5","10.0.0.6","10.0.0.7","10.0.0.8","10.0.0.9","10.0.0.10","10.0.0.11","10.0.0.12","10.0.0.13","10.0.0.14","10.0.0.15","10.0.0.16","10.0.0.17"]}]}`,
	`[1,2]`,
	``,
}

func TestParseHello(t *testing.T) {
	for i, s := range helloSeeds {
		h, err := ParseHello([]byte(s))
		if ok := i < 2; ok != (err == nil) {
			t.Errorf("ParseHello(%q) = %+v, %v; want ok %v", s, h, err, ok)
		}
	}
	many := Hello{TXT: []string{"v=1"}, Peers: make([]HelloPeer, maxHelloPeers+1)}
	b, _ := json.Marshal(many)
	if _, err := ParseHello(b); err == nil {
		t.Errorf("ParseHello took %d peers", maxHelloPeers+1)
	}
	if _, err := ParseHello(make([]byte, maxHelloBody+1)); err == nil || !strings.Contains(err.Error(), "16 KiB") {
		t.Errorf("ParseHello of a long body: %v, want the bound", err)
	}
}

func FuzzParseHello(f *testing.F) {
	for _, s := range helloSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHello(b)
		if err != nil {
			return
		}
		if len(h.TXT) == 0 || len(h.Peers) > maxHelloPeers {
			t.Fatalf("ParseHello kept %+v", h)
		}
		for _, p := range h.Peers {
			if len(p.Addrs) > maxHostAddrs {
				t.Fatalf("ParseHello kept a peer with %d addresses", len(p.Addrs))
			}
		}
	})
}

func TestKnownPeers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "known")
	var k knownPeers
	for i := range maxKnown + 5 {
		k.add(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 7781))
	}
	if k.add(k.list[3]) {
		t.Error("adding a known instance again changed the set")
	}
	if err := k.save(file); err != nil {
		t.Fatal(err)
	}
	// A hand-edited file: junk and public addresses are skipped.
	b, _ := os.ReadFile(file)
	os.WriteFile(file, append(b, []byte("junk\n8.8.8.8:7781\n10.0.0.200:0\n")...), 0o600)
	got := loadKnown(file)
	if len(got.list) != maxKnown || got.list[0] != k.list[0] {
		t.Errorf("loaded %d instances starting %v, want %d starting %v", len(got.list), got.list[0], maxKnown, k.list[0])
	}
	for _, ap := range got.list {
		if !ap.Addr().IsPrivate() || ap.Port() == 0 {
			t.Errorf("loaded %v", ap)
		}
	}
	if len(loadKnown(filepath.Join(t.TempDir(), "none")).list) != 0 {
		t.Error("a missing file gave instances")
	}
}
