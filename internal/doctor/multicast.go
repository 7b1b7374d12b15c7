package doctor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/net/ipv4"
)

// mdnsGroup is the IPv4 mDNS group, 224.0.0.251.
var mdnsGroup = net.IPv4(224, 0, 0, 251)

// MulticastRoute checks that the system can join the mDNS group without
// naming an interface, as the mDNS library's query listener does: that
// needs a route for 224.0.0.251 (a multicast route or a default route).
// ifs are the interfaces in use, named in the fix.
func MulticastRoute(ifs []net.Interface) Result {
	r := Result{Check: "multicast route"}
	// Port 0: the same join as the library's listener, without taking 5353.
	c, err := net.ListenMulticastUDP("udp4", nil, &net.UDPAddr{IP: mdnsGroup})
	if err != nil {
		dev := "IFACE"
		if len(ifs) > 0 {
			dev = ifs[0].Name
		}
		r.Status = Fail
		r.Detail = "the system has no route for 224.0.0.251, so lanft's mDNS queries cannot listen for answers (" + oneLine(unwrapOp(err)) + ")"
		r.Fix = hint("add one: sudo ip route add 224.0.0.0/4 dev "+dev,
			"add a route for 224.0.0.0/4 (or a default route) on "+dev)
		return r
	}
	c.Close()
	r.Status, r.Detail = OK, "the system routes 224.0.0.251"
	if via := routeInterface(mdnsGroup); via != "" {
		r.Detail += " via " + via
	}
	return r
}

// routeInterface names the interface the system sends to dst through, or "".
func routeInterface(dst net.IP) string {
	// Connecting a UDP socket sends nothing; it only picks the route.
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: dst, Port: 9})
	if err != nil {
		return ""
	}
	defer c.Close()
	local := c.LocalAddr().(*net.UDPAddr).IP
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifi := range ifs {
		for _, ip := range ipv4Addrs(&ifi) {
			if ip.Equal(local) {
				return ifi.Name
			}
		}
	}
	return ""
}

// Multicast checks that multicast works on ifi: it joins 224.0.0.251 there
// (as lanft's mDNS responder does), sends a probe to that group on a port
// of its own with a TTL of 1 and multicast loopback on, and waits up to
// timeout to hear it back on that interface.
func Multicast(ctx context.Context, ifi *net.Interface, timeout time.Duration) Result {
	r := Result{Check: "multicast on " + ifi.Name}
	heard, err := probeMulticast(ctx, ifi, timeout)
	var pe *probeError
	switch {
	case err == nil:
		r.Status = OK
		r.Detail = fmt.Sprintf("joined 224.0.0.251 and heard our probe back in %s", heard.Round(time.Microsecond))
	case errors.As(err, &pe) && pe.step == "join":
		r.Status = Fail
		r.Detail = "cannot join 224.0.0.251: " + oneLine(pe.err)
		r.Fix = hint("check that "+ifi.Name+" is up with an address (ip addr show "+ifi.Name+") and multicast-capable (sudo ip link set "+ifi.Name+" multicast on)",
			"check that "+ifi.Name+" is up, has an address and supports multicast, or name another interface")
	case errors.As(err, &pe) && pe.step == "send":
		r.Status = Fail
		r.Detail = "cannot send multicast: " + oneLine(pe.err)
		r.Fix = "a firewall or policy blocks outgoing multicast: allow UDP to 224.0.0.251 port 5353 out on " + ifi.Name
	case errors.As(err, &pe) && pe.step == "hear":
		r.Status = Fail
		r.Detail = fmt.Sprintf("sent a probe to 224.0.0.251 but did not hear it back within %s", timeout)
		r.Fix = "a firewall probably drops incoming multicast: allow UDP from the LAN to 224.0.0.251 port 5353 in on " + ifi.Name
	default:
		r.Status, r.Detail = Fail, oneLine(err)
		r.Fix = "see the error; run with --interface to check another interface"
	}
	return r
}

// probeError says which step of the multicast probe failed.
type probeError struct {
	step string // "join", "send" or "hear"
	err  error
}

func (e *probeError) Error() string { return e.step + ": " + e.err.Error() }
func (e *probeError) Unwrap() error { return e.err }

// probeMulticast does Multicast's work and returns how long the probe took
// to come back.
func probeMulticast(ctx context.Context, ifi *net.Interface, timeout time.Duration) (time.Duration, error) {
	c, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		return 0, fmt.Errorf("open a UDP socket: %w", err)
	}
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	if port == 5353 {
		return 0, errors.New("the system gave the probe port 5353; run again")
	}
	p := ipv4.NewPacketConn(c)
	group := &net.UDPAddr{IP: mdnsGroup}
	if err := p.JoinGroup(ifi, group); err != nil {
		return 0, &probeError{"join", unwrapOp(err)}
	}
	defer p.LeaveGroup(ifi, group)
	for _, set := range []func() error{
		func() error { return p.SetMulticastInterface(ifi) },
		func() error { return p.SetMulticastTTL(1) }, // never beyond the link
		func() error { return p.SetMulticastLoopback(true) },
	} {
		if err := set(); err != nil {
			return 0, &probeError{"send", unwrapOp(err)}
		}
	}
	// Where supported, check that the probe came in on ifi.
	checkIf := p.SetControlMessage(ipv4.FlagInterface, true) == nil

	var nonce [8]byte
	rand.Read(nonce[:])
	msg := []byte("lanft doctor probe " + hex.EncodeToString(nonce[:]))
	dst := &net.UDPAddr{IP: mdnsGroup, Port: port}

	start := time.Now()
	deadline := start.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()

	// Send up to three times, a third of the timeout apart: loopback does
	// not lose packets, but a busy machine may delay one.
	buf := make([]byte, 512)
	for try := 1; try <= 3; try++ {
		if _, err := p.WriteTo(msg, nil, dst); err != nil {
			return 0, &probeError{"send", unwrapOp(err)}
		}
		next := start.Add(time.Duration(try) * timeout / 3)
		if try == 3 || next.After(deadline) {
			next = deadline
		}
		c.SetReadDeadline(next)
		for {
			n, cm, _, err := p.ReadFrom(buf)
			if err != nil {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				return 0, &probeError{"hear", unwrapOp(err)}
			}
			if !bytes.Equal(buf[:n], msg) {
				continue // someone else's packet to this port
			}
			if checkIf && cm != nil && cm.IfIndex != 0 && cm.IfIndex != ifi.Index {
				continue // looped back on another interface
			}
			return time.Since(start), nil
		}
		if !time.Now().Before(deadline) {
			break
		}
	}
	return 0, &probeError{"hear", fmt.Errorf("no probe back within %s", timeout)}
}

// unwrapOp drops the "listen udp4 0.0.0.0:0:" style prefix of a net.OpError,
// keeping what went wrong ("setsockopt: no such device").
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		if op.Op != "" {
			return fmt.Errorf("%s: %w", op.Op, op.Err)
		}
		return op.Err
	}
	return err
}
