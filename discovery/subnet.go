package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Pure parts of the unicast fallback (unicast.go): which addresses a sweep
// may ask, and what a --peer names.

// sweepAddrs returns the addresses a subnet sweep asks on one interface,
// given its prefixes: every host address of each private IPv4 subnet
// (RFC 1918), or of the /bits around the interface's own address when the
// subnet is wider, never the network or broadcast address, never one of
// the interface's own addresses, at most 2^(32-bits)-2 in all (a /24's
// host addresses by default), in the order of the prefixes. Public,
// loopback, link-local and IPv6 prefixes give none.
func sweepAddrs(prefixes []netip.Prefix, bits int) []netip.Addr {
	limit := 1<<(32-bits) - 2
	own := make(map[netip.Addr]bool)
	for _, p := range prefixes {
		own[p.Addr().Unmap()] = true
	}
	var out []netip.Addr
	seen := make(map[netip.Addr]bool)
	for _, p := range prefixes {
		a := p.Addr().Unmap()
		if !a.Is4() || !a.IsPrivate() || p.Bits() > 30 {
			continue
		}
		sub := netip.PrefixFrom(a, max(p.Bits(), bits)).Masked()
		first, last := sub.Addr(), lastAddr(sub)
		for h := first.Next(); h.IsValid() && h.Less(last) && len(out) < limit; h = h.Next() {
			if !own[h] && !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	return out
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom4(b)
}

// subnetOf returns the interface whose prefixes hold a (an IPv4 address
// on its link), and that interface's own address in that prefix.
func subnetOf(local []linkPrefixes, a netip.Addr) (iface string, src netip.Addr, ok bool) {
	for _, ip := range local {
		for _, p := range ip.prefixes {
			if p.Addr().Is4() && p.Masked().Contains(a) {
				return ip.iface, p.Addr(), true
			}
		}
	}
	return "", netip.Addr{}, false
}

// linkPrefixes is one interface's addresses with their prefix lengths.
type linkPrefixes struct {
	iface    string
	prefixes []netip.Prefix
}

func readAllPrefixes(ifaces []string) []linkPrefixes {
	var out []linkPrefixes
	for _, name := range ifaces {
		if ps, err := readPrefixes(name); err == nil {
			out = append(out, linkPrefixes{iface: name, prefixes: ps})
		}
	}
	return out
}

// SplitPeer parses what --peer names: "HOST", "HOST:PORT", or the URL of a
// lanft page or signaling server ("http://HOST:PORT/", "ws://HOST:PORT/ws").
// Without a port, the hello port (DefaultHelloPort) is meant.
func SplitPeer(s string) (host string, port int, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", 0, fmt.Errorf("--peer: empty; give HOST, HOST:PORT or the URL of a lanft page")
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Hostname() == "" {
			return "", 0, fmt.Errorf("--peer %q: not a URL with a host; give HOST, HOST:PORT or the URL of a lanft page", s)
		}
		host, ps := u.Hostname(), u.Port()
		if ps == "" {
			return host, DefaultHelloPort, nil
		}
		port, err := strconv.Atoi(ps)
		if err != nil || port < 1 || port > 65535 {
			return "", 0, fmt.Errorf("--peer %q: port %q is not 1-65535", s, ps)
		}
		return host, port, nil
	}
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		// No port (a bare name, IPv4 or IPv6 address).
		return strings.Trim(s, "[]"), DefaultHelloPort, nil
	}
	port, err = strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 || host == "" {
		return "", 0, fmt.Errorf("--peer %q: want HOST:PORT with a port 1-65535", s)
	}
	return host, port, nil
}

// ResolvePeers turns --peer values into addresses (a name may give
// several), IPv4 only, as the sweep.
func ResolvePeers(ctx context.Context, peers []string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, s := range peers {
		host, port, err := SplitPeer(s)
		if err != nil {
			return nil, err
		}
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		if err != nil {
			return nil, fmt.Errorf("--peer %q: cannot resolve %q: %w", s, host, err)
		}
		for _, a := range addrs {
			ap := netip.AddrPortFrom(a.Unmap(), uint16(port))
			if !slices.Contains(out, ap) {
				out = append(out, ap)
			}
		}
	}
	return out, nil
}
