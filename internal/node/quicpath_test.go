package node

import (
	"net/netip"
	"testing"

	"github.com/lanft/lanft/internal/quicpath"
)

// Punch datagrams go only to the address the verified connection reaches
// the peer on: its mapping through NATs, its own address on a routed LAN,
// nowhere else.
func TestPunchTarget(t *testing.T) {
	plan := pathPlan{quic: true, quicRemote: netip.MustParseAddr("203.0.113.9")}
	tests := []struct {
		name      string
		addr, loc string
		want      string // "": refused
	}{
		{"through NATs: the mapping", "203.0.113.9:4000", "10.98.2.2:4000", "203.0.113.9:4000"},
		{"a routed LAN: its own address", "198.51.100.7:5000", "203.0.113.9:4001", "203.0.113.9:4001"},
		{"another host", "192.0.2.1:53", "192.0.2.2:53", ""},
		{"garbage", "x", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := plan.punchTarget(quicpath.Candidate{V: 1, Addr: tt.addr, Local: tt.loc})
			switch {
			case tt.want == "" && err == nil:
				t.Fatalf("punching %s was allowed, want a refusal: not the address ICE reaches the peer on", got.Addr)
			case tt.want != "" && (err != nil || got.Addr != tt.want):
				t.Fatalf("target %q, %v; want %s", got.Addr, err, tt.want)
			}
		})
	}
}
