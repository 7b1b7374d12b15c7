package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// The HTTP path between a page and a lanft CLI (internal/node/pagepath.go,
// web/static/httppath.js): the page gets a capability over its verified
// data channel and the bytes go over plain HTTP, saved by Chromium's own
// download manager, or posted by the page's fetches.

// browserOn is startBrowser (which waits until host i's addresses are
// settled).
func browserOn(t testing.TB, lan *netns.LAN, i int) context.Context {
	t.Helper()
	return startBrowser(t, lan, i)
}

// addressesSettled waits until host i has no tentative IPv6 address: one
// that leaves its tentative state while Chromium loads a page aborts the
// load (net::ERR_NETWORK_CHANGED), and the page never starts.
func addressesSettled(t testing.TB, lan *netns.LAN, i int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", lan.Namespace(i), "-6", "addr", "show", "tentative").CombinedOutput()
		if err != nil {
			t.Fatalf("ip addr: %v: %s", err, out)
		}
		if strings.TrimSpace(string(out)) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %d keeps tentative addresses: %s", i, out)
		}
		time.Sleep(100 * time.Millisecond) // the kernel's DAD has no event to wait on here
	}
}

// connectHTTP clicks Receive on peer and waits until the page shows the
// HTTP download's Save links.
func (p *person) connectHTTP(peer string) {
	p.t.Helper()
	p.clickReceive(peer)
	p.waitJS(`document.getElementById('httppath') && document.getElementById('httppath').dataset.ready`, 30*time.Second)
}

// saved clicks the link sel and waits until Chromium has saved a file
// whose suggested name satisfies want; it returns the file on disk.
func (p *person) saved(sel string, want func(string) bool, d time.Duration) string {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(sel)))
	return p.waitSaved(want, d)
}

// waitSaved waits until Chromium has saved a file whose suggested name
// satisfies want; it returns the file on disk.
func (p *person) waitSaved(want func(string) bool, d time.Duration) string {
	p.t.Helper()
	deadline := time.After(d)
	for {
		p.mu.Lock()
		for name, f := range p.done {
			if want(name) {
				delete(p.done, name)
				p.mu.Unlock()
				return f
			}
		}
		p.mu.Unlock()
		select {
		case <-p.ch:
		case <-deadline:
			p.t.Fatalf("no download completed within %s\npage log: %s", d, p.log())
		}
	}
}

// savedFile waits until the download of name is on disk with size bytes
// (Chromium names it by its download id), and returns it.
func (p *person) savedFile(t testing.TB, name string, size int64, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		p.mu.Lock()
		var files []string
		for guid, n := range p.names {
			if n == name {
				files = append(files, filepath.Join(p.dl, guid))
			}
		}
		p.mu.Unlock()
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil && fi.Size() == size {
				return f
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no complete download of %s on disk within %s (%v)", name, d, files)
		}
		time.Sleep(200 * time.Millisecond) // the disk has no event to wait on
	}
}

// eventPath waits for an event of kind on p and returns its path field.
func eventPath(t testing.TB, p *lanfttest.Proc, kind string, d time.Duration) (string, string) {
	t.Helper()
	line := p.WaitLine(t, fmt.Sprintf(`"event":%q`, kind), d)
	var e struct{ Path string }
	if err := json.Unmarshal([]byte(line.Text), &e); err != nil {
		t.Fatalf("%s event %q: %v", kind, line.Text, err)
	}
	return e.Path, line.Text
}

