package web_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// Benchmarks of the HTTP path for the README's Speed section. They print
// figures (b.Logf); they are not pass/fail on speed, but every file they
// move must arrive identical. Run them one at a time, as root:
//
//	go test -run '^$' -bench 'BrowserHTTP' -benchtime 1x ./web/
//	go test -run '^$' -bench 'BrowserBig' -benchtime 1x -timeout 60m ./web/
//
// LANFT_BENCH_MIB sets BrowserHTTP's file (1 GiB), LANFT_BENCH_ROUNDS its rounds (3).

// rounds is LANFT_BENCH_ROUNDS, or 3.
func rounds() int {
	if n, err := strconv.Atoi(os.Getenv("LANFT_BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// shape limits both ends of the LAN's links to rate (tbf; LAN-TESTING.md
// "shaped link").
func shape(b *testing.B, lan *netns.LAN, rate string) {
	for i := 1; i <= lan.Len(); i++ {
		inNS(b, lan, i, "", "tc", "qdisc", "add", "dev", lan.Iface(i), "root", "tbf", "rate", rate, "burst", "512kb", "latency", "20ms")
	}
}

// spread is "min-max" of xs, formatted with f.
func spread(xs []float64, f string) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf(f+"-"+f, slices.Min(xs), slices.Max(xs))
}

// BenchmarkBrowserHTTP prints, in one run on one LAN, alternating round
// by round: Chromium saving a lanft share over HTTP against lanft receive
// on the same host; lanft receive taking a page's share over HTTP against
// the same file from lanft share on the page's host (CLI to CLI, the same
// direction). Once on the namespace LAN as it is, once with its links
// shaped to 1 Gbit/s.
func BenchmarkBrowserHTTP(b *testing.B) {
	for _, link := range []struct{ name, limit string }{{"lan", ""}, {"1gbit", "1gbit"}} {
		b.Run(link.name, func(b *testing.B) {
			for range b.N {
				benchRounds(b, link.name, link.limit)
			}
		})
	}
}

func benchRounds(b *testing.B, name, limit string) {
	n := benchSize()
	lan := netns.NewLAN(b, 2)
	if limit != "" {
		shape(b, lan, limit)
	}
	src := filepath.Join(b.TempDir(), "bench.bin")
	lanfttest.WriteRandom(b, src, n)
	// alpha on host 1 serves the page (host 2) and lanft receive on host
	// 2; beta on host 2 serves lanft receive on host 1 (CLI to CLI, the
	// upload's direction).
	alpha := onHost(b, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	onHost(b, lan, 2, "share", "--interface", lan.Iface(2), "--name", "beta", "--json", src)
	url := pageURLWithin(b, alpha, 5*time.Minute)
	br := browserOn(b, lan, 2)
	var down, recv, up, c2c, cpuUp, cpuC2C []float64
	for r := range rounds() {
		pageDown := func() {
			p := connectHTTPOr(b, br, url, "alpha")
			start := time.Now()
			got := p.saved(`#httppath a.save`, func(s string) bool { return s == "bench.bin" }, 10*time.Minute)
			down = append(down, rate(n, time.Since(start)))
			lanfttest.SameFile(b, src, got)
			os.Remove(got)
		}
		cliDown := func() {
			v, _, _ := cliRun(b, lan, 2, "alpha", src, n)
			recv = append(recv, v)
		}
		pageUp := func() {
			for try := 1; ; try++ {
				q := newPerson(b, br, url)
				name := q.share([]string{src}, "")
				before := nsCPU(b, lan, 2)
				v, cpu, path := cliRun(b, lan, 1, name, src, n)
				if path != "http" && try < 3 {
					b.Logf("the upload from page %s took the %s path (ICE chose no host route); again", name, path)
					continue
				}
				up = append(up, v)
				d, kinds := nsCPU(b, lan, 2).since(before)
				cpuUp = append(cpuUp, d.Seconds())
				b.Logf("the upload from page %s took Chromium %.1f s of CPU (%s), lanft receive %.1f s", name, d.Seconds(), kinds, cpu.Seconds())
				return
			}
		}
		cliUp := func() {
			v, cpu, _ := cliRun(b, lan, 1, "beta", src, n)
			c2c = append(c2c, v)
			cpuC2C = append(cpuC2C, cpu.Seconds())
		}
		steps := []func(){pageDown, cliDown, pageUp, cliUp}
		if r%2 == 1 {
			steps = []func(){cliDown, pageDown, cliUp, pageUp}
		}
		for _, step := range steps {
			step()
		}
		i := len(down) - 1
		b.Logf("%s round %d, %d MiB: download page %.0f MB/s, lanft receive %.0f MB/s (%.2f); upload page %.0f MB/s, CLI to CLI %.0f MB/s (%.2f); Chromium CPU %.1f s for the upload, lanft receive %.1f s CLI to CLI",
			name, r+1, n>>20, down[i], recv[i], down[i]/recv[i], up[i], c2c[i], up[i]/c2c[i], cpuUp[i], cpuC2C[i])
	}
	ratios := func(a, c []float64) []float64 {
		var out []float64
		for i := range a {
			out = append(out, a[i]/c[i])
		}
		return out
	}
	b.Logf("%s, %d MiB, %d rounds: download page %s MB/s, lanft receive %s MB/s, ratio %s; upload page %s MB/s, CLI to CLI %s MB/s, ratio %s",
		name, n>>20, len(down), spread(down, "%.0f"), spread(recv, "%.0f"), spread(ratios(down, recv), "%.2f"),
		spread(up, "%.0f"), spread(c2c, "%.0f"), spread(ratios(up, c2c), "%.2f"))
}

// cliRun runs lanft receive of from on host i, checks the file, and
// returns its rate from "connected" to "done", its CPU time and its path.
func cliRun(b *testing.B, lan *netns.LAN, i int, from string, want string, n int64) (float64, time.Duration, string) {
	out := b.TempDir()
	recv := onHost(b, lan, i, "receive", "--interface", lan.Iface(i), "--from", from, "--name", fmt.Sprintf("cli%d", time.Now().UnixNano()%100000), "--yes", "--json", "--out", out)
	peer := recv.WaitLine(b, `"event":"peer"`, 60*time.Second)
	var ev struct{ Path string }
	if err := json.Unmarshal([]byte(peer.Text), &ev); err != nil {
		b.Fatalf("peer event %q: %v", peer.Text, err)
	}
	done := recv.WaitLine(b, `"event":"done"`, 10*time.Minute)
	if code := recv.ExitCode(); code != 0 {
		b.Fatalf("receive from %s exited %d: %s", from, code, recv.Stderr())
	}
	got := filepath.Join(out, filepath.Base(want))
	lanfttest.SameFile(b, want, got)
	os.Remove(got)
	return rate(n, done.At.Sub(peer.At)), recv.CPU(), ev.Path
}

// connectHTTPOr is connectHTTP on a new page, tried again (up to three
// times) when ICE chose a route that is not between host addresses, so the
// page got no HTTP path (a loaded machine with a shaped link does that).
func connectHTTPOr(b *testing.B, br context.Context, url, peer string) *person {
	for try := 1; ; try++ {
		p := newPerson(b, br, url)
		sel := fmt.Sprintf(`#peers li[data-name=%q] button.receive`, peer)
		p.waitJS(fmt.Sprintf(`document.querySelector(%q)`, sel), 20*time.Second)
		p.do(chromedp.Click(chromedp.CSS(sel)))
		p.waitJS(`(document.getElementById('httppath') && document.getElementById('httppath').dataset.ready) || document.getElementById('log').textContent.includes('no HTTP path')`, 30*time.Second)
		if p.text(`String(!!(document.getElementById('httppath') && document.getElementById('httppath').dataset.ready))`) == "true" {
			return p
		}
		if try == 3 {
			b.Fatalf("the page got no HTTP path three times: %s", p.log())
		}
		b.Logf("the page got no HTTP path (%s); again", p.log())
	}
}

// proc is what /proc tells of one process.
type proc struct {
	comm     string
	kind     string        // Chromium's --type (renderer, utility, ...), or browser
	rss, hwm int64         // bytes
	cpu      time.Duration // user + system
}

func readProc(pid string) (proc, bool) {
	var p proc
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return p, false
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch {
		case k == "Name" && len(f) > 0:
			p.comm = f[0]
		case (k == "VmRSS" || k == "VmHWM") && len(f) > 0:
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			if k == "VmRSS" {
				p.rss = kb << 10
			} else {
				p.hwm = kb << 10
			}
		}
	}
	p.kind = "browser"
	if cmd, err := os.ReadFile("/proc/" + pid + "/cmdline"); err == nil {
		// Chromium rewrites its children's command lines with spaces.
		for _, arg := range strings.FieldsFunc(string(cmd), func(r rune) bool { return r == 0 || r == ' ' }) {
			if k, ok := strings.CutPrefix(arg, "--type="); ok {
				p.kind = k
			}
			if k, ok := strings.CutPrefix(arg, "--utility-sub-type="); ok {
				p.kind = k
			}
		}
	}
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return p, false
	}
	// Fields after the command's closing parenthesis: utime is the 12th.
	if j := bytes.LastIndexByte(stat, ')'); j > 0 {
		f := strings.Fields(string(stat[j+1:]))
		if len(f) > 13 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			p.cpu = time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
		}
	}
	return p, true
}

