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

// Multicast checks that discovery's mDNS works on ifi, the way discovery
// does it, with a port of its own instead of 5353 and a TTL of 1:
//
//   - a member of 224.0.0.251 on ifi, as lanft's responder is (it joins the
//     group on that interface only, so no multicast route is needed);
//   - a query socket bound to ifi's IPv4 address with ifi as its multicast
//     interface, as lanft's querier is (it joins no group), sends a probe
//     to the group;
//   - the member hears it on ifi (through the kernel's multicast loopback)
//     and answers by unicast to the probe's source, as responders answer
//     lanft's queries; the query socket hears the answer.
//
// It waits up to timeout for the round trip.
func Multicast(ctx context.Context, ifi *net.Interface, timeout time.Duration) Result {
	r := Result{Check: "multicast on " + ifi.Name}
	took, err := probeMulticast(ctx, ifi, timeout)
	var pe *probeError
	switch {
	case err == nil:
		r.Status = OK
		r.Detail = fmt.Sprintf("a query sent as discovery sends it reached a member of 224.0.0.251, and its unicast answer came back, in %s", took.Round(time.Microsecond))
	case errors.As(err, &pe) && pe.step == "join":
		r.Status = Fail
		r.Detail = "cannot join 224.0.0.251, so lanft cannot hear the others' queries: " + oneLine(pe.err)
		r.Fix = hint("check that "+ifi.Name+" is up with an address (ip addr show "+ifi.Name+") and multicast-capable (sudo ip link set "+ifi.Name+" multicast on)",
			"check that "+ifi.Name+" is up, has an address and supports multicast, or name another interface")
	case errors.As(err, &pe) && pe.step == "send":
		r.Status = Fail
		r.Detail = "cannot send lanft's mDNS query: " + oneLine(pe.err)
		r.Fix = "a firewall or policy blocks outgoing multicast: allow UDP to 224.0.0.251 port 5353 out on " + ifi.Name
	case errors.As(err, &pe) && pe.step == "hear":
		r.Status = Fail
		r.Detail = fmt.Sprintf("sent a query to 224.0.0.251 but did not hear it on %s within %s", ifi.Name, timeout)
		r.Fix = "a firewall probably drops multicast: allow UDP to 224.0.0.251 port 5353, in and out, on " + ifi.Name
	case errors.As(err, &pe) && pe.step == "answer":
		r.Status = Fail
		r.Detail = fmt.Sprintf("the query went out, but its unicast answer did not come back within %s", timeout)
		r.Fix = "a firewall probably drops the answers: allow UDP from port 5353 in on " + ifi.Name
	default:
		r.Status, r.Detail = Fail, oneLine(err)
		r.Fix = "see the error; run with --interface to check another interface"
	}
	return r
}

// probeError says which step of the multicast probe failed.
type probeError struct {
	step string // "join", "send", "hear" or "answer"
	err  error
}

func (e *probeError) Error() string { return e.step + ": " + e.err.Error() }
func (e *probeError) Unwrap() error { return e.err }

// probeMulticast does Multicast's work and returns how long the round trip
// took.
func probeMulticast(ctx context.Context, ifi *net.Interface, timeout time.Duration) (time.Duration, error) {
	// The member, like the responder: any address, a port of its own,
	// 224.0.0.251 joined on ifi.
	mc, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		return 0, fmt.Errorf("open a UDP socket: %w", err)
	}
	defer mc.Close()
	port := mc.LocalAddr().(*net.UDPAddr).Port
	if port == mdnsPort {
		return 0, errors.New("the system gave the probe port 5353; run again")
	}
	member := ipv4.NewPacketConn(mc)
	group := &net.UDPAddr{IP: mdnsGroup}
	if err := member.JoinGroup(ifi, group); err != nil {
		return 0, &probeError{"join", unwrapOp(err)}
	}
	defer member.LeaveGroup(ifi, group)
	// Where supported, check that the query came in on ifi.
	checkIf := member.SetControlMessage(ipv4.FlagInterface, true) == nil

	// The query socket, like the querier: bound to ifi's first IPv4
	// address (any address when it has none), ifi its multicast interface.
	local := net.IPv4zero
	if ips := ipv4Addrs(ifi); len(ips) > 0 {
		local = ips[0]
	}
	qc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: local})
	if err != nil {
		return 0, &probeError{"send", unwrapOp(err)}
	}
	defer qc.Close()
	query := ipv4.NewPacketConn(qc)
	for _, set := range []func() error{
		func() error { return query.SetMulticastInterface(ifi) },
		func() error { return query.SetMulticastTTL(1) }, // never beyond the link
		func() error { return query.SetMulticastLoopback(true) },
	} {
		if err := set(); err != nil {
			return 0, &probeError{"send", unwrapOp(err)}
		}
	}

	var nonce [8]byte
	rand.Read(nonce[:])
	msg := []byte("lanft doctor probe " + hex.EncodeToString(nonce[:]))
	answer := append([]byte("answer to "), msg...)
	dst := &net.UDPAddr{IP: mdnsGroup, Port: port}

	start := time.Now()
	deadline := start.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, func() {
		mc.SetReadDeadline(time.Now())
		qc.SetReadDeadline(time.Now())
	})
	defer stop()

	// Send up to three times, a third of the timeout apart: loopback does
	// not lose packets, but a busy machine may delay one.
	buf := make([]byte, 512)
	heard := false
	for try := 1; try <= 3; try++ {
		if !heard {
			if _, err := qc.WriteTo(msg, dst); err != nil {
				return 0, &probeError{"send", unwrapOp(err)}
			}
		}
		next := start.Add(time.Duration(try) * timeout / 3)
		if try == 3 || next.After(deadline) {
			next = deadline
		}
		if !heard {
			from, err := hearQuery(member, mc, buf, msg, next, checkIf, ifi.Index)
			switch {
			case ctx.Err() != nil:
				return 0, ctx.Err()
			case errors.Is(err, os.ErrDeadlineExceeded):
				if !time.Now().Before(deadline) {
					return 0, &probeError{"hear", fmt.Errorf("no query heard within %s", timeout)}
				}
				continue
			case err != nil:
				return 0, &probeError{"hear", unwrapOp(err)}
			}
			heard = true
			if _, err := mc.WriteTo(answer, from); err != nil {
				return 0, &probeError{"answer", unwrapOp(err)}
			}
		}
		qc.SetReadDeadline(next)
		for {
			n, _, err := qc.ReadFrom(buf)
			if err != nil {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				return 0, &probeError{"answer", unwrapOp(err)}
			}
			if bytes.Equal(buf[:n], answer) {
				return time.Since(start), nil
			}
		}
		if !time.Now().Before(deadline) {
			break
		}
	}
	return 0, &probeError{"answer", fmt.Errorf("no answer within %s", timeout)}
}

// hearQuery reads the member socket until msg arrives on interface ifIndex
// (when checkIf) or the deadline passes, and returns its source.
func hearQuery(member *ipv4.PacketConn, c net.PacketConn, buf, msg []byte, deadline time.Time, checkIf bool, ifIndex int) (net.Addr, error) {
	c.SetReadDeadline(deadline)
	for {
		n, cm, from, err := member.ReadFrom(buf)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(buf[:n], msg) {
			continue // someone else's packet to this port
		}
		if checkIf && cm != nil && cm.IfIndex != 0 && cm.IfIndex != ifIndex {
			continue // looped back on another interface
		}
		return from, nil
	}
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
