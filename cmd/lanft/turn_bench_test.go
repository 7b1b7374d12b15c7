package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// TestTURNBenchmark measures a data channel relayed by `lanft signal`'s
// TURN (its defaults, --path relay, the host's TCP relay off) beside the
// direct, hole-punched data channel (--path datachannel) between the same
// two home NATs, in alternating rounds with fresh processes. It is a
// benchmark, not a pass/fail timing test, and runs only when asked:
//
//	go test -run TestTURNBenchmark -bench TURN ./cmd/lanft
//
// LANFT_BENCH_BASELINE=/path/to/old/lanft adds the same rounds with that
// binary at every end, for a before-and-after in one run;
// LANFT_BENCH_MIB sets the size (64), LANFT_BENCH_ROUNDS the rounds (3).
// Every end logs at warn level; the warnings are counted.
func TestTURNBenchmark(t *testing.T) {
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		t.Skip("a benchmark: run with -bench TURN")
	}
	size := int64(benchCount(t, "LANFT_BENCH_MIB", 64)) << 20
	bins := []struct{ name, path string }{{"new", lanftBin}}
	if b := os.Getenv("LANFT_BENCH_BASELINE"); b != "" {
		bins = append(bins, struct{ name, path string }{"baseline", b})
	}
	inet := netns.NewInternet(t, netns.HomeNAT, netns.HomeNAT)
	rounds := benchCount(t, "LANFT_BENCH_ROUNDS", 3)
	for round := range rounds {
		for _, bin := range bins {
			for _, m := range []struct {
				path string
				sig  []string
			}{{"datachannel", nil}, {"relay", nil}, {"relay", []string{"--relay-rate", "0"}}, {"relay", []string{"--relay-rate", "12.5"}}} {
				r := turnRun(t, inet, bin.path, m.path, size, m.sig...)
				mbs := float64(size) / r.took.Seconds() / 1e6
				t.Logf("round %d, %s binary, --path %s %s(path %s), %d MiB: %.1f MB/s; CPU s: sharer %.2f, receiver %.2f, server %.2f",
					round+1, bin.name, m.path, strings.Join(append(m.sig, ""), " "), r.path, size>>20, mbs,
					r.cpuShare.Seconds(), r.cpuRecv.Seconds(), r.cpuSig.Seconds())
			}
		}
	}
}

// turnRun moves n bytes from home 1 to home 2 with bin at every end, the
// receiver asking for --path mode, the host's TCP relay off (and sigArgs
// added to the host's flags).
func turnRun(t *testing.T, inet *netns.Internet, bin, mode string, n int64, sigArgs ...string) relayResult {
	run := func(ns string, args ...string) *lanfttest.Proc {
		return lanfttest.Start(t, append([]string{"ip", "netns", "exec", ns, bin, "--config-dir", t.TempDir(), "--log-level", "warn"}, args...)...)
	}
	sig := run(inet.Server(), append([]string{"signal", "--listen", inet.ServerAddr().String() + ":0", "--public-addr", inet.ServerAddr().String(),
		"--turn-port", "0", "--no-tcp-relay", "--new-room"}, sigArgs...)...)
	sig.WaitLine(t, "ws://", 10*time.Second)
	url := strings.TrimSpace(sig.WaitLine(t, "ws://", 10*time.Second).Text)
	src := filepath.Join(t.TempDir(), "bench.bin")
	lanfttest.WriteRandom(t, src, n)
	share := run(inet.Peer(1), "share", "--signal", url, "--interface", "h0", "--name", "home1", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	out := t.TempDir()
	start := time.Now()
	recv := run(inet.Peer(2), "receive", "--signal", url, "--interface", "h0", "--from", "home1", "--name", "home2",
		"--yes", "--json", "--out", out, "--path", mode)
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
	for _, p := range []struct {
		name string
		proc *lanfttest.Proc
	}{{"server", sig}, {"sharer", share}, {"receiver", recv}} {
		if w := warnings(p.proc.Stderr()); len(w) > 0 {
			t.Logf("--path %s %v: %s logged %d warnings, the first: %s; the last: %s", mode, sigArgs, p.name, len(w), w[0], w[len(w)-1])
		}
	}
	want := map[string]string{"datachannel": "datachannel-nat", "relay": "relay"}[mode]
	if r.path != want {
		t.Errorf("--path %s: path %q, want %q", mode, r.path, want)
	}
	return r
}

// warnings are the warn and error records in a --log-level warn stderr.
func warnings(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return out
}
