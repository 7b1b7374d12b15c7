// Package bench measures lanft against two baselines moving the same file
// in the same run: a raw TCP copy, and a plain TLS 1.3 copy whose receiver
// also hashes with SHA-256 and fsyncs the file (the least any verified,
// encrypted transfer must do). It holds benchmarks only (they print
// figures; nothing here passes or fails on speed):
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/bench/
//
// lanft's rate is its CLI's own wall clock, from starting `lanft receive`
// to its exit, connection setup included; the baselines' is from starting
// the sender to the receiver's exit. CPU seconds are both processes' (for
// the sharer, what it spent during the transfer: it hashed the file before).
//
// LANFT_BENCH_SIZE sets the file size in MiB (256); LANFT_BENCH_PATH passes
// --path to lanft (datachannel measures the data channel);
// LANFT_BENCH_PROFILE=DIR writes a CPU profile of each lanft process to
// DIR/share.prof and DIR/receive.prof (go tool pprof BINARY FILE).
package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

func binary(b *testing.B) string { return lanfttest.Binary(b) }

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
	case "tls-recv":
		os.Exit(tlsRecv(os.Getenv("LANFT_BENCH_ADDR"), os.Getenv("LANFT_BENCH_FILE")))
	case "tls-send":
		os.Exit(tlsSend(os.Getenv("LANFT_BENCH_ADDR"), os.Getenv("LANFT_BENCH_FILE")))
	}
	os.Exit(lanfttest.Main(m))
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

// copyResult is one baseline copy's figures.
type copyResult struct {
	wall time.Duration
	cpu  time.Duration // both processes
}

// baselineCopy copies src from a to b's dst with the helper pair kind
// ("tcp" or "tls") and returns the time from the sender's start to the
// receiver's exit.
func baselineCopy(b *testing.B, kind string, from, to host, src, dst string) copyResult {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	envRecv := []string{"env", "LANFT_BENCH_HELPER=" + kind + "-recv", "LANFT_BENCH_ADDR=" + net.JoinHostPort(to.addr, "0"), "LANFT_BENCH_FILE=" + dst}
	recv := lanfttest.Start(b, to.argv(append(envRecv, self)...)...)
	line := recv.WaitLine(b, "listening", 10*time.Second)
	addr := strings.TrimSpace(strings.TrimPrefix(line.Text, "listening"))
	t0 := time.Now()
	envSend := []string{"env", "LANFT_BENCH_HELPER=" + kind + "-send", "LANFT_BENCH_ADDR=" + addr, "LANFT_BENCH_FILE=" + src}
	send := lanfttest.Start(b, from.argv(append(envSend, self)...)...)
	if code := send.ExitCode(); code != 0 {
		b.Fatalf("%s send exited %d: %s", kind, code, send.Stderr())
	}
	if code := recv.ExitCode(); code != 0 {
		b.Fatalf("%s receive exited %d: %s", kind, code, recv.Stderr())
	}
	return copyResult{wall: time.Since(t0), cpu: send.CPU() + recv.CPU()}
}