// TestBrowserSavesOverHTTP: a CLI share of a 64 MiB file and a folder; the
// page's Save link has Chromium's download manager save the file
// identical, and "Save all as one ZIP" gives a ZIP that unzip -t passes
// with every file identical; the sharer's --json says path "http", and
// "done" once the page had everything.
func TestBrowserSavesOverHTTP(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	src := t.TempDir()
	big := filepath.Join(src, "big.bin")
	lanfttest.WriteRandom(t, big, 64<<20)
	writeFile(t, filepath.Join(src, "album", "a.txt"), "first file in a folder\n")
	writeFile(t, filepath.Join(src, "album", "deeper", "b.bin"), strings.Repeat("lanft", 50000))
	writeFile(t, filepath.Join(src, "album", "empty.txt"), "")
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", big, filepath.Join(src, "album"))
	p := newPerson(t, browserOn(t, lan, 2), pageURL(t, share))
	p.phone()
	p.connectHTTP("alpha")
	if path, line := eventPath(t, share, "peer", 10*time.Second); path != "http" {
		t.Fatalf("the sharer's peer event has path %q, want http: %s", path, line)
	}
	p.do(chromedp.ScrollIntoView(chromedp.CSS(`#httppath`)))
	shot(t, p, screens(t), "09-http-download")

	start := time.Now()
	got := p.saved(`#httppath a.save[data-path="big.bin"]`, func(n string) bool { return n == "big.bin" }, 2*time.Minute)
	t.Logf("Chromium saved 64 MiB over HTTP in %.2f s", time.Since(start).Seconds())
	lanfttest.SameFile(t, big, got)

	zip := p.saved(`#httppath a.zip`, func(n string) bool { return strings.HasSuffix(n, ".zip") }, 2*time.Minute)
	if out, err := exec.Command("unzip", "-t", zip).CombinedOutput(); err != nil {
		t.Fatalf("unzip -t: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("unzip", "-q", zip, "-d", dir).CombinedOutput(); err != nil {
		t.Fatalf("unzip: %v\n%s", err, out)
	}
	for _, rel := range []string{"big.bin", "album/a.txt", "album/deeper/b.bin", "album/empty.txt"} {
		lanfttest.SameFile(t, filepath.Join(src, rel), filepath.Join(dir, rel))
	}
	if path, line := eventPath(t, share, "done", 30*time.Second); path != "http" {
		t.Fatalf("the sharer's done event has path %q, want http: %s", path, line)
	}
	// The page's own check of a saved file.
	p.do(chromedp.SetUploadFiles(chromedp.CSS(`#httppath input.check`), []string{got}))
	p.waitJS(`document.querySelector('#httppath .checked').dataset.ok === 'true'`, 60*time.Second)
	t.Logf("page: %s", p.text(`document.querySelector('#httppath .checked').textContent`))
}

// TestBrowserUploadsOverHTTP: a page shares 64 MiB and lanft receive takes
// it over the HTTP upload (the transfer protocol over POST and GET),
// identical, its --json saying path "http".
func TestBrowserUploadsOverHTTP(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "host.txt"), "the page's host shares this\n")
	host := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "host", "--json", filepath.Join(dir, "host.txt"))
	p := newPerson(t, browserOn(t, lan, 2), pageURL(t, host))
	file := filepath.Join(t.TempDir(), "upload.bin")
	lanfttest.WriteRandom(t, file, 64<<20)
	name := p.share([]string{file}, "")

	out := t.TempDir()
	start := time.Now()
	recv := onHost(t, lan, 1, "receive", "--interface", lan.Iface(1), "--from", name, "--name", "cli", "--yes", "--json", "--out", out)
	if path, line := eventPath(t, recv, "peer", 60*time.Second); path != "http" {
		t.Fatalf("the receiver's peer event has path %q, want http: %s", path, line)
	}
	recv.WaitLine(t, `"event":"done"`, 2*time.Minute)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	t.Logf("lanft receive took 64 MiB from the page over HTTP in %.2f s, login included", time.Since(start).Seconds())
	lanfttest.SameFile(t, file, filepath.Join(out, "upload.bin"))
	lanfttest.NoPartFiles(t, out)
	p.waitJS(`[...document.querySelectorAll('#log li.sent')].length > 0`, 10*time.Second)
}

// TestBrowserHTTPAfterAsk: a share with --ask gives the page its
// capability only once the person said yes: no Save link while it asks;
// declined, the page hears why over the data channel; accepted, it saves.
func TestBrowserHTTPAfterAsk(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	src := filepath.Join(t.TempDir(), "asked.bin")
	lanfttest.WriteRandom(t, src, 1<<20)
	share, stdin := lanfttest.StartWithStdin(t, "ip", "netns", "exec", lan.Namespace(1), lanft(t), "--config-dir", t.TempDir(),
		"share", "--interface", lan.Iface(1), "--name", "alpha", "--ask", "--json", src)
	defer stdin.Close()
	p := newPerson(t, browserOn(t, lan, 2), pageURL(t, share))
	for _, accept := range []bool{false, true} {
		p.clickReceive("alpha")
		l := share.WaitLine(t, `"event":"ask"`, 30*time.Second)
		var e struct{ Peer string }
		if err := json.Unmarshal([]byte(l.Text), &e); err != nil {
			t.Fatalf("ask event %q: %v", l.Text, err)
		}
		if got := p.text(`String(document.querySelectorAll('#httppath a.save').length)`); got != "0" {
			t.Fatalf("the page shows %s Save link(s) before the sharer said yes", got)
		}
		fmt.Fprintf(stdin, "{\"peer\":%q,\"accept\":%v}\n", e.Peer, accept)
		if !accept {
			p.waitJS(`[...document.querySelectorAll('#log li.error')].some(e => e.textContent.includes('declined'))`, 30*time.Second)
			t.Logf("declined: %s", p.text(`document.querySelector('#log li.error').textContent`))
			continue
		}
		p.waitJS(`document.getElementById('httppath') && document.getElementById('httppath').dataset.ready`, 30*time.Second)
		lanfttest.SameFile(t, src, p.saved(`#httppath a.save`, func(n string) bool { return n == "asked.bin" }, time.Minute))
		if path, line := eventPath(t, share, "done", 30*time.Second); path != "http" {
			t.Fatalf("the sharer's done event has path %q, want http: %s", path, line)
		}
	}
}

