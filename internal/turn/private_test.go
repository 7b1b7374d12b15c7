package turn

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lanft/lanft/signal"
)

// reachable's rule, address by address: what the signaling server's
// socket saw and other nodes' relays are reachable; what it was only told
// (a proxy header, the cluster) only if public; never the host's own kinds.
func TestReachableRule(t *testing.T) {
	a := netip.MustParseAddr
	dir := &staticDir{rooms: map[string]signal.PeerAddrs{"r": {
		Seen:   []netip.Addr{a("10.1.1.1"), a("169.254.1.1"), a("198.51.100.1")},
		Told:   []netip.Addr{a("203.0.113.5"), a("10.2.2.2"), a("172.16.0.1"), a("192.168.0.1"), a("fd00::1"), a("100.64.0.1"), a("100.127.255.254"), a("100.128.0.1"), a("127.0.0.1"), a("2001:db8::1")},
		Relays: []netip.Addr{a("10.3.3.3")},
	}}}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := New(Config{PacketConn: pc, PublicIP: a("192.0.2.10"), Directory: dir})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.1.1.1", true},         // seen by the signaling socket
		{"198.51.100.1", true},     // seen, public
		{"169.254.1.1", false},     // seen, but link-local
		{"203.0.113.5", true},      // told, public
		{"2001:db8::1", true},      // told, public IPv6
		{"100.128.0.1", true},      // told, just past CGNAT
		{"10.2.2.2", false},        // told, RFC 1918
		{"172.16.0.1", false},      // told, RFC 1918
		{"192.168.0.1", false},     // told, RFC 1918
		{"fd00::1", false},         // told, ULA
		{"100.64.0.1", false},      // told, CGNAT
		{"100.127.255.254", false}, // told, CGNAT
		{"127.0.0.1", false},       // told, loopback
		{"10.3.3.3", true},         // another node's relay
		{"192.0.2.10", false},      // this host's public address, not a relay port
		{"203.0.113.6", false},     // nobody's
	}
	for _, tc := range tests {
		if got := s.reachable("r", a(tc.ip)); got != tc.want {
			t.Errorf("reachable(r, %s) = %v, want %v", tc.ip, got, tc.want)
		}
		if s.reachable("q", a(tc.ip)) {
			t.Errorf("reachable(q, %s): true for a room with nobody in it", tc.ip)
		}
	}
}

// A private address the signaling server was only told (say, behind a
// trusted proxy) is no destination until a client of the room allocates
// from it here; a client of another room allocating from it opens nothing.
func TestToldPrivateAddressNeedsAnAllocation(t *testing.T) {
	r := startRelayLAN(t, Config{})
	r.dir.set("r", signal.PeerAddrs{Told: []netip.Addr{r.lan.Addr(2), r.lan.Addr(3)}})
	cl := r.client(t, 2, r.srv.Credentials("r", time.Now()))
	relay, err := allocate(t, cl)
	if err != nil {
		t.Fatal(err)
	}
	// Host 2 allocated here: its address is a client's as this TURN sees it.
	peer2 := r.listen(t, 2)
	if _, err := relay.WriteTo([]byte("to 2"), peer2.LocalAddr()); err != nil {
		t.Fatalf("relay to the allocating client's host: %v", err)
	}
	expectDatagram(t, peer2, "to 2")

	// Host 3 is only told: refused, even after it allocates for room q.
	peer3 := r.listen(t, 3)
	if _, err := allocate(t, r.client(t, 3, r.srv.Credentials("q", time.Now()))); err != nil {
		t.Fatal(err)
	}
	if err := cl.CreatePermission(peer3.LocalAddr()); err == nil {
		t.Error("permission to a private address only told of granted")
	}
	relay.WriteTo([]byte("leak"), peer3.LocalAddr())
	peer3.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, _, err := peer3.ReadFrom(make([]byte, 100)); err == nil {
		t.Fatalf("host 3, only told of, received %d bytes through the relay", n)
	}

	// Once a client of room r on host 3 allocates here, host 3 is reachable.
	if _, err := allocate(t, r.client(t, 3, r.srv.Credentials("r", time.Now()))); err != nil {
		t.Fatal(err)
	}
	if err := cl.CreatePermission(peer3.LocalAddr()); err != nil {
		t.Fatalf("permission to host 3 after its allocation in the room: %v", err)
	}
	if _, err := relay.WriteTo([]byte("to 3"), peer3.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	expectDatagram(t, peer3, "to 3")
}