// procCPU is the CPU time process pid has used so far (Linux /proc).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// result is one lanft transfer's figures.
type result struct {
	wall, transfer      time.Duration
	sendRSS, receiveRSS int64
	sendCPU, receiveCPU time.Duration
	path                string
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
	var path []string
	if p := os.Getenv("LANFT_BENCH_PATH"); p != "" {
		path = []string{"--path", p}
	}
	shareCPU := procCPU(b, share.Cmd.Process.Pid)
	t0 := time.Now()
	recv := lanfttest.Start(b, to.argv(append(append(append([]string{bin}, profile("receive")...), "--config-dir", b.TempDir(), "receive", "--signal", url, "--interface", to.iface, "--from", "bench-share", "--yes", "--json", "--out", outDir), path...)...)...)
	peer := recv.WaitLine(b, `"event":"peer"`, time.Minute)
	first := recv.WaitLine(b, `"event":"progress"`, time.Minute)
	last := recv.WaitLine(b, `"event":"done"`, 30*time.Minute)
	if code := recv.ExitCode(); code != 0 {
		b.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	r := result{wall: time.Since(t0), transfer: last.At.Sub(first.At), receiveRSS: recv.MaxRSS(), receiveCPU: recv.CPU()}
	r.sendCPU = procCPU(b, share.Cmd.Process.Pid) - shareCPU
	var e struct {
		Path string `json:"path"`
	}
	_ = json.Unmarshal([]byte(peer.Text), &e)
	r.path = e.Path
	share.Interrupt()
	r.sendRSS = share.MaxRSS()
	sig.Interrupt()
	return r
}

func report(b *testing.B, name string, size int64, tcp, tls copyResult, r result) {
	mb := float64(size) / 1e6
	tcpRate, tlsRate := mb/tcp.wall.Seconds(), mb/tls.wall.Seconds()
	rate := mb / r.wall.Seconds()
	b.ReportMetric(rate, "MB/s")
	b.ReportMetric(rate/tcpRate, "ratio-to-tcp")
	b.ReportMetric(rate/tlsRate, "ratio-to-tls")
	b.ReportMetric(tcpRate, "tcp-MB/s")
	b.ReportMetric(tlsRate, "tls-MB/s")
	b.ReportMetric((r.sendCPU + r.receiveCPU).Seconds(), "lanft-cpu-s")
	b.ReportMetric(float64(r.sendRSS)/(1<<20), "share-peak-MiB")
	b.ReportMetric(float64(r.receiveRSS)/(1<<20), "receive-peak-MiB")
	fmt.Printf("%s: %d MiB over %s: lanft %.1f MB/s (CLI wall clock %.2f s with setup; %.1f MB/s between first progress and done), "+
		"raw TCP %.1f MB/s, TLS+SHA-256+fsync %.1f MB/s; ratio %.2f of TCP, %.2f of TLS; "+
		"CPU s lanft %.1f (share %.1f + receive %.1f), TCP %.1f, TLS %.1f; peak RSS share %.1f MiB, receive %.1f MiB\n",
		name, size>>20, r.path, rate, r.wall.Seconds(), mb/r.transfer.Seconds(), tcpRate, tlsRate, rate/tcpRate, rate/tlsRate,
		(r.sendCPU + r.receiveCPU).Seconds(), r.sendCPU.Seconds(), r.receiveCPU.Seconds(), tcp.cpu.Seconds(), tls.cpu.Seconds(),
		float64(r.sendRSS)/(1<<20), float64(r.receiveRSS)/(1<<20))
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
		dst := filepath.Join(dir, fmt.Sprintf("copy-%d.bin", i))
		tcp := baselineCopy(b, "tcp", from, to, src, dst)
		os.Remove(dst)
		tls := baselineCopy(b, "tls", from, to, src, dst)
		lanfttest.SameFile(b, src, dst)
		os.Remove(dst)
		out := filepath.Join(dir, fmt.Sprintf("out-%d", i))
		os.Mkdir(out, 0o755)
		r := lanftCopy(b, from, to, src, out)
		lanfttest.SameFile(b, src, filepath.Join(out, "payload.bin"))
		os.RemoveAll(out)
		report(b, name, size, tcp, tls, r)
	}
}

// BenchmarkVeth1G moves one file between two network namespaces joined by
// a veth shaped to 1 Gbit/s with tbf (this kernel has no netem), lanft and
// the baselines on the same link. LANFT_BENCH_RATE sets another tbf rate.
func BenchmarkVeth1G(b *testing.B) {
	veth(b, cmp.Or(os.Getenv("LANFT_BENCH_RATE"), "1gbit"))
}

// BenchmarkVethUnshaped is BenchmarkVeth1G on an unshaped veth: the CPU
// sets the pace.
func BenchmarkVethUnshaped(b *testing.B) { veth(b, "none") }

func veth(b *testing.B, rate string) {
	lan := netns.NewLAN(b, 2)
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
