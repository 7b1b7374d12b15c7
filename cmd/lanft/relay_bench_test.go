package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// TestTCPRelayBenchmark measures a file between two symmetric NATs over
// `lanft signal`'s TCP relay beside raw TCP spliced through the same
// server and, with LANFT_BENCH_CROC=/path/to/croc, beside croc through
// `croc relay` on the same server, in alternating rounds, on an unshaped
// "internet" and on one shaped to 1 Gbit/s. It is a benchmark, not a
// pass/fail timing test, and runs only when asked:
//
//	go test -run TestTCPRelayBenchmark -bench TCPRelay ./cmd/lanft
//
// LANFT_BENCH_MIB sets the size (256), LANFT_BENCH_ROUNDS the rounds (1).
func TestTCPRelayBenchmark(t *testing.T) {
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		t.Skip("a benchmark: run with -bench TCPRelay")
	}
	size := int64(benchCount(t, "LANFT_BENCH_MIB", 256)) << 20
	rounds := benchCount(t, "LANFT_BENCH_ROUNDS", 1)
	croc := os.Getenv("LANFT_BENCH_CROC")
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
			src := filepath.Join(t.TempDir(), "bench.bin")
			lanfttest.WriteRandom(t, src, size)
			for round := range rounds {
				raw := rawThroughServer(t, inet, size)
				r := relayRun(t, inet, src)
				rawMBs := mbs(size, raw)
				relMBs := mbs(size, r.took)
				t.Logf("%s, round %d, %d MiB: raw TCP through the server %.1f MB/s; lanft over the TCP relay %.1f MB/s (ratio %.2f; wall clock with setup %.2f s, %.1f MB/s); path %s",
					name, round+1, size>>20, rawMBs, relMBs, relMBs/rawMBs, r.wall.Seconds(), mbs(size, r.wall), r.path)
				t.Logf("%s, round %d: lanft CPU seconds: sharer %.2f, receiver %.2f, server %.2f; peak RSS MiB: sharer %d, receiver %d, server %d",
					name, round+1, r.cpuShare.Seconds(), r.cpuRecv.Seconds(), r.cpuSig.Seconds(), r.rssShare>>20, r.rssRecv>>20, r.rssSig>>20)
				if croc == "" {
					continue
				}
				c := crocRun(t, inet, croc, src)
				t.Logf("%s, round %d: croc through croc relay: wall clock with setup %.2f s, %.1f MB/s (lanft's rate by wall clock / croc's: %.2f); CPU seconds: sender %.2f, receiver %.2f, relay %.2f; peak RSS MiB: sender %d, receiver %d, relay %d",
					name, round+1, c.wall.Seconds(), mbs(size, c.wall), c.wall.Seconds()/r.wall.Seconds(), c.cpuShare.Seconds(), c.cpuRecv.Seconds(), c.cpuSig.Seconds(),
					c.rssShare>>20, c.rssRecv>>20, c.rssSig>>20)
			}
		})
	}
}

// crocRun moves src from home 1 to home 2 with croc through `croc relay`
// on the server (what croc does when the two cannot reach each other),
// and checks the bytes; the wall clock is the receiver's, from its start
// (the sender has hashed the file and waits at the relay) to its exit.
// Every croc is given the relay's address, so none looks beyond the
// namespaces; HOME is a temporary folder, so none keeps settings.
func crocRun(t *testing.T, inet *netns.Internet, croc, src string) relayResult {
	t.Helper()
	srv := inet.ServerAddr().String()
	home := t.TempDir()
	run := func(ns string, env []string, args ...string) *lanfttest.Proc {
		argv := append([]string{"ip", "netns", "exec", ns, "env", "HOME=" + home}, env...)
		return lanfttest.Start(t, append(append(argv, croc), args...)...)
	}
	relay := run(inet.Server(), nil, "relay", "--host", srv)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := netns.DoIn(inet.Peer(1), func() error {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(srv, "9009"), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("croc relay does not listen on %s:9009: %v\n%s", srv, err, relay.Stderr())
		}
		time.Sleep(100 * time.Millisecond) // croc relay starts its listeners
	}
	code := fmt.Sprintf("lanft-bench-%d", time.Now().UnixNano())
	relayAddr := net.JoinHostPort(srv, "9009")
	secret := []string{"CROC_SECRET=" + code} // croc takes no code on the command line on Unix
	send := run(inet.Peer(1), secret, "--relay", relayAddr, "--yes", "--no-compress", "--ignore-stdin", "send", "--no-local", src)
	for !strings.Contains(send.Stderr(), "Code is") {
		if time.Now().After(deadline.Add(time.Minute)) {
			t.Fatalf("croc send did not get ready:\n%s", send.Stderr())
		}
		time.Sleep(50 * time.Millisecond) // croc hashes the file first
	}
	out := t.TempDir()
	start := time.Now()
	recv := run(inet.Peer(2), secret, "--relay", relayAddr, "--yes", "--overwrite", "--ignore-stdin", "--out", out)
	if c := recv.ExitCode(); c != 0 {
		t.Fatalf("croc receive exited %d:\n%s\nsender:\n%s", c, recv.Stderr(), send.Stderr())
	}
	r := relayResult{path: "croc relay", wall: time.Since(start)}
	lanfttest.SameFile(t, src, filepath.Join(out, filepath.Base(src)))
	if c := send.ExitCode(); c != 0 {
		t.Errorf("croc send exited %d:\n%s", c, send.Stderr())
	}
	relay.Interrupt()
	r.cpuShare, r.cpuRecv, r.cpuSig = send.CPU(), recv.CPU(), relay.CPU()
	r.rssShare, r.rssRecv, r.rssSig = send.MaxRSS(), recv.MaxRSS(), relay.MaxRSS()
	return r
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

// relayRun moves src between the homes with the real binary over the
// server's TCP relay.
func relayRun(t *testing.T, inet *netns.Internet, src string) relayResult {
	sig, url := internetSignal(t, inet)
	r := homesRun(t, inet, url, src, "auto", "tcp-relay")
	sig.Interrupt()
	r.cpuSig, r.rssSig = sig.CPU(), sig.MaxRSS()
	return r
}
