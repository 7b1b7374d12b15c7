// Package bench measures lanft against a raw TCP copy of the same file in
// the same run. It holds benchmarks only (they print figures; nothing here
// passes or fails on speed):
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/bench/
//
// LANFT_BENCH_SIZE sets the file size in MiB (256); LANFT_BENCH_PROFILE=DIR
// writes a CPU profile of each lanft process to DIR/share.prof and
// DIR/receive.prof (go tool pprof BINARY FILE).
package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

var (
	buildOnce sync.Once
	lanftBin  string
	buildErr  error
)

func binary(b *testing.B) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lanft-bench-")
		if err != nil {
			buildErr = err
			return
		}
		lanftBin, buildErr = lanfttest.Build(dir)
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return lanftBin
}

func sizeMiB() int64 {
	if v, err := strconv.Atoi(os.Getenv("LANFT_BENCH_SIZE")); err == nil && v > 0 {
		return int64(v)
	}
	return 256
}

// TestMain lets the test binary act as the two ends of the raw TCP copy, so
// that the baseline, like lanft, runs as two processes (possibly in two
// network namespaces).
func TestMain(m *testing.M) {
	switch os.Getenv("LANFT_BENCH_HELPER") {
	case "tcp-recv":
		os.Exit(tcpRecv(os.Getenv("LANFT_BENCH_ADDR"), os.Getenv("LANFT_BENCH_FILE")))
	case "tcp-send":
		os.Exit(tcpSend(os.Getenv("LANFT_BENCH_ADDR"), os.Getenv("LANFT_BENCH_FILE")))
	}
	os.Exit(m.Run())
}