// TestBrowserHTTPRefusesOtherOrigin: a page of another origin in the same
// browser (a second web server on the sharer's host) that tries the
// capability the real page got is refused before any byte of content.
func TestBrowserHTTPRefusesOtherOrigin(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	src := filepath.Join(t.TempDir(), "secret.bin")
	lanfttest.WriteRandom(t, src, 1<<20)
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	b := browserOn(t, lan, 2)
	p := newPerson(t, b, pageURL(t, share))
	p.connectHTTP("alpha")
	file := p.text(`document.querySelector('#httppath a.save').href`)
	base := strings.TrimSuffix(file, "f/0")
	if !strings.HasPrefix(file, "http://"+lan.Addr(1).String()+":") || base == file {
		t.Fatalf("the Save link %q is no capability on the sharer's address", file)
	}

	evil := listenOn(t, lan, 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>elsewhere</title>")
	}))
	m := openPage(t, b, "http://"+evil+"/")
	statuses := watchStatuses(m, base)
	// Its fetches send its Origin (a POST even in no-cors mode): the
	// server must refuse them, not only the browser hide the answer. (A
	// GET without Origin, as a link is followed, is what the download
	// manager does; the token, which only the real page got over its
	// verified data channel, guards it.)
	js := fmt.Sprintf(`Promise.all(['hello', 'manifest', 'f/0', 'zip', 'down?off=0'].map((p) =>
		fetch(%q + p).then(() => 'read', (e) => 'failed')).concat(
		fetch(%q + 'up?off=0', {method: 'POST', mode: 'no-cors', body: 'x'}).then(() => 'sent', () => 'failed'))).then((r) => r.join(' '))`, base, base)
	t.Logf("the other page's fetches: %s", m.text(js))
	want := []string{"hello", "manifest", "f/0", "zip", "down?off=0", "up?off=0"}
	got := statuses.wait(t, len(want), 10*time.Second)
	t.Logf("the server's answers to the other origin: %v", got)
	for _, w := range want {
		s, ok := got[w]
		if !ok || s.status < 400 || s.bytes > 0 {
			t.Errorf("%s from another origin: status %d with %d bytes of content; want a refusal with none", w, s.status, s.bytes)
		}
	}
	// The real page still gets the file.
	lanfttest.SameFile(t, src, p.saved(`#httppath a.save`, func(n string) bool { return n == "secret.bin" }, time.Minute))
}

type answer struct {
	status int64
	bytes  int64
}

// answers are the network answers in a tab to URLs under a base, by the
// path below it, as Chromium's network events tell them (the true status
// even of an answer the page may not read). Chromium may report an
// answer's extra info before the request itself, so both are kept by
// request id and joined when read.
type answers struct {
	mu      sync.Mutex
	ids     map[network.RequestID]string
	byID    map[network.RequestID]answer
	changed chan struct{}
}

// watchStatuses follows the network answers in p's tab to URLs under base.
func watchStatuses(p *person, base string) *answers {
	a := &answers{ids: map[network.RequestID]string{}, byID: map[network.RequestID]answer{}, changed: make(chan struct{}, 1)}
	chromedp.Listen(p.ctx, func(ev any) {
		a.mu.Lock()
		defer a.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			if rest, ok := strings.CutPrefix(e.Request.URL, base); ok {
				a.ids[e.RequestID] = rest
			}
		case *network.EventResponseReceivedExtraInfo: // also for answers CORS hides from the page
			v := a.byID[e.RequestID]
			v.status = e.StatusCode
			for k, h := range e.Headers {
				if strings.EqualFold(k, "Content-Length") {
					n, _ := strconv.ParseInt(fmt.Sprint(h), 10, 64)
					v.bytes += n
				}
			}
			a.byID[e.RequestID] = v
		case *network.EventDataReceived:
			v := a.byID[e.RequestID]
			v.bytes += e.DataLength
			a.byID[e.RequestID] = v
		default:
			return
		}
		select {
		case a.changed <- struct{}{}:
		default:
		}
	})
	return a
}

