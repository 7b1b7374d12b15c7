package discovery

import (
	"fmt"
	"net"
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

// resolveInterfaces checks the named interfaces, or picks the default ones
// when names is empty, and returns their names.
func resolveInterfaces(names []string) ([]string, error) {
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
