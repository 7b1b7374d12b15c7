package node

import (
	"testing"

	"github.com/lanft/lanft/internal/pagehttp"
	"github.com/lanft/lanft/rtc"
)

// TestDecidePagePath: the HTTP path is negotiated only when the remote is
// a page and this side serves pages; the route must join host (or
// peer-reflexive) addresses, or the second message says why not.
func TestDecidePagePath(t *testing.T) {
	lan := rtc.Route{Local: endpoint("host", "10.0.0.1:5000"), Remote: endpoint("host", "10.0.0.2:6000")}
	hidden := rtc.Route{Local: endpoint("host", "10.0.0.1:5000"), Remote: endpoint("prflx", "10.0.0.2:6000")}
	nat := rtc.Route{Local: endpoint("host", "10.0.0.1:5000"), Remote: endpoint("srflx", "203.0.113.9:6000")}
	relay := rtc.Route{Local: endpoint("relay", "198.51.100.1:3478"), Remote: endpoint("host", "10.0.0.2:6000")}
	tests := []struct {
		name          string
		local, remote byte
		route         rtc.Route
		routeErr      error
		page          bool
		why           string // "": HTTP is offered
	}{
		{"a page on the LAN", flagServesPage | flagDirect, flagPage, lan, nil, true, ""},
		{"a page hiding its address", flagServesPage, flagPage | flagCode, hidden, nil, true, ""},
		{"a page through a NAT", flagServesPage, flagPage, nat, nil, true, "the route is host to srflx, not between host addresses"},
		{"a page through a relay", flagServesPage, flagPage, relay, nil, true, "the route is relay to host, not between host addresses"},
		{"a page, no route", flagServesPage, flagPage, rtc.Route{}, rtc.ErrNoRoute, true, rtc.ErrNoRoute.Error()},
		{"this side serves no pages", flagDirect, flagPage, lan, nil, false, "the peer does not offer the direct path"},
		{"the remote is a CLI", flagServesPage | flagDirect, flagDirect, lan, nil, false, ""},
		{"two CLIs serving pages", flagServesPage, flagServesPage, lan, nil, false, "the peer does not offer the direct path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decidePath(ModeAuto, tt.local, tt.remote, tt.route, tt.routeErr)
			if p.page != tt.page || p.why != tt.why {
				t.Fatalf("decidePath = page %v, why %q; want %v, %q", p.page, p.why, tt.page, tt.why)
			}
			if got, want := p.tryHTTP(), tt.page && tt.why == ""; got != want {
				t.Fatalf("tryHTTP() = %v, want %v", got, want)
			}
			if p.tryHTTP() && (p.local != tt.route.Local.Addr.Addr() || p.remote != tt.route.Remote.Addr.Addr()) {
				t.Fatalf("HTTP between %s and %s, want the route's %s and %s", p.local, p.remote, tt.route.Local.Addr, tt.route.Remote.Addr)
			}
		})
	}
}

// TestPageFlag: a CLI sets flagServesPage only with a server of pages and
// a mode that lets the bytes leave the data channel.
func TestPageFlag(t *testing.T) {
	if got := pageFlag(&Config{}); got != 0 {
		t.Errorf("without a server: flags %d, want 0", got)
	}
	for _, tt := range []struct {
		mode Mode
		want byte
	}{{ModeAuto, flagServesPage}, {"", flagServesPage}, {ModeDataChannel, 0}, {ModeRelay, 0}} {
		if got := pageFlag(&Config{Pages: testPages(t), Mode: tt.mode}); got != tt.want {
			t.Errorf("--path %q: flags %d, want %d", tt.mode, got, tt.want)
		}
	}
}

func testPages(t *testing.T) *pagehttp.Server {
	s := pagehttp.New(pagehttp.Config{})
	t.Cleanup(func() { s.Close() })
	return s
}