// browserProcs returns Chromium's processes on host i: every process in
// its namespace but lanft's.
func browserProcs(t testing.TB, lan *netns.LAN, i int) []proc {
	out, err := exec.Command("ip", "netns", "pids", lan.Namespace(i)).Output()
	if err != nil {
		t.Fatalf("ip netns pids: %v", err)
	}
	var ps []proc
	for _, pid := range strings.Fields(string(out)) {
		if p, ok := readProc(pid); ok && p.comm != "lanft" {
			ps = append(ps, p)
		}
	}
	return ps
}

// nsCPU is the CPU time of Chromium's processes on host i so far, in all
// and by kind of process.
func nsCPU(t testing.TB, lan *netns.LAN, i int) cpuUse {
	u := cpuUse{kinds: map[string]time.Duration{}}
	for _, p := range browserProcs(t, lan, i) {
		u.all += p.cpu
		u.kinds[p.kind] += p.cpu
	}
	return u
}

type cpuUse struct {
	all   time.Duration
	kinds map[string]time.Duration
}

// since is u - v, said by kind.
func (u cpuUse) since(v cpuUse) (time.Duration, string) {
	var parts []string
	for k, d := range u.kinds {
		if d -= v.kinds[k]; d >= 50*time.Millisecond {
			parts = append(parts, fmt.Sprintf("%s %.1f s", k, d.Seconds()))
		}
	}
	slices.Sort(parts)
	return u.all - v.all, strings.Join(parts, ", ")
}

