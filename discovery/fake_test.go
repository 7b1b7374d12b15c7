package discovery

import (
	"net/netip"
	"time"

	"github.com/lanft/lanft/discovery/discoverytest"
)

// fakeLAN is discoverytest's in-memory LAN, on which the node numbered n
// is heard from 10.0.0.n on "fake0".
type (
	fakeLAN  = discoverytest.LAN[Sighting]
	fakeNode = discoverytest.Source[Sighting]
)

func newFakeLAN(interval time.Duration) *fakeLAN {
	return discoverytest.New(interval, func(n int, txt []string) Sighting {
		return Sighting{Iface: "fake0", Addrs: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 0, byte(n)})}, TXT: txt}
	})
}
