package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// TestQUICBenchmark measures 256 MiB between two home NATs over the
// hole-punched QUIC path, the data channel through the same NATs, and raw
// TCP between the homes (through both NATs, to a port forward on home 2's
// router), on an unshaped "internet" and on one shaped to 1 Gbit/s,
// several rounds each. A benchmark, not a pass/fail timing test; it runs
// only when asked:
//
//	go test -run TestQUICBenchmark -bench QUIC ./cmd/lanft
func TestQUICBenchmark(t *testing.T) {
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		t.Skip("a benchmark: run with -bench QUIC")
	}
	const size, rounds = 256 << 20, 5
	for _, shaped := range []bool{false, true} {
		name := "unshaped"
		if shaped {
			name = "1gbit"
		}
		t.Run(name, func(t *testing.T) {
			inet := netns.NewInternet(t, netns.HomeNAT, netns.HomeNAT)
			if shaped {
				shapeInternet(t, inet, "1gbit")
			}
			port := forwardTCP(t, inet)
			sig := inNS(t, inet.Server(), "signal", "--listen", inet.ServerAddr().String()+":0", "--public-addr", inet.ServerAddr().String(),
				"--turn-port", "0", "--new-room")
			sig.WaitLine(t, "ws://", 10*time.Second)
			url := strings.TrimSpace(sig.WaitLine(t, "ws://", 10*time.Second).Text)
			src := filepath.Join(t.TempDir(), "bench.bin")
			lanfttest.WriteRandom(t, src, size)
			var raw, quic, dc []float64
			for r := range rounds {
				raw = append(raw, mbs(size, rawBetweenHomes(t, inet, port, size)))
				q := homesRun(t, inet, url, src, "auto", "quic")
				d := homesRun(t, inet, url, src, "datachannel", "datachannel-nat")
				quic, dc = append(quic, mbs(size, q.took)), append(dc, mbs(size, d.took))
				t.Logf("%s round %d, %d MiB: raw TCP %.1f MB/s; quic %.1f MB/s (wall with setup %.2f s; CPU s sharer %.2f, receiver %.2f; peak RSS MiB %d, %d); "+
					"datachannel-nat %.1f MB/s (wall %.2f s; CPU s %.2f, %.2f; RSS MiB %d, %d)",
					name, r+1, size>>20, raw[r], quic[r], q.wall.Seconds(), q.cpuShare.Seconds(), q.cpuRecv.Seconds(), q.rssShare>>20, q.rssRecv>>20,
					dc[r], d.wall.Seconds(), d.cpuShare.Seconds(), d.cpuRecv.Seconds(), d.rssShare>>20, d.rssRecv>>20)
			}
			mr, mq, md := median(raw), median(quic), median(dc)
			t.Logf("%s medians of %d rounds: raw TCP %.1f MB/s, quic %.1f MB/s (%.2f of raw), datachannel-nat %.1f MB/s (%.2f of raw); quic/datachannel %.1fx",
				name, rounds, mr, mq, mq/mr, md, md/mr, mq/md)
		})
	}
}

func mbs(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// forwardTCP forwards a TCP port of home 2's router to its peer (a port
// forward, as a home router has) and returns the port.
func forwardTCP(t *testing.T, inet *netns.Internet) int {
	const port = 40001 // inside the run's own namespaces only
	r2 := strings.TrimSuffix(inet.Server(), "-srv") + "-r2"
	for _, rule := range []string{
		fmt.Sprintf(`add rule ip nat pre iifname w0 tcp dport %d dnat to %s:%d`, port, inet.PeerAddr(2), port),
		`insert rule ip filter fw ct status dnat accept`,
	} {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", r2, "nft"}, strings.Fields(rule)...)...).CombinedOutput(); err != nil {
			t.Fatalf("nft %s: %v: %s", rule, err, out)
		}
	}
	return port
}

// rawBetweenHomes copies n bytes over TCP from home 1's peer to home 2's,
// through both NATs (home 2's port forward), and returns how long it took.
func rawBetweenHomes(t *testing.T, inet *netns.Internet, port int, n int64) time.Duration {
	var ln net.Listener
	if err := netns.DoIn(inet.Peer(2), func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(inet.PeerAddr(2), uint16(port)).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		m, _ := io.Copy(io.Discard, c)
		got <- m
	}()
	var c net.Conn
	if err := netns.DoIn(inet.Peer(1), func() (err error) {
		c, err = net.Dial("tcp", netip.AddrPortFrom(inet.RouterAddr(2), uint16(port)).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	buf := make([]byte, 1<<20)
	for sent := int64(0); sent < n; sent += int64(len(buf)) {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	if m := <-got; m != n {
		t.Fatalf("raw TCP moved %d bytes, want %d", m, n)
	}
	return time.Since(start)
}

// homesRuns counts homesRun's runs, for fresh sharer names.
var homesRuns int

// homesRun moves src from home 1 to home 2 with the real binary, with
// --path mode on the receiver, and checks the path and the bytes.
func homesRun(t *testing.T, inet *netns.Internet, url, src, mode, want string) relayResult {
	homesRuns++
	name := fmt.Sprintf("home1-%d", homesRuns) // the last run's sharer may still be logged in
	share := inNS(t, inet.Peer(1), "--log-level", "info", "share", "--signal", url, "--interface", "h0", "--name", name, "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	out := t.TempDir()
	start := time.Now()
	recv := inNS(t, inet.Peer(2), "--log-level", "info", "receive", "--signal", url, "--interface", "h0", "--from", name, "--name", "home2", "--yes", "--json",
		"--out", out, "--path", mode)
	peer := recv.WaitLine(t, `"event":"peer"`, 30*time.Second)
	done := recv.WaitLine(t, `"event":"done"`, 10*time.Minute)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	r := relayResult{path: pathOf(t, peer.Text), took: done.At.Sub(peer.At), wall: time.Since(start)}
	lanfttest.SameFile(t, src, filepath.Join(out, filepath.Base(src)))
	share.Interrupt()
	r.cpuShare, r.cpuRecv = share.CPU(), recv.CPU()
	r.rssShare, r.rssRecv = share.MaxRSS(), recv.MaxRSS()
	if r.path != want {
		t.Errorf("--path %s: path %q, want %q; receiver's log:\n%s\nsharer's log:\n%s", mode, r.path, want, recv.Stderr(), share.Stderr())
	}
	return r
}
