// Package doctor checks whether this machine can run lanft: which network
// interfaces discovery would use, whether mDNS works on them as discovery
// does it, whether UDP 5353 is free or shared, whether lanft can listen for
// signaling and WebRTC, which lanft instances answer on the LAN and whether
// they can be reached (neighbours.go), and whether a remote signaling host
// answers.
//
// Each check returns one Result: a status, a one-line detail and, when
// something is wrong, a fix a person can apply. Only what keeps lanft from
// working is a failure. What the checks send: on each checked interface, a
// multicast probe to 224.0.0.251 on a port of its own (never 5353) with a
// TTL of 1, heard back through the kernel's multicast loopback, and a
// unicast answer to it from this machine to itself; the IGMP membership
// reports that joining 224.0.0.251 on that interface causes, as lanft's own
// mDNS responder does; what lanft's discovery sends to find the other
// instances (neighbours.go); and, when asked, one WebSocket handshake.
package doctor

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/lanft/lanft/discovery"
)

// Status is the outcome of a check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn" // lanft works, perhaps not as well as it could
	Fail Status = "fail" // lanft cannot work as configured
)

// Result is the outcome of one check.
type Result struct {
	Check  string `json:"check"`  // what was checked, e.g. "multicast on eth0"
	Status Status `json:"status"` // ok, warn or fail
	Detail string `json:"detail"` // what was found, one line
	Fix    string `json:"fix,omitempty"`
}

// String renders r as one line: "ok    check: detail", or for a warning or
// failure "FAIL  check: detail — fix: ...".
func (r Result) String() string {
	status := string(r.Status)
	if r.Status == Fail {
		status = "FAIL"
	}
	s := fmt.Sprintf("%-4s  %s: %s", status, r.Check, r.Detail)
	if r.Fix != "" && r.Status != OK {
		s += " — fix: " + r.Fix
	}
	return s
}

// Config says what to check.
type Config struct {
	// Interfaces names the interfaces to check. Empty means the ones
	// discovery picks by default.
	Interfaces []string
	// Signal is a remote signaling URL (ws://HOST:PORT/ws) to try. Empty
	// skips that check. When set, lanft does not use LAN discovery, so
	// multicast problems are reported as warnings, not failures.
	Signal string
	// ProbeTimeout bounds the wait for the multicast probe on each
	// interface (default 1 s) and the signaling handshake (5 s by default,
	// at least ProbeTimeout).
	ProbeTimeout time.Duration
	// Peers are lanft instances given by hand (--peer), asked besides
	// those discovery finds (neighbours.go).
	Peers []netip.AddrPort
	// NoProbe skips the unicast probe of the subnet (--no-probe): then a
	// multicast failure is one, with no fallback.
	NoProbe bool
}

// Failed reports whether any result is a failure.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Run runs every check in turn and returns their results, in the order a
// person would fix them.
func Run(ctx context.Context, cfg Config) []Result {
	probe := cfg.ProbeTimeout
	if probe <= 0 {
		probe = time.Second
	}
	var results []Result

	var ifs []net.Interface
	if len(cfg.Interfaces) == 0 {
		var r Result
		ifs, r = DefaultInterfaces()
		results = append(results, r)
	} else {
		for _, name := range cfg.Interfaces {
			ifi, r := NamedInterface(name)
			results = append(results, r)
			if ifi != nil {
				ifs = append(ifs, *ifi)
			}
		}
	}

	// Discovery: mDNS on each interface, the port. (No multicast route is
	// needed: discovery joins the group and sends its queries on named
	// interfaces.)
	var disc []Result
	for i := range ifs {
		disc = append(disc, Multicast(ctx, &ifs[i], probe))
	}
	disc = append(disc, MDNSPort(ifs))
	if cfg.Signal == "" && !cfg.NoProbe {
		// The unicast fallback finds instances without multicast.
		for i := range disc[:len(ifs)] {
			if disc[i].Status == Fail {
				disc[i].Status = Warn
				disc[i].Detail += fmt.Sprintf("; lanft falls back to probing its subnet over unicast (TCP %d), which finds instances more slowly", discovery.DefaultHelloPort)
			}
		}
	}
	if cfg.Signal != "" {
		for i := range disc {
			if disc[i].Status == Fail {
				disc[i].Status = Warn
				disc[i].Detail += " (discovery is not used with --signal)"
			}
		}
	}
	results = append(results, disc...)

	if cfg.Signal == "" {
		results = append(results, Neighbours(ctx, ifs, probe, cfg.Peers, cfg.NoProbe)...)
	}
	for i := range ifs {
		results = append(results, ListenPorts(&ifs[i]))
	}
	if cfg.Signal != "" {
		results = append(results, Signal(ctx, cfg.Signal, max(5*time.Second, probe)))
	}
	return results
}
