package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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
// several rounds each, and with LANFT_BENCH_CROC=/path/to/croc croc
// through `croc relay` on the server (croc punches no hole). A benchmark,
// not a pass/fail timing test; it runs only when asked:
//
//	go test -run TestQUICBenchmark -bench QUIC ./cmd/lanft
//
// LANFT_BENCH_MIB sets the size (256), LANFT_BENCH_ROUNDS the rounds (5).
func TestQUICBenchmark(t *testing.T) {
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		t.Skip("a benchmark: run with -bench QUIC")
	}
	size := int64(benchCount(t, "LANFT_BENCH_MIB", 256)) << 20
	rounds := benchCount(t, "LANFT_BENCH_ROUNDS", 5)
	croc := os.Getenv("LANFT_BENCH_CROC")
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
			_, url := internetSignal(t, inet)
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
				if croc != "" {
					c := crocRun(t, inet, croc, src)
					t.Logf("%s round %d: croc through croc relay: wall clock with setup %.2f s, %.1f MB/s; quic by wall clock %.1f MB/s (%.2f of croc's); CPU s sender %.2f, receiver %.2f, relay %.2f; peak RSS MiB %d, %d, %d",
						name, r+1, c.wall.Seconds(), mbs(size, c.wall), mbs(size, q.wall), c.wall.Seconds()/q.wall.Seconds(),
						c.cpuShare.Seconds(), c.cpuRecv.Seconds(), c.cpuSig.Seconds(), c.rssShare>>20, c.rssRecv>>20, c.rssSig>>20)
				}
			}
			mr, mq, md := median(raw), median(quic), median(dc)
			t.Logf("%s medians of %d rounds: raw TCP %.1f MB/s, quic %.1f MB/s (%.2f of raw), datachannel-nat %.1f MB/s (%.2f of raw); quic/datachannel %.1fx",
				name, rounds, mr, mq, mq/mr, md, md/mr, mq/md)
		})
	}
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
	return rawTCPCopy(t, inet.Peer(2), netip.AddrPortFrom(inet.PeerAddr(2), uint16(port)).String(),
		inet.Peer(1), netip.AddrPortFrom(inet.RouterAddr(2), uint16(port)).String(), n)
}
