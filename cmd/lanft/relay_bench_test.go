package main

import (
	"flag"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// TestTCPRelayBenchmark measures 256 MiB between two symmetric NATs over
// `lanft signal`'s TCP relay beside raw TCP spliced through the same
// server, on an unshaped "internet" and on one shaped to 1 Gbit/s. It is a
// benchmark, not a pass/fail timing test, and runs only when asked:
//
//	go test -run TestTCPRelayBenchmark -bench TCPRelay ./cmd/lanft
func TestTCPRelayBenchmark(t *testing.T) {
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		t.Skip("a benchmark: run with -bench TCPRelay")
	}
	const size = 256 << 20
	for _, shaped := range []bool{false, true} {
		name := "unshaped"
		if shaped {
			name = "1gbit"
		}
		t.Run(name, func(t *testing.T) {
			inet := netns.NewInternet(t, netns.SymmetricNAT, netns.SymmetricNAT)
			if shaped {
				shapeInternet(t, inet, "1gbit")
			}
			raw := rawThroughServer(t, inet, size)
			r := relayRun(t, inet, size)
			rawMBs := float64(size) / raw.Seconds() / 1e6
			relMBs := float64(size) / r.took.Seconds() / 1e6
			t.Logf("%s, %d MiB: raw TCP through the server %.1f MB/s; lanft over the TCP relay %.1f MB/s (ratio %.2f; wall clock with setup %.2f s); path %s",
				name, size>>20, rawMBs, relMBs, relMBs/rawMBs, r.wall.Seconds(), r.path)
			t.Logf("%s: CPU seconds: sharer %.2f, receiver %.2f, server %.2f; peak RSS MiB: sharer %d, receiver %d, server %d",
				name, r.cpuShare.Seconds(), r.cpuRecv.Seconds(), r.cpuSig.Seconds(), r.rssShare>>20, r.rssRecv>>20, r.rssSig>>20)
		})
	}
}

// shapeInternet shapes every link of the internet (both ends of each veth:
// the routers', the server's) with tbf at rate.
func shapeInternet(t *testing.T, inet *netns.Internet, rate string) {
	prefix := strings.TrimSuffix(inet.Server(), "-srv")
	for _, dev := range [][2]string{{prefix + "-srv", "w0"}, {prefix + "-inet", "ps"}, {prefix + "-r1", "w0"}, {prefix + "-inet", "pr1"},
		{prefix + "-r2", "w0"}, {prefix + "-inet", "pr2"}} {
		out, err := exec.Command("ip", "netns", "exec", dev[0], "tc", "qdisc", "add", "dev", dev[1], "root", "tbf",
			"rate", rate, "burst", "512kb", "latency", "20ms").CombinedOutput()
		if err != nil {
			t.Fatalf("tc in %s on %s: %v: %s", dev[0], dev[1], err, out)
		}
	}
}

// rawThroughServer copies n bytes from home 1 to home 2 over two TCP
// connections to the server, spliced there by this process.
func rawThroughServer(t *testing.T, inet *netns.Internet, n int64) time.Duration {
	var ln net.Listener
	if err := netns.DoIn(inet.Server(), func() (err error) {
		ln, err = net.Listen("tcp", inet.ServerAddr().String()+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dial := func(home int) net.Conn {
		var c net.Conn
		if err := netns.DoIn(inet.Peer(home), func() (err error) { c, err = net.Dial("tcp", ln.Addr().String()); return err }); err != nil {
			t.Fatal(err)
		}
		return c
	}
	recv := dial(2)
	in, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	send := dial(1)
	out, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	defer send.Close()
	go func() { io.Copy(in, out); in.Close() }()
	got := make(chan int64, 1)
	go func() { m, _ := io.Copy(io.Discard, recv); got <- m }()
	start := time.Now()
	buf := make([]byte, 1<<20)
	for sent := int64(0); sent < n; sent += int64(len(buf)) {
		if _, err := send.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	send.Close()
	if m := <-got; m != n {
		t.Fatalf("raw TCP moved %d bytes, want %d", m, n)
	}
	return time.Since(start)
}

type relayResult struct {
	path                      string
	took, wall                time.Duration
	cpuShare, cpuRecv, cpuSig time.Duration
	rssShare, rssRecv, rssSig int64
}

// relayRun moves n bytes between the homes with the real binary over the
// server's TCP relay.
func relayRun(t *testing.T, inet *netns.Internet, n int64) relayResult {
	sig := inNS(t, inet.Server(), "signal", "--listen", inet.ServerAddr().String()+":0", "--public-addr", inet.ServerAddr().String(),
		"--turn-port", "0", "--new-room")
	sig.WaitLine(t, "ws://", 10*time.Second)
	url := strings.TrimSpace(sig.WaitLine(t, "ws://", 10*time.Second).Text)
	src := filepath.Join(t.TempDir(), "bench.bin")
	lanfttest.WriteRandom(t, src, n)
	share := inNS(t, inet.Peer(1), "share", "--signal", url, "--interface", "h0", "--name", "home1", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	out := t.TempDir()
	start := time.Now()
	recv := inNS(t, inet.Peer(2), "receive", "--signal", url, "--interface", "h0", "--from", "home1", "--name", "home2", "--yes", "--json", "--out", out)
	peer := recv.WaitLine(t, `"event":"peer"`, 30*time.Second)
	done := recv.WaitLine(t, `"event":"done"`, 10*time.Minute)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	r := relayResult{path: pathOf(t, peer.Text), took: done.At.Sub(peer.At), wall: time.Since(start)}
	lanfttest.SameFile(t, src, filepath.Join(out, "bench.bin"))
	share.Interrupt()
	sig.Interrupt()
	r.cpuShare, r.cpuRecv, r.cpuSig = share.CPU(), recv.CPU(), sig.CPU()
	r.rssShare, r.rssRecv, r.rssSig = share.MaxRSS(), recv.MaxRSS(), sig.MaxRSS()
	if r.path != "tcp-relay" {
		t.Errorf("path %q, want tcp-relay", r.path)
	}
	return r
}
