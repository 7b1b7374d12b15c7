package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// Helpers the NAT tests and benchmarks share: the signaling host on the
// internet, shaping, raw TCP to compare with, and a measured transfer
// between the homes with the real binary.

// internetSignal runs `lanft signal` on the internet's server with STUN
// and TURN (plus extra flags) and returns it and the URL of a new room.
func internetSignal(t *testing.T, inet *netns.Internet, extra ...string) (*lanfttest.Proc, string) {
	t.Helper()
	args := append([]string{"signal", "--listen", inet.ServerAddr().String() + ":0", "--public-addr", inet.ServerAddr().String(),
		"--turn-port", "0", "--new-room"}, extra...)
	sig := inNS(t, inet.Server(), args...)
	sig.WaitLine(t, "ws://", 10*time.Second)
	return sig, strings.TrimSpace(sig.WaitLine(t, "ws://", 10*time.Second).Text)
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

func mbs(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

// benchCount is a benchmark's count from the environment variable env
// (LANFT_BENCH_MIB, LANFT_BENCH_ROUNDS), def when unset.
func benchCount(t *testing.T, env string, def int) int {
	t.Helper()
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s %q: want a positive number", env, s)
	}
	return n
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// rawTCPCopy copies n bytes over TCP from namespace fromNS to a listener
// on listen in namespace toNS, dialled at dial (the listener's own address
// where dial is empty), and returns how long it took.
func rawTCPCopy(t *testing.T, toNS, listen, fromNS, dial string, n int64) time.Duration {
	var ln net.Listener
	if err := netns.DoIn(toNS, func() (err error) {
		ln, err = net.Listen("tcp", listen)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if dial == "" {
		dial = ln.Addr().String()
	}
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
	if err := netns.DoIn(fromNS, func() (err error) {
		c, err = net.Dial("tcp", dial)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return sendCounted(t, c, n, got)
}

// sendCounted writes n bytes to c, closes it, checks that the far end
// counted n on got and returns how long that took.
func sendCounted(t *testing.T, c net.Conn, n int64, got <-chan int64) time.Duration {
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

type relayResult struct {
	path                      string
	took, wall                time.Duration
	cpuShare, cpuRecv, cpuSig time.Duration
	rssShare, rssRecv, rssSig int64
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
	if os.Getenv("LANFT_BENCH_LOG") != "" { // where a benchmark's setup time goes
		t.Logf("receive started %s; its log:\n%s\nthe sharer's:\n%s", start.Format("15:04:05.000"), recv.Stderr(), share.Stderr())
	}
	lanfttest.SameFile(t, src, filepath.Join(out, filepath.Base(src)))
	share.Interrupt()
	r.cpuShare, r.cpuRecv = share.CPU(), recv.CPU()
	r.rssShare, r.rssRecv = share.MaxRSS(), recv.MaxRSS()
	if r.path != want {
		t.Errorf("--path %s: path %q, want %q; receiver's log:\n%s\nsharer's log:\n%s", mode, r.path, want, recv.Stderr(), share.Stderr())
	}
	return r
}