// joined returns the answers of the requests under base seen so far, by
// path. The caller holds a.mu.
func (a *answers) joined() map[string]answer {
	out := map[string]answer{}
	for id, rest := range a.ids {
		if v, ok := a.byID[id]; ok && v.status != 0 {
			w := out[rest]
			w.status = v.status
			w.bytes += v.bytes
			out[rest] = w
		}
	}
	return out
}

// wait returns the answers once n were seen, within d.
func (a *answers) wait(t testing.TB, n int, d time.Duration) map[string]answer {
	t.Helper()
	deadline := time.After(d)
	for {
		a.mu.Lock()
		seen := a.joined()
		a.mu.Unlock()
		if len(seen) >= n {
			return seen
		}
		select {
		case <-a.changed:
		case <-deadline:
			t.Fatalf("answers seen for %v only", seen)
		}
	}
}

// inNS runs a command inside host i (nft, tc), failing the test on error.
func inNS(t testing.TB, lan *netns.LAN, i int, stdin string, name string, args ...string) {
	t.Helper()
	cmd := lan.Command(context.Background(), i, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s on host %d: %v: %s", name, strings.Join(args, " "), i, err, out)
	}
}

// TestBrowserDownloadSurvivesCut: the sharer's network drops every packet
// (nft) for a few seconds when Chromium has saved half of a download; the
// download goes on when it comes back and ends identical. The link is
// shaped (tbf, 100 Mbit/s) so that half is a moment the test can catch.
func TestBrowserDownloadSurvivesCut(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	const size = 64 << 20
	src := filepath.Join(t.TempDir(), "cut.bin")
	lanfttest.WriteRandom(t, src, size)
	inNS(t, lan, 1, "", "tc", "qdisc", "add", "dev", lan.Iface(1), "root", "tbf", "rate", "100mbit", "burst", "128kb", "latency", "50ms")
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	p := newPerson(t, browserOn(t, lan, 2), pageURL(t, share))
	p.connectHTTP("alpha")
	half, broken := make(chan struct{}), make(chan struct{})
	var once, breaks sync.Once
	chromedp.ListenBrowser(p.ctx, func(ev any) {
		if e, ok := ev.(*browser.EventDownloadProgress); ok && e.ReceivedBytes >= size/2 {
			once.Do(func() { close(half) })
		}
		if e, ok := ev.(*browser.EventDownloadProgress); ok && e.State == browser.DownloadProgressStateCanceled {
			breaks.Do(func() { close(broken) })
		}
	})
	p.do(chromedp.Click(chromedp.CSS(`#httppath a.save`)))
	select {
	case <-half:
	case <-time.After(60 * time.Second):
		t.Fatalf("the download did not reach half within 60 s\npage log: %s", p.log())
	}
	// Every TCP segment but a new connection's SYN is answered with a
	// reset (the browser's connection breaks at once, as when a phone
	// changes networks); the rest is dropped until the cut ends.
	inNS(t, lan, 1, "table inet cut {\n chain in { type filter hook input priority 0; policy drop; tcp flags != syn reject with tcp reset; }\n chain out { type filter hook output priority 0; policy drop; tcp flags & rst == rst accept; }\n}\n", "nft", "-f", "-")
	cut := time.Now()
	time.Sleep(4 * time.Second) // the cut itself: a Wi-Fi drop of a few seconds
	inNS(t, lan, 1, "", "nft", "delete", "table", "inet", "cut")
	t.Logf("cut the sharer off for %s at half", time.Since(cut).Round(100*time.Millisecond))
	select {
	case <-broken:
		// Chromium gave up: the person presses Resume on its downloads page.
		resumeDownloads(t, p)
	case <-time.After(5 * time.Second):
		t.Log("Chromium did not report the download failed; it may resume by itself")
	}
	// The browser asks for the rest only (Range, If-Range).
	t.Logf("sharer: %s", share.WaitLine(t, "browser resumes cut.bin from", time.Minute).Text)
	// Chromium tells no events of a download resumed from its downloads
	// page: the sharer's done event says the page had every byte, and
	// the file must be complete on disk.
	if path, line := eventPath(t, share, "done", 2*time.Minute); path != "http" {
		t.Fatalf("the sharer's done event has path %q, want http: %s", path, line)
	}
	lanfttest.SameFile(t, src, p.savedFile(t, "cut.bin", size, 30*time.Second))
}

