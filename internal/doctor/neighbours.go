package doctor

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/lanft/lanft/discovery"
)

// Checks of the LAN beyond this machine: what takes the route to each
// interface's subnet (a VPN can), which lanft instances answer and how
// (mDNS, or only the unicast probe: the network drops multicast), and
// whether each can be reached (a firewall on its port; client isolation,
// when an instance we reach sees one we cannot). They send what lanft's
// discovery sends: one mDNS query per interface, then, if no other machine
// answers it, the unicast probe within its bounds (at most 254 addresses
// of the interface's own private subnet, on TCP discovery.DefaultHelloPort),
// one hello to each instance found, and one TCP connection to each
// instance it lists on our subnet.

// reachTimeout bounds one TCP connection to an instance.
const reachTimeout = 1500 * time.Millisecond

// Neighbours runs those checks on ifs. peers are addresses given by hand
// (--peer), asked too; noProbe leaves out the probe of the subnet.
func Neighbours(ctx context.Context, ifs []net.Interface, window time.Duration, peers []netip.AddrPort, noProbe bool) []Result {
	var names []string
	for _, ifi := range ifs {
		names = append(names, ifi.Name)
	}
	res, err := discovery.Scan(ctx, discovery.ScanConfig{Interfaces: names, Window: window,
		Unicast: discovery.UnicastConfig{Peers: peers, NoSweep: noProbe}})
	if err != nil {
		return []Result{{Check: "lanft instances", Status: Warn, Detail: "could not look: " + oneLine(err)}}
	}
	var out []Result
	for i := range ifs {
		ifi := &ifs[i]
		var here []discovery.Instance
		for _, in := range res.Instances {
			if in.Iface == ifi.Name && !in.Local {
				here = append(here, in)
			}
		}
		out = append(out, Route(ifi, addrsOf(here)))
		out = append(out, instances(ifi, here, res.Swept))
		for _, in := range here {
			if r, bad := reach(in); bad {
				out = append(out, r)
			}
		}
		if r, bad := isolation(ctx, ifi, here, res.Instances); bad {
			out = append(out, r)
		}
	}
	return out
}

func addrsOf(ins []discovery.Instance) []netip.Addr {
	var out []netip.Addr
	for _, in := range ins {
		out = append(out, in.Addr)
	}
	return out
}

// Route checks that the kernel sends traffic for ifi's IPv4 subnets (a
// spread of their addresses, and extra) out of ifi, and names the
// interface that takes it otherwise (a VPN that routes the LAN's range,
// or a second network with an overlapping one). It sends nothing.
func Route(ifi *net.Interface, extra []netip.Addr) Result {
	r := Result{Check: "subnet on " + ifi.Name, Status: OK}
	prefixes := ipv4Prefixes(ifi)
	if len(prefixes) == 0 {
		r.Detail = "no IPv4 subnet to route to"
		return r
	}
	var elsewhere []string
	var subnets []string
	for _, p := range prefixes {
		subnets = append(subnets, p.Masked().String())
		for _, a := range append(spread(p), extra...) {
			if !p.Masked().Contains(a) || a == p.Addr() {
				continue
			}
			if via := routeIface(a); via != "" && via != ifi.Name {
				elsewhere = append(elsewhere, a.String()+" over "+via)
			}
			if len(elsewhere) == 3 {
				break
			}
		}
	}
	if len(elsewhere) == 0 {
		r.Detail = "this machine reaches " + strings.Join(subnets, ", ") + " over " + ifi.Name
		return r
	}
	r.Status = Warn
	r.Detail = fmt.Sprintf("a route (a VPN's?) sends part of %s's subnet %s over another interface: %s; lanft binds its LAN traffic to %s, but other programs go that way",
		ifi.Name, strings.Join(subnets, ", "), strings.Join(elsewhere, ", "), ifi.Name)
	r.Fix = "let the VPN allow local network access (\"allow LAN\", split tunneling), or check the routes (ip route get ADDR); if lanft cannot reach a peer, disconnect the VPN"
	return r
}

// spread picks nine addresses across a prefix: the first host, the last,
// and seven between.
func spread(p netip.Prefix) []netip.Addr {
	p = p.Masked()
	size := uint32(1) << (32 - p.Bits())
	if size < 4 {
		return nil
	}
	base := p.Addr().As4()
	b := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	var out []netip.Addr
	for i := uint32(0); i <= 8; i++ {
		off := max(1, min(size-2, i*size/8))
		v := b + off
		out = append(out, netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
	}
	return out
}

// routeIface names the interface whose address the kernel picks as the
// source towards a (a UDP "connection" sends nothing), or "".
func routeIface(a netip.Addr) string {
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 9)))
	if err != nil {
		return ""
	}
	defer c.Close()
	src, ok := netip.AddrFromSlice(c.LocalAddr().(*net.UDPAddr).IP)
	if !ok {
		return ""
	}
	ifs, _ := net.Interfaces()
	for _, ifi := range ifs {
		for _, p := range ipv4Prefixes(&ifi) {
			if p.Addr() == src.Unmap() {
				return ifi.Name
			}
		}
	}
	return ""
}

func ipv4Prefixes(ifi *net.Interface) []netip.Prefix {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			ip, _ := netip.AddrFromSlice(ipn.IP.To4())
			ones, _ := ipn.Mask.Size()
			out = append(out, netip.PrefixFrom(ip, ones))
		}
	}
	return out
}

// instances says which lanft instances answer on ifi and how: over mDNS
// (fine), or only the unicast probe (the network drops multicast; lanft
// falls back to that probe).
func instances(ifi *net.Interface, here []discovery.Instance, swept int) Result {
	r := Result{Check: "lanft on " + ifi.Name, Status: OK}
	var mdns, probe []string
	for _, in := range here {
		d := fmt.Sprintf("%s (%s)", in.Name, in.Addr)
		if in.ViaMDNS {
			mdns = append(mdns, d)
		} else {
			probe = append(probe, d)
		}
	}
	switch {
	case len(mdns) > 0:
		r.Detail = fmt.Sprintf("%d other lanft instance(s) answer over mDNS: %s", len(mdns), strings.Join(mdns, ", "))
	case len(probe) > 0:
		r.Status = Warn
		r.Detail = fmt.Sprintf("no instance answers over mDNS, but %d answer the unicast probe: %s. This network drops multicast; lanft falls back to probing its subnet (TCP %d), which finds a newcomer more slowly",
			len(probe), strings.Join(probe, ", "), discovery.DefaultHelloPort)
		r.Fix = fmt.Sprintf("allow multicast (mDNS: UDP 224.0.0.251 port 5353) on the router or access point (settings named \"multicast filtering\", \"IGMP snooping\" or a guest network block it), or give an address by hand: lanft receive --peer %s", here[0].Addr)
	case swept > 0:
		r.Detail = fmt.Sprintf("no other lanft instance answers on this network now (mDNS, and a probe of %d addresses on TCP %d)", swept, discovery.DefaultHelloPort)
	default:
		r.Detail = "no other lanft instance answers on this network now"
	}
	return r
}

// reach reports an instance that answers discovery but not at its
// signaling port: a firewall on that machine.
func reach(in discovery.Instance) (Result, bool) {
	if in.Signaling {
		return Result{}, false
	}
	how := "mDNS"
	if !in.ViaMDNS {
		how = "the unicast probe"
	}
	return Result{
		Check:  fmt.Sprintf("reach %s (%s)", in.Name, in.Addr),
		Status: Warn,
		Detail: fmt.Sprintf("it answers %s, but its signaling port TCP %d does not: a firewall on that machine blocks lanft, so nobody can log in to it or send to it directly", how, in.Port),
		Fix:    "on that machine, allow lanft's incoming TCP (signaling, direct transfers) and UDP (WebRTC) in its firewall, and run lanft doctor there",
	}, true
}

// isolation looks for an instance that one we reach sees, on our subnet,
// that this machine cannot reach: the network isolates its clients.
func isolation(ctx context.Context, ifi *net.Interface, here, all []discovery.Instance) (Result, bool) {
	found := map[string]bool{}
	for _, in := range all {
		found[in.ID] = true
	}
	prefixes := ipv4Prefixes(ifi)
	onLink := func(a netip.Addr) bool {
		for _, p := range prefixes {
			if p.Masked().Contains(a) && p.Addr() != a {
				return true
			}
		}
		return false
	}
	for _, via := range here {
		if !via.Signaling {
			continue
		}
		for _, p := range via.Peers {
			if found[p.ID] || !onLink(p.Addr) || p.Port == 0 {
				continue
			}
			found[p.ID] = true
			dctx, cancel := context.WithTimeout(ctx, reachTimeout)
			c, err := discovery.LANDialer([]string{ifi.Name})(dctx, "tcp4", netip.AddrPortFrom(p.Addr, uint16(p.Port)).String())
			cancel()
			if err == nil {
				c.Close()
				continue
			}
			return Result{
				Check:  "client isolation on " + ifi.Name,
				Status: Warn,
				Detail: fmt.Sprintf("%s (%s) is reachable and sees %s (%s), which this machine cannot reach (%s): the network isolates its clients from each other (Wi-Fi client or AP isolation)", via.Name, via.Addr, p.Name, p.Addr, oneLine(unwrapOp(err))),
				Fix:    "turn off client (AP) isolation on the access point, or use a network without it (not a guest network), or connect one of the machines by cable; a lanft that both reach can relay between them",
			}, true
		}
	}
	return Result{}, false
}
