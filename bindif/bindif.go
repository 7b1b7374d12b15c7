// Package bindif binds sockets to a network interface, so that what must
// stay on the LAN leaves over the LAN's interface whatever the routes say
// (a VPN whose route covers the LAN's range), and takes only what came in
// over it.
package bindif

import (
	"net"
	"net/netip"
	"syscall"
)

// Control returns a socket control function (net.Dialer.Control,
// net.ListenConfig.Control) that binds the socket to the interface iface
// (SO_BINDTODEVICE on Linux; nothing elsewhere). An empty iface binds
// nothing. Where the kernel refuses it (without CAP_NET_RAW on kernels
// older than 5.7), the socket stays bound to its address only.
func Control(iface string) func(network, address string, c syscall.RawConn) error {
	if iface == "" {
		return nil
	}
	return control(iface)
}

// IfaceOf names the interface that has the address a, or "".
func IfaceOf(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifi := range ifs {
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			if ipn, ok := ad.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap() == a {
					return ifi.Name
				}
			}
		}
	}
	return ""
}
