package doctor

import (
	"fmt"
	"net"
	"runtime"
	"strings"

	"github.com/lanft/lanft/discovery"
)

// DefaultInterfaces reports which interfaces discovery uses when none are
// named, and why it skips the others. It returns the chosen ones.
func DefaultInterfaces() ([]net.Interface, Result) {
	r := Result{Check: "interfaces"}
	chosen, skipped, err := discovery.DefaultInterfaces()
	if err != nil {
		r.Status, r.Detail = Fail, oneLine(err)
		r.Fix = "lanft cannot list the network interfaces; run it as a normal user on the host, not in a restricted sandbox"
		return nil, r
	}
	skip := "none"
	if len(skipped) > 0 {
		skip = strings.Join(skipped, "; ")
	}
	if len(chosen) == 0 {
		r.Status = Fail
		r.Detail = "no interface is usable for discovery (skipped " + skip + ")"
		r.Fix = "connect to a network (Ethernet or Wi-Fi), or name an interface with --interface NAME"
		return nil, r
	}
	var using []string
	for _, ifi := range chosen {
		using = append(using, describe(&ifi))
	}
	r.Status = OK
	r.Detail = "using " + strings.Join(using, ", ") + "; skipped " + skip
	return chosen, r
}

// NamedInterface checks an interface named with --interface. It returns
// the interface when the other checks can use it.
func NamedInterface(name string) (*net.Interface, Result) {
	r := Result{Check: "interface " + name, Status: Fail}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		r.Detail = "no such interface"
		r.Fix = "name one of: " + upInterfaces()
		return nil, r
	}
	ipv4 := len(ipv4Addrs(ifi)) > 0
	switch {
	case ifi.Flags&net.FlagUp == 0:
		r.Detail = "down"
		r.Fix = hint("bring it up: sudo ip link set "+name+" up", "bring it up (connect it, or enable it in the network settings)")
	case ifi.Flags&net.FlagMulticast == 0:
		r.Detail = "not multicast-capable: mDNS discovery cannot run on it"
		r.Fix = hint("sudo ip link set "+name+" multicast on, or name another interface",
			"name another interface, or skip discovery with --signal URL")
	case ifi.Flags&net.FlagLoopback == 0 && ifi.Flags&net.FlagRunning == 0:
		r.Detail = "no carrier (cable unplugged or Wi-Fi not connected)"
		r.Fix = "connect it to the network"
	case !ipv4:
		r.Detail = "no IPv4 address: lanft listens for signaling on the interfaces' IPv4 addresses"
		r.Fix = "wait for DHCP or give it an address"
	default:
		r.Status, r.Detail = OK, "up, multicast, "+addrList(ifi)
		return ifi, r
	}
	return nil, r
}

// describe renders "eth0 (10.0.0.5/24)".
func describe(ifi *net.Interface) string {
	return fmt.Sprintf("%s (%s)", ifi.Name, addrList(ifi))
}

// addrList lists an interface's addresses, or says it has none.
func addrList(ifi *net.Interface) string {
	addrs, err := ifi.Addrs()
	if err != nil || len(addrs) == 0 {
		return "no address"
	}
	var s []string
	for _, a := range addrs {
		s = append(s, a.String())
	}
	return strings.Join(s, " ")
}

// ipv4Addrs returns an interface's IPv4 addresses.
func ipv4Addrs(ifi *net.Interface) []net.IP {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			ips = append(ips, ipn.IP.To4())
		}
	}
	return ips
}

// upInterfaces lists the interfaces that are up, for a fix.
func upInterfaces() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "(cannot list interfaces: " + oneLine(err) + ")"
	}
	var up []string
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp != 0 {
			up = append(up, ifi.Name)
		}
	}
	if len(up) == 0 {
		return "(none is up)"
	}
	return strings.Join(up, ", ")
}

// hint picks the Linux form of a fix or the one for other systems.
func hint(linux, other string) string {
	if runtime.GOOS == "linux" {
		return linux
	}
	return other
}

// oneLine keeps an error message to one line.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}
