package main

import (
	"flag"
	"io"
	"net"
	"path/filepath"
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
			rawMBs := mbs(size, raw)
			relMBs := mbs(size, r.took)
			t.Logf("%s, %d MiB: raw TCP through the server %.1f MB/s; lanft over the TCP relay %.1f MB/s (ratio %.2f; wall clock with setup %.2f s); path %s",
				name, size>>20, rawMBs, relMBs, relMBs/rawMBs, r.wall.Seconds(), r.path)
			t.Logf("%s: CPU seconds: sharer %.2f, receiver %.2f, server %.2f; peak RSS MiB: sharer %d, receiver %d, server %d",
				name, r.cpuShare.Seconds(), r.cpuRecv.Seconds(), r.cpuSig.Seconds(), r.rssShare>>20, r.rssRecv>>20, r.rssSig>>20)
		})
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
	return sendCounted(t, send, n, got)
}

// relayRun moves n bytes between the homes with the real binary over the
// server's TCP relay.
func relayRun(t *testing.T, inet *netns.Internet, n int64) relayResult {
	sig, url := internetSignal(t, inet)
	src := filepath.Join(t.TempDir(), "bench.bin")
	lanfttest.WriteRandom(t, src, n)
	r := homesRun(t, inet, url, src, "auto", "tcp-relay")
	sig.Interrupt()
	r.cpuSig, r.rssSig = sig.CPU(), sig.MaxRSS()
	return r
}