func tcpRecv(addr, path string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("listening", ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := io.Copy(f, c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("done")
	return 0
}

func tcpSend(addr, path string) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := io.Copy(c, f); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c.Close()
	return 0
}

// host runs commands on one machine of the benchmark: prefix is empty for
// this namespace or "ip netns exec NAME" for a namespace.
type host struct {
	prefix []string
	addr   string // address the other side reaches it at
	iface  string
}

func (h host) argv(args ...string) []string { return append(append([]string{}, h.prefix...), args...) }

// tcpCopy copies src from a to b's dst over raw TCP and returns the seconds
// from the sender's start to the receiver's exit.
func tcpCopy(b *testing.B, from, to host, src, dst string) time.Duration {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	envRecv := []string{"env", "LANFT_BENCH_HELPER=tcp-recv", "LANFT_BENCH_ADDR=" + net.JoinHostPort(to.addr, "0"), "LANFT_BENCH_FILE=" + dst}
	recv := lanfttest.Start(b, to.argv(append(envRecv, self)...)...)
	line := recv.WaitLine(b, "listening", 10*time.Second)
	addr := strings.TrimSpace(strings.TrimPrefix(line.Text, "listening"))
	t0 := time.Now()
	envSend := []string{"env", "LANFT_BENCH_HELPER=tcp-send", "LANFT_BENCH_ADDR=" + addr, "LANFT_BENCH_FILE=" + src}
	if _, stderr, code := lanfttest.Run(b, 10*time.Minute, from.argv(append(envSend, self)...)...); code != 0 {
		b.Fatalf("tcp send: %s", stderr)
	}
	if code := recv.ExitCode(); code != 0 {
		b.Fatalf("tcp receive exited %d: %s", code, recv.Stderr())
	}
	return time.Since(t0)
}

// result is one lanft transfer's figures.
type result struct {
	wall, transfer      time.Duration
	sendRSS, receiveRSS int64
}

// lanftCopy shares src on from and receives it on to, through a signaling
// host on from.
func lanftCopy(b *testing.B, from, to host, src, outDir string) result {
	bin := binary(b)
	profile := func(side string) []string { // LANFT_BENCH_PROFILE=DIR writes a CPU profile per side
		if dir := os.Getenv("LANFT_BENCH_PROFILE"); dir != "" {
			return []string{"--cpuprofile", filepath.Join(dir, side+".prof")}
		}
		return nil
	}
	sig := lanfttest.Start(b, from.argv(bin, "signal", "--listen", net.JoinHostPort(from.addr, "0"))...)
	url := strings.TrimSpace(sig.WaitLine(b, "ws://", 10*time.Second).Text)
	share := lanfttest.Start(b, from.argv(append(append([]string{bin}, profile("share")...), "--config-dir", b.TempDir(), "share", "--signal", url, "--interface", from.iface, "--name", "bench-share", "--json", src)...)...)
	share.WaitLine(b, `"event":"online"`, 5*time.Minute)
	t0 := time.Now()
	recv := lanfttest.Start(b, to.argv(append(append([]string{bin}, profile("receive")...), "--config-dir", b.TempDir(), "receive", "--signal", url, "--interface", to.iface, "--from", "bench-share", "--yes", "--json", "--out", outDir)...)...)
	first := recv.WaitLine(b, `"event":"progress"`, time.Minute)
	last := recv.WaitLine(b, `"event":"done"`, 30*time.Minute)
	if code := recv.ExitCode(); code != 0 {
		b.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	r := result{wall: time.Since(t0), transfer: last.At.Sub(first.At), receiveRSS: recv.MaxRSS()}
	share.Interrupt()
	r.sendRSS = share.MaxRSS()
	sig.Interrupt()
	return r
}

func report(b *testing.B, name string, size int64, tcp time.Duration, r result) {
	mb := float64(size) / 1e6
	tcpRate := mb / tcp.Seconds()
	rate := mb / r.transfer.Seconds()
	wallRate := mb / r.wall.Seconds()
	b.ReportMetric(rate, "MB/s")
	b.ReportMetric(rate/tcpRate, "ratio-to-tcp")
	b.ReportMetric(tcpRate, "tcp-MB/s")
	b.ReportMetric(float64(r.sendRSS)/(1<<20), "share-peak-MiB")
	b.ReportMetric(float64(r.receiveRSS)/(1<<20), "receive-peak-MiB")
	fmt.Printf("%s: %d MiB: lanft %.1f MB/s (%.1f MB/s wall, with connection setup), raw TCP %.1f MB/s, ratio %.2f; peak RSS share %.1f MiB, receive %.1f MiB\n",
		name, size>>20, rate, wallRate, tcpRate, rate/tcpRate, float64(r.sendRSS)/(1<<20), float64(r.receiveRSS)/(1<<20))
}

// BenchmarkLoopback moves one file between two lanft processes on loopback.
func BenchmarkLoopback(b *testing.B) {
	local := host{addr: "127.0.0.1", iface: "lo"}
	compare(b, "loopback", local, local)
}

// compare moves a file of sizeMiB from one host to the other b.N times, by
// raw TCP and by lanft, checks the bytes and reports both.
func compare(b *testing.B, name string, from, to host) {
	size := sizeMiB() << 20
	dir := b.TempDir()
	src := filepath.Join(dir, "payload.bin")
	lanfttest.WriteRandom(b, src, size)
	for i := 0; i < b.N; i++ {
		tcpDst := filepath.Join(dir, fmt.Sprintf("tcp-%d.bin", i))
		tcp := tcpCopy(b, from, to, src, tcpDst)
		os.Remove(tcpDst)
		out := filepath.Join(dir, fmt.Sprintf("out-%d", i))
		os.Mkdir(out, 0o755)
		r := lanftCopy(b, from, to, src, out)
		lanfttest.SameFile(b, src, filepath.Join(out, "payload.bin"))
		os.RemoveAll(out)
		report(b, name, size, tcp, r)
	}
}

// BenchmarkVeth1G moves one file between two network namespaces joined by
// a veth shaped to 1 Gbit/s with tbf (this kernel has no netem), lanft and
// raw TCP on the same link. LANFT_BENCH_RATE sets another tbf rate, or
// "none" for an unshaped veth.
func BenchmarkVeth1G(b *testing.B) {
	lan := netns.NewLAN(b, 2)
	rate := cmp.Or(os.Getenv("LANFT_BENCH_RATE"), "1gbit") // "none": an unshaped veth
	for i := 1; i <= 2 && rate != "none"; i++ {
		cmd := lan.Command(context.Background(), i, "tc", "qdisc", "add", "dev", lan.Iface(i), "root", "tbf", "rate", rate, "burst", "512kb", "latency", "20ms")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("shape the link: %v: %s", err, out)
		}
	}
	hostOf := func(i int) host {
		return host{prefix: []string{"ip", "netns", "exec", lan.Namespace(i)}, addr: lan.Addr(i).String(), iface: lan.Iface(i)}
	}
	compare(b, "veth "+rate, hostOf(1), hostOf(2))
}

// BenchmarkManyFiles moves a folder of 10,000 files of 4 KiB on loopback
// and reports files per second.
func BenchmarkManyFiles(b *testing.B) {
	const files, each = 10000, 4 << 10
	dir := b.TempDir()
	tree := filepath.Join(dir, "tree")
	for i := 0; i < files; i++ {
		sub := filepath.Join(tree, fmt.Sprintf("d%02d", i%100))
		if i < 100 {
			os.MkdirAll(sub, 0o755)
		}
		lanfttest.WriteRandom(b, filepath.Join(sub, fmt.Sprintf("f%05d.dat", i)), each)
	}
	local := host{addr: "127.0.0.1", iface: "lo"}
	for i := 0; i < b.N; i++ {
		out := filepath.Join(dir, fmt.Sprintf("out-%d", i))
		os.Mkdir(out, 0o755)
		r := lanftCopy(b, local, local, tree, out)
		n := 0
		filepath.WalkDir(filepath.Join(out, "tree"), func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return nil
		})
		if n != files {
			b.Fatalf("received %d files, want %d", n, files)
		}
		os.RemoveAll(out)
		rate := float64(files) / r.transfer.Seconds()
		b.ReportMetric(rate, "files/s")
		b.ReportMetric(float64(r.receiveRSS)/(1<<20), "receive-peak-MiB")
		fmt.Printf("many files: %d x %d KiB: %.0f files/s (%.1f s; %.1f s wall with setup); peak RSS share %.1f MiB, receive %.1f MiB\n",
			files, each>>10, rate, r.transfer.Seconds(), r.wall.Seconds(), float64(r.sendRSS)/(1<<20), float64(r.receiveRSS)/(1<<20))
	}
}
