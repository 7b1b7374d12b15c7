package netns

import (
	"fmt"
	"net/netip"
)

// Link is a second link from a host of a LAN to a namespace of its own,
// as a VPN or a container's link is: a veth pair with multicast off at
// both ends, 10.78.X.i/24 on the host and 10.78.X.(100+i)/24 at the far
// end, and no route between the LAN and the far namespace.
type Link struct {
	NS        string // the far namespace
	HostIface string // the link's interface in the host's namespace
	FarIface  string // its interface in NS
	HostAddr  netip.Addr
	FarAddr   netip.Addr
}

// AddLink gives host i (1-150) such a link and removes it when the test
// ends. Call it from the test goroutine.
func (l *LAN) AddLink(i int) Link {
	l.t.Helper()
	l.check(i)
	if i > 150 {
		l.t.Fatalf("netns: AddLink(%d): hosts 1-150 only", i)
	}
	k := Link{
		NS:        fmt.Sprintf("%s-f%d", l.prefix, i),
		HostIface: "x0",
		FarIface:  "x1",
		HostAddr:  netip.AddrFrom4([4]byte{10, 78, l.net, byte(i)}),
		FarAddr:   netip.AddrFrom4([4]byte{10, 78, l.net, byte(100 + i)}),
	}
	h := l.Namespace(i)
	l.mustIP("netns", "add", k.NS)
	l.t.Cleanup(func() { l.deleteNS(k.NS) })
	l.mustIP("link", "add", k.HostIface, "netns", h, "type", "veth", "peer", "name", k.FarIface, "netns", k.NS)
	for _, end := range []struct {
		ns, dev string
		addr    netip.Addr
	}{{h, k.HostIface, k.HostAddr}, {k.NS, k.FarIface, k.FarAddr}} {
		l.mustIP("-n", end.ns, "link", "set", "dev", end.dev, "multicast", "off")
		l.mustIP("-n", end.ns, "addr", "add", netip.PrefixFrom(end.addr, 24).String(), "dev", end.dev)
		l.mustIP("-n", end.ns, "link", "set", end.dev, "up")
	}
	l.mustIP("-n", k.NS, "link", "set", "lo", "up")
	return k
}