// resumeDownloads presses Resume on Chromium's own downloads page (in a
// tab of p's browser context), as a person does after a failed download.
func resumeDownloads(t testing.TB, p *person) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(p.ctx)
	defer cancel()
	ctx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if err := chromedp.Do(ctx, chromedp.Navigate("chrome://downloads")); err != nil {
		t.Fatalf("chrome://downloads: %v", err)
	}
	// The buttons live in shadow roots; find the one that says Resume.
	const press = `new Promise((res) => { const find = (root) => { for (const e of root.querySelectorAll('*')) {
		if (e.shadowRoot) { const b = find(e.shadowRoot); if (b) return b; }
		if ((e.tagName === 'CR-BUTTON' || e.tagName === 'BUTTON') && /resume/i.test(e.textContent + (e.id || ''))) return e; } return null; };
		const t0 = Date.now(); const tick = () => { const b = find(document); if (b) { b.click(); res('pressed ' + (b.id || b.textContent.trim())); }
		else if (Date.now() - t0 > 20000) res('no Resume button'); else setTimeout(tick, 200); }; tick(); })`
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](press, chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasPrefix(got, "pressed") {
		t.Fatalf("resume on chrome://downloads: %q, %v", got, err)
	}
	t.Logf("chrome://downloads: %s", got)
}

// TestBrowserUploadSurvivesCut: lanft receive's host drops every packet
// (nft) for a few seconds when half of a page's upload arrived; the page
// posts again from the last offset acknowledged and the file ends
// identical. The browser's link is shaped (tbf, 100 Mbit/s).
func TestBrowserUploadSurvivesCut(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "host.txt"), "host")
	host := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "host", "--json", filepath.Join(dir, "host.txt"))
	p := newPerson(t, browserOn(t, lan, 2), pageURL(t, host))
	const size = 64 << 20
	file := filepath.Join(t.TempDir(), "cut-up.bin")
	lanfttest.WriteRandom(t, file, size)
	name := p.share([]string{file}, "")
	inNS(t, lan, 2, "", "tc", "qdisc", "add", "dev", lan.Iface(2), "root", "tbf", "rate", "100mbit", "burst", "128kb", "latency", "50ms")

	out := t.TempDir()
	recv := onHost(t, lan, 1, "receive", "--interface", lan.Iface(1), "--from", name, "--name", "cli", "--yes", "--json", "--out", out)
	if path, line := eventPath(t, recv, "peer", 60*time.Second); path != "http" {
		t.Fatalf("the receiver's peer event has path %q, want http: %s", path, line)
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		l := recv.WaitLine(t, `"event":"progress"`, time.Until(deadline))
		var e struct{ Done int64 }
		if json.Unmarshal([]byte(l.Text), &e) == nil && e.Done >= size/2 {
			break
		}
	}
	// Every TCP segment, a new connection's too, is answered with a
	// reset: the page's requests fail at once (Chromium's own retry of a
	// POST on a new connection too), and nothing gets through for a few
	// seconds.
	inNS(t, lan, 1, "table inet cut {\n chain in { type filter hook input priority 0; policy drop; meta l4proto tcp reject with tcp reset; }\n chain out { type filter hook output priority 0; policy drop; tcp flags & rst == rst accept; }\n}\n", "nft", "-f", "-")
	time.Sleep(4 * time.Second) // the cut itself: a Wi-Fi drop of a few seconds
	inNS(t, lan, 1, "", "nft", "delete", "table", "inet", "cut")
	// The same transfer continues: lanft receive does not start over.
	for {
		l := recv.WaitLine(t, `"event":`, 2*time.Minute)
		if strings.Contains(l.Text, "trying again") || strings.Contains(l.Text, `"event":"error"`) {
			t.Fatalf("the upload did not continue after the cut: %s", l.Text)
		}
		if strings.Contains(l.Text, `"event":"done"`) {
			break
		}
	}
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	lanfttest.SameFile(t, file, filepath.Join(out, "cut-up.bin"))
	p.waitJS(`[...document.querySelectorAll('#log li.sent')].length > 0`, 10*time.Second)
	if l := p.log(); !strings.Contains(l, "trying again") {
		t.Errorf("the page tells of no request tried again after the cut: %s", l)
	} else {
		t.Logf("page: %s", l)
	}
}

// benchSize is the file of BenchmarkBrowserHTTP: 1 GiB, or
// LANFT_BENCH_MIB mebibytes.
func benchSize() int64 {
	if n, err := strconv.Atoi(os.Getenv("LANFT_BENCH_MIB")); err == nil && n > 0 {
		return int64(n) << 20
	}
	return 1 << 30
}

func rate(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }
