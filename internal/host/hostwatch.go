package host

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// How a LAN instance tells a dead host from a slow one, once its WebSocket
// to the host has ended (LAN.Lost): it connects to the host's signaling
// port.
//
//   - The connection is refused or reset: nothing listens there any more,
//     the process is gone (killed or exited). Dead, at once.
//   - The connection is accepted: something holds the port. A process that
//     is only stopped (SIGSTOP, a stall under load) still has its listening
//     socket, and the kernel completes the handshake into its backlog, so
//     it is alive. Not dead; the node logs in again and waits for it.
//   - No answer within probeTimeout (the machine is off, or its link is
//     down): one miss. probeMisses misses in a row, probeEvery apart, are a
//     death; an answer of either kind in between decides instead.
//
// So a pause is never a death, and a kill is seen within a round trip.
const (
	probeEvery   = 200 * time.Millisecond
	probeTimeout = 300 * time.Millisecond
	probeMisses  = 3
)

// verdict is what one probe of a host's port says.
type verdict int

const (
	unanswered verdict = iota // no answer in time, or unreachable for now
	listening                 // the handshake completed: the socket is there
	refused                   // refused or reset: nothing listens
)

// probePort connects once to addr, within timeout.
func probePort(ctx context.Context, addr netip.AddrPort, timeout time.Duration) verdict {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr.Addr().String(), strconv.Itoa(int(addr.Port()))))
	if err == nil {
		c.Close()
		return listening
	}
	return verdictOf(err)
}

// verdictOf classifies a failed connect: only a refusal or a reset says
// that nothing listens; a timeout or an unreachable network says nothing.
func verdictOf(err error) verdict {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return refused
	}
	return unanswered
}

// hostDead probes addr until it can tell: true when nothing listens there
// (refused) or probeMisses probes in a row went unanswered, false when the
// port accepts a connection or ctx ends.
func hostDead(ctx context.Context, addr netip.AddrPort, probe func(context.Context, netip.AddrPort, time.Duration) verdict) bool {
	for misses := 0; ; {
		switch probe(ctx, addr, probeTimeout) {
		case refused:
			return true
		case listening:
			return false
		}
		if misses++; misses >= probeMisses {
			return ctx.Err() == nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(probeEvery):
		}
	}
}
