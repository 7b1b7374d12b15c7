package node

import (
	"net/netip"
	"testing"

	"github.com/lanft/lanft/rtc"
)

func TestPathOfCandidateTypes(t *testing.T) {
	tests := []struct {
		local, remote string
		want          Path
	}{
		{"host", "host", PathDataChannel},
		{"host", "srflx", PathNAT},
		{"srflx", "srflx", PathNAT},
		{"prflx", "host", PathNAT},
		{"host", "prflx", PathNAT},
		{"relay", "host", PathRelay},
		{"srflx", "relay", PathRelay},
		{"relay", "relay", PathRelay},
	}
	for _, tt := range tests {
		if got := pathOf(tt.local, tt.remote); got != tt.want {
			t.Errorf("pathOf(%s, %s) = %q, want %q", tt.local, tt.remote, got, tt.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    Mode
		wantErr string
	}{
		{"", ModeAuto, ""},
		{"auto", ModeAuto, ""},
		{"datachannel", ModeDataChannel, ""},
		{"relay", ModeRelay, ""},
		{"tcp", "", `--path "tcp" (or LANFT_PATH): want auto, datachannel or relay`},
		{"datachannel-nat", "", `--path "datachannel-nat" (or LANFT_PATH): want auto, datachannel or relay`},
		{"Auto", "", `--path "Auto" (or LANFT_PATH): want auto, datachannel or relay`},
	}
	for _, tt := range tests {
		got, err := ParseMode(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseMode(%q): %v, want %q", tt.in, err, tt.want)
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("ParseMode(%q) = %q, %v; want the error %q", tt.in, got, err, tt.wantErr)
		case got != tt.want:
			t.Errorf("ParseMode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// endpoint is a route's end for the tests.
func endpoint(typ, addr string) rtc.Endpoint {
	return rtc.Endpoint{Type: typ, Addr: netip.MustParseAddrPort(addr)}
}

func TestDecidePath(t *testing.T) {
	lan := rtc.Route{Local: endpoint("host", "10.0.0.1:5000"), Remote: endpoint("host", "10.0.0.2:6000")}
	lanPrflx := rtc.Route{Local: endpoint("host", "10.0.0.1:5000"), Remote: endpoint("prflx", "10.0.0.2:6000")}
	lan6 := rtc.Route{Local: endpoint("host", "[fd00::1]:5000"), Remote: endpoint("host", "[fd00::2]:6000")}
	nat := rtc.Route{Local: endpoint("host", "10.0.0.1:5000"), Remote: endpoint("srflx", "203.0.113.9:6000")}
	relay := rtc.Route{Local: endpoint("relay", "198.51.100.1:3478"), Remote: endpoint("host", "10.0.0.2:6000")}
	mixed := rtc.Route{Local: endpoint("host", "10.0.0.1:5000"), Remote: endpoint("host", "[fd00::2]:6000")}
	linkLocal := rtc.Route{Local: endpoint("host", "[fe80::1]:5000"), Remote: endpoint("host", "[fe80::2]:6000")}
	tests := []struct {
		name        string
		mode        Mode
		remoteFlags byte
		route       rtc.Route
		routeErr    error
		negotiate   bool
		why         string // "": the direct path is tried
		channel     Path
	}{
		{"both auto on a LAN", ModeAuto, flagDirect, lan, nil, true, "", PathDataChannel},
		{"zero mode is auto", "", flagDirect, lan, nil, true, "", PathDataChannel},
		{"other flag bits too", ModeAuto, flagDirect | flagCode, lan, nil, true, "", PathDataChannel},
		{"a peer-reflexive remote on a LAN", ModeAuto, flagDirect, lanPrflx, nil, true, "", PathNAT},
		{"IPv6 on a LAN", ModeAuto, flagDirect, lan6, nil, true, "", PathDataChannel},
		{"the peer does not offer it", ModeAuto, 0, lan, nil, false, "the peer does not offer the direct path", PathDataChannel},
		{"the peer only has a code", ModeAuto, flagCode, lan, nil, false, "the peer does not offer the direct path", PathDataChannel},
		{"--path datachannel", ModeDataChannel, flagDirect, lan, nil, false, "--path datachannel", PathDataChannel},
		{"--path relay", ModeRelay, flagDirect, relay, nil, true, "--path relay", PathRelay},
		{"through a NAT", ModeAuto, flagDirect, nat, nil, true, "the route is host to srflx, not between host addresses", PathNAT},
		{"through a relay", ModeAuto, flagDirect, relay, nil, true, "the route is relay to host, not between host addresses", PathRelay},
		{"IPv4 to IPv6", ModeAuto, flagDirect, mixed, nil, true, "the route mixes IPv4 and IPv6", PathDataChannel},
		{"link-local", ModeAuto, flagDirect, linkLocal, nil, true, "the route uses link-local addresses", PathDataChannel},
		{"no route yet", ModeAuto, flagDirect, rtc.Route{}, rtc.ErrNoRoute, true, rtc.ErrNoRoute.Error(), PathDataChannel},
		{"no route, data channel", ModeDataChannel, 0, rtc.Route{}, rtc.ErrNoRoute, false, "--path datachannel", PathDataChannel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decidePath(tt.mode, 0, tt.remoteFlags, tt.route, tt.routeErr)
			if p.negotiate != tt.negotiate || p.why != tt.why || p.channel != tt.channel {
				t.Fatalf("decidePath = negotiate %v, why %q, channel %q; want %v, %q, %q",
					p.negotiate, p.why, p.channel, tt.negotiate, tt.why, tt.channel)
			}
			// A TCP relay is tried where direct's messages are spoken and
			// the data channel is not peer to peer.
			if want := tt.negotiate && tt.mode != ModeDataChannel && (tt.channel == PathRelay || tt.routeErr != nil); p.relay != want {
				t.Fatalf("relay = %v, want %v", p.relay, want)
			}
			if got, want := p.tryDirect(), tt.negotiate && tt.why == ""; got != want {
				t.Fatalf("tryDirect() = %v, want %v", got, want)
			}
			if p.tryDirect() && (p.local != tt.route.Local.Addr.Addr() || p.remote != tt.route.Remote.Addr.Addr()) {
				t.Fatalf("direct between %s and %s, want the route's %s and %s", p.local, p.remote, tt.route.Local.Addr, tt.route.Remote.Addr)
			}
			if got := p.taken(false); got != tt.channel {
				t.Errorf("taken(false) = %q, want the data channel's %q", got, tt.channel)
			}
			if p.tryDirect() {
				if got := p.taken(true); got != PathTCP {
					t.Errorf("taken(true) = %q, want %q", got, PathTCP)
				}
			}
		})
	}
}

// TestDecidePathQUIC: the hole-punched QUIC path is tried only where the
// data channel crosses NATs without a relay, from the route's local host
// address, and says why not elsewhere.
func TestDecidePathQUIC(t *testing.T) {
	based := func(e rtc.Endpoint, base string) rtc.Endpoint { e.Base = netip.MustParseAddr(base); return e }
	nat := rtc.Route{Local: based(endpoint("srflx", "203.0.113.1:5000"), "10.98.1.2"), Remote: endpoint("srflx", "203.0.113.9:6000")}
	natPrflx := rtc.Route{Local: based(endpoint("srflx", "203.0.113.1:5000"), "10.98.1.2"), Remote: endpoint("prflx", "203.0.113.9:6000")}
	noBase := rtc.Route{Local: endpoint("srflx", "203.0.113.1:5000"), Remote: endpoint("srflx", "203.0.113.9:6000")}
	lan := rtc.Route{Local: based(endpoint("host", "10.0.0.1:5000"), "10.0.0.1"), Remote: endpoint("host", "10.0.0.2:6000")}
	relay := rtc.Route{Local: based(endpoint("relay", "198.51.100.1:3478"), "10.98.1.2"), Remote: endpoint("srflx", "203.0.113.9:6000")}
	tests := []struct {
		name        string
		mode        Mode
		remoteFlags byte
		route       rtc.Route
		why         string // "": tried
	}{
		{"two NATs", ModeAuto, flagDirect, nat, ""},
		{"a peer-reflexive remote through NATs", ModeAuto, flagDirect, natPrflx, ""},
		{"--path datachannel", ModeDataChannel, flagDirect, nat, "--path datachannel"},
		{"--path relay", ModeRelay, flagDirect, nat, "--path relay"},
		{"an old peer", ModeAuto, 0, nat, "the peer does not offer it"},
		{"a LAN", ModeAuto, flagDirect, lan, "the data channel's path is datachannel, not through NATs"},
		{"TURN", ModeAuto, flagDirect, relay, "the data channel's path is relay, not through NATs"},
		{"no base address", ModeAuto, flagDirect, noBase, "the route's local address is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decidePath(tt.mode, 0, tt.remoteFlags, tt.route, nil)
			if p.quicWhy != tt.why || p.quic != (tt.why == "") {
				t.Fatalf("quic %v, why %q; want why %q", p.quic, p.quicWhy, tt.why)
			}
			if p.quic && p.quicLocal != tt.route.Local.Base {
				t.Fatalf("punch from %s, want the route's base %s", p.quicLocal, tt.route.Local.Base)
			}
			if p.quic && p.relay {
				t.Fatal("both QUIC and the TCP relay planned: the relay is for routes QUIC cannot follow")
			}
		})
	}
	if got := PathQUIC.Describe(); got == string(PathQUIC) {
		t.Errorf("PathQUIC.Describe() = %q, want words", got)
	}
}