// rssSampler samples the sum of Chromium's resident memory on host i
// every 100 ms until stopped, and returns its peak.
func rssSampler(t testing.TB, lan *netns.LAN, i int) (stop func() int64) {
	var peak int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var sum int64
			for _, p := range browserProcs(t, lan, i) {
				sum += p.rss
			}
			peak = max(peak, sum)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() int64 { close(done); wg.Wait(); return peak }
}

// writeBig writes size bytes at path fast: a 64 MiB random block repeated,
// each copy with its index in its first 8 bytes (so a copy misplaced by
// the transfer differs).
func writeBig(t testing.TB, path string, size int64) {
	t.Helper()
	block := make([]byte, 64<<20)
	rand.Read(block)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i*int64(len(block)) < size; i++ {
		binary.BigEndian.PutUint64(block, uint64(i))
		if _, err := f.Write(block[:min(int64(len(block)), size-i*int64(len(block)))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

const mib = 1 << 20

// BenchmarkBrowserBig: Chromium saves a 1 GiB and a 5 GiB file from lanft
// share over HTTP, each with a fresh browser, printing the peak memory of
// Chromium (the sum of its processes' VmHWM, and the peak of their summed
// RSS sampled every 100 ms) and of lanft share (VmHWM): flat in the file
// size. Then a folder of 1,000 small files and the 5 GiB file saved as one
// ZIP: unzip -t passes, every file identical. Needs about 16 GB of disk.
func BenchmarkBrowserBig(b *testing.B) {
	dir := b.TempDir()
	huge := filepath.Join(dir, "huge.bin")
	writeBig(b, huge, 5<<30)
	one := filepath.Join(dir, "one.bin")
	writeBig(b, one, 1<<30)
	for _, f := range []struct {
		name, path string
		size       int64
	}{{"1GiB", one, 1 << 30}, {"5GiB", huge, 5 << 30}} {
		b.Run(f.name, func(b *testing.B) {
			for range b.N {
				benchBigDownload(b, f.path, f.size)
			}
		})
	}
	b.Run("zip", func(b *testing.B) {
		for range b.N {
			benchBigZip(b, huge)
		}
	})
}

func benchBigDownload(b *testing.B, src string, size int64) {
	lan := netns.NewLAN(b, 2)
	share := onHost(b, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	url := pageURLWithin(b, share, 10*time.Minute)
	p := newPerson(b, browserOn(b, lan, 2), url)
	p.connectHTTP("alpha")
	stop := rssSampler(b, lan, 2)
	start := time.Now()
	got := p.saved(`#httppath a.save`, func(s string) bool { return s == filepath.Base(src) }, 30*time.Minute)
	took := time.Since(start)
	sampled := stop()
	var hwm int64
	for _, pr := range browserProcs(b, lan, 2) {
		hwm += pr.hwm
	}
	lanft, _ := readProc(strconv.Itoa(share.Cmd.Process.Pid))
	lanfttest.SameFile(b, src, got)
	os.Remove(got)
	b.Logf("%d MiB saved by Chromium over HTTP in %.1f s (%.0f MB/s), identical; peak memory: Chromium %d MiB (sum of VmHWM), %d MiB (peak of summed RSS); lanft share %d MiB (VmHWM)",
		size/mib, took.Seconds(), rate(size, took), hwm/mib, sampled/mib, lanft.hwm/mib)
}

func benchBigZip(b *testing.B, huge string) {
	src := filepath.Join(b.TempDir(), "folder")
	small := map[string][]byte{}
	for i := range 1000 {
		rel := fmt.Sprintf("small/d%02d/f%04d.txt", i%37, i)
		body := make([]byte, i*37%20000)
		rand.Read(body)
		small[rel] = body
		writeFile(b, filepath.Join(src, rel), string(body))
	}
	if err := os.Link(huge, filepath.Join(src, "huge.bin")); err != nil {
		b.Fatal(err)
	}
	lan := netns.NewLAN(b, 2)
	share := onHost(b, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	url := pageURLWithin(b, share, 10*time.Minute)
	p := newPerson(b, browserOn(b, lan, 2), url)
	p.connectHTTP("alpha")
	start := time.Now()
	got := p.saved(`#httppath a.zip`, func(s string) bool { return strings.HasSuffix(s, ".zip") }, 30*time.Minute)
	took := time.Since(start)
	defer os.Remove(got)
	fi, err := os.Stat(got)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if out, err := exec.Command("unzip", "-tq", got).CombinedOutput(); err != nil {
		b.Fatalf("unzip -t: %v\n%s", err, out)
	}
	tested := time.Since(t0)
	zr, err := zip.OpenReader(got)
	if err != nil {
		b.Fatal(err)
	}
	defer zr.Close()
	files := 0
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		files++
		rel := strings.TrimPrefix(f.Name, "folder/")
		want, ok := small[rel]
		switch {
		case rel == "huge.bin":
			sameEntry(b, f, huge)
		case ok:
			rc, err := f.Open()
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(body, want) {
				b.Fatalf("%s in the ZIP differs (%v)", f.Name, err)
			}
		default:
			b.Fatalf("%s in the ZIP is none of the shared files", f.Name)
		}
	}
	if files != 1001 {
		b.Fatalf("the ZIP has %d files, want 1001", files)
	}
	b.Logf("ZIP of 1,000 small files and a 5 GiB file (%d MiB) saved by Chromium in %.1f s (%.0f MB/s); unzip -t passed (%.0f s), all 1,001 files identical",
		fi.Size()/mib, took.Seconds(), rate(fi.Size(), took), tested.Seconds())
}

// sameEntry fails b unless the ZIP entry f holds exactly the file want.
func sameEntry(b *testing.B, f *zip.File, want string) {
	rc, err := f.Open()
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	w, err := os.Open(want)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	ba, bb := make([]byte, mib), make([]byte, mib)
	for off := int64(0); ; off += mib {
		na, ea := io.ReadFull(rc, ba)
		nb, eb := io.ReadFull(w, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			b.Fatalf("%s in the ZIP differs from %s near byte %d", f.Name, want, off)
		}
		if ea != nil || eb != nil {
			if (ea == nil) != (eb == nil) {
				b.Fatalf("%s in the ZIP and %s differ in length", f.Name, want)
			}
			return
		}
	}
}
