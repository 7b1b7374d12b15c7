package signal

import (
	"net/http"
	"net/netip"
	"slices"
	"testing"
)

// A user's address is Seen when it is the socket's, Told when it comes
// from X-Forwarded-For behind a trusted proxy: the TURN relay trusts the
// first, and the second only where it is public.
func TestRoomPeerAddrsSaysHowAnAddressIsKnown(t *testing.T) {
	if testNodes(t) > 1 {
		t.Skip("one node: users of other nodes are Told (see the cluster tests)")
	}
	ts := startServer(t, Config{TrustProxy: true})
	direct := dialRaw(t, ts.url)
	direct.login("direct")
	proxied, _, err := dialRawHeader(t, ts.url, http.Header{"X-Forwarded-For": {"10.20.30.40"}})
	if err != nil {
		t.Fatal(err)
	}
	proxied.login("proxied")
	got := ts.RoomPeerAddrs(DefaultRoom)
	if want := []netip.Addr{netip.MustParseAddr("127.0.0.1")}; !slices.Equal(got.Seen, want) {
		t.Errorf("Seen = %v, want the direct client's socket address %v", got.Seen, want)
	}
	if want := []netip.Addr{netip.MustParseAddr("10.20.30.40")}; !slices.Equal(got.Told, want) {
		t.Errorf("Told = %v, want the proxied client's header address %v", got.Told, want)
	}
	if len(got.Relays) != 0 {
		t.Errorf("Relays = %v, want none without a cluster", got.Relays)
	}
	if other := ts.RoomPeerAddrs("nobody"); len(other.Seen)+len(other.Told)+len(other.Relays) != 0 {
		t.Errorf("an empty room has addresses: %+v", other)
	}
}
