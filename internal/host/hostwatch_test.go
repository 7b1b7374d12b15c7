package host

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// A real port on loopback: a listener that never accepts (a process that
// is stopped: its socket stays, the kernel completes handshakes into the
// backlog) is alive; a port nothing listens on any more (a killed process)
// is refused at once.
func TestProbePortTellsStoppedFromDead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ctx := context.Background()
	for i := range 3 { // several probes: each one sits in the backlog
		if got := probePort(ctx, addr, time.Second); got != listening {
			t.Fatalf("probe %d of a listener that never accepts: got %v, want listening", i, got)
		}
	}
	if hostDead(ctx, addr, probePort) {
		t.Fatal("a listener that never accepts (a stopped process) was taken for dead")
	}

	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := gone.Addr().(*net.TCPAddr).AddrPort()
	gone.Close()
	start := time.Now()
	if got := probePort(ctx, deadAddr, time.Second); got != refused {
		t.Fatalf("probe of a closed port: got %v, want refused", got)
	}
	if !hostDead(ctx, deadAddr, probePort) {
		t.Fatal("a closed port (a killed process) was not taken for dead")
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("telling a closed port took %v, want one round trip", took)
	}
}

// hostDead over scripted verdicts: misses count only in a row, and only
// probeMisses of them are a death.
func TestHostDeadNeedsSeveralMisses(t *testing.T) {
	tests := []struct {
		name   string
		script []verdict
		want   bool
		probes int
	}{
		{"refused at once", []verdict{refused}, true, 1},
		{"listening at once", []verdict{listening}, false, 1},
		{"one miss, then listening", []verdict{unanswered, listening}, false, 2},
		{"two misses, then refused", []verdict{unanswered, unanswered, refused}, true, 3},
		{"misses in a row", []verdict{unanswered, unanswered, unanswered, listening}, true, probeMisses},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			probe := func(context.Context, netip.AddrPort, time.Duration) verdict {
				v := tt.script[n]
				n++
				return v
			}
			if got := hostDead(context.Background(), netip.AddrPort{}, probe); got != tt.want {
				t.Errorf("hostDead = %v, want %v", got, tt.want)
			}
			if n != tt.probes {
				t.Errorf("%d probes, want %d", n, tt.probes)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if hostDead(ctx, netip.AddrPort{}, func(context.Context, netip.AddrPort, time.Duration) verdict { return unanswered }) {
		t.Error("hostDead after ctx ended: true, want false")
	}
}
