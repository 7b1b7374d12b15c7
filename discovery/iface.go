package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// DefaultInterfaces returns the interfaces discovery uses when none are
// named: every interface that is up, has a carrier, is multicast-capable,
// is neither loopback nor point-to-point (VPNs and tunnels) and has an IP
// address. skipped lists the others as "name: reason".
func DefaultInterfaces() (chosen []net.Interface, skipped []string, err error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil, fmt.Errorf("discovery: list interfaces: %w", err)
	}
	for _, ifi := range ifs {
		addrs, err := ifi.Addrs()
		hasAddr := err == nil && len(addrs) > 0
		if reason := skipReason(ifi.Flags, hasAddr); reason != "" {
			skipped = append(skipped, ifi.Name+": "+reason)
			continue
		}
		chosen = append(chosen, ifi)
	}
	return chosen, skipped, nil
}

// skipReason says why an interface is not chosen by default, or "".
func skipReason(f net.Flags, hasAddr bool) string {
	switch {
	case f&net.FlagUp == 0:
		return "down"
	case f&net.FlagLoopback != 0:
		return "loopback"
	case f&net.FlagMulticast == 0:
		return "not multicast-capable"
	case f&net.FlagPointToPoint != 0:
		return "point-to-point (VPN or tunnel)"
	case f&net.FlagRunning == 0:
		return "no carrier"
	case !hasAddr:
		return "no IP address"
	}
	return ""
}

// ResolveInterfaces checks the named interfaces, or picks the default ones
// (DefaultInterfaces) when names is empty, and returns their names: the
// interfaces discovery works on. What else must stay on the LAN (lanft's
// listeners, ICE) uses the same ones, so that this is the one place that
// decides.
func ResolveInterfaces(names []string) ([]string, error) {
	if len(names) == 0 {
		ifs, skipped, err := DefaultInterfaces()
		if err != nil {
			return nil, err
		}
		if len(ifs) == 0 {
			return nil, fmt.Errorf("%w (skipped %s)", ErrNoInterface, strings.Join(skipped, "; "))
		}
		for _, ifi := range ifs {
			names = append(names, ifi.Name)
		}
		return names, nil
	}
	var out []string
	for _, n := range names {
		ifi, err := net.InterfaceByName(n)
		if err != nil {
			return nil, fmt.Errorf("discovery: interface %q: %w", n, err)
		}
		if ifi.Flags&net.FlagMulticast == 0 {
			return nil, fmt.Errorf("discovery: interface %q is not multicast-capable", n)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// LocalAddr is one address of an interface discovery works on.
type LocalAddr struct {
	Iface string
	Addr  netip.Addr // a link-local IPv6 address is zoned to Iface
}

// InterfaceAddrs returns the addresses of the named interfaces, read now,
// in the order of names and of each interface's addresses. An interface
// that is gone has none.
func InterfaceAddrs(names []string) []LocalAddr {
	var out []LocalAddr
	for _, name := range names {
		prefixes, err := readPrefixes(name)
		if err != nil {
			continue
		}
		out = appendLocal(out, name, prefixes)
	}
	return out
}

// appendLocal appends the addresses of iface's prefixes to out.
func appendLocal(out []LocalAddr, iface string, prefixes []netip.Prefix) []LocalAddr {
	for _, p := range prefixes {
		a := p.Addr()
		if a.Is6() && a.IsLinkLocalUnicast() {
			a = a.WithZone(iface)
		}
		out = append(out, LocalAddr{Iface: iface, Addr: a})
	}
	return out
}

// readPrefixes reads the interface's addresses with their prefix lengths.
func readPrefixes(name string) ([]netip.Prefix, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	return ifacePrefixes(ifi)
}

func ifacePrefixes(ifi *net.Interface) ([]netip.Prefix, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	var prefixes []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, _ := ipn.Mask.Size()
		prefixes = append(prefixes, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return prefixes, nil
}
