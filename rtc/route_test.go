package rtc

import (
	"net/netip"
	"testing"
)

// TestOnLink: a peer-reflexive address on the local interface's own network
// is a LAN peer; one beyond it (routed, NATed) is not.
func TestOnLink(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name   string
		local  netip.Addr
		remote netip.Addr
		want   bool
	}{
		{"same network", lo, netip.MustParseAddr("127.0.0.9"), true},
		{"another network", lo, netip.MustParseAddr("10.99.0.1"), false},
		{"not a local address", netip.MustParseAddr("192.0.2.77"), netip.MustParseAddr("192.0.2.78"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := onLink(tt.local, tt.remote); got != tt.want {
				t.Fatalf("onLink(%v, %v) = %v, want %v", tt.local, tt.remote, got, tt.want)
			}
		})
	}
	if !isLocalAddr(lo) || isLocalAddr(netip.MustParseAddr("192.0.2.77")) {
		t.Fatal("isLocalAddr does not tell this machine's address from another's")
	}
}
