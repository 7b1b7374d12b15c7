package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/web"
)

// These tests run Debian's Chromium (headless, inside a namespace host of
// a simulated LAN, see internal/netns) against real lanft processes on
// other namespace hosts. The page is loaded from a LAN address, as people
// will open it: not a secure context, so no crypto.subtle. Nothing leaves
// the namespaces: the browser's default route points at the test's bridge.

func TestMain(m *testing.M) { os.Exit(lanfttest.Main(m)) }

func lanft(t testing.TB) string { return lanfttest.Binary(t) }

func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (.ci/run installs Debian's chromium package)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); skipped outside CI")
	return ""
}

// onHost runs lanft on host i with its own config folder.
func onHost(t testing.TB, lan *netns.LAN, i int, args ...string) *lanfttest.Proc {
	argv := append([]string{"ip", "netns", "exec", lan.Namespace(i), lanft(t), "--config-dir", t.TempDir()}, args...)
	return lanfttest.Start(t, argv...)
}

// pageURL waits for a --json share's "page" event and returns its URL.
func pageURL(t testing.TB, p *lanfttest.Proc) string {
	t.Helper()
	return pageURLWithin(t, p, 20*time.Second)
}

// pageURLWithin is pageURL for a share that takes up to d to hash.
func pageURLWithin(t testing.TB, p *lanfttest.Proc, d time.Duration) string {
	t.Helper()
	line := p.WaitLine(t, `"event":"page"`, d)
	var ev struct{ URL string }
	if err := json.Unmarshal([]byte(line.Text), &ev); err != nil || ev.URL == "" {
		t.Fatalf("page event: %q: %v", line.Text, err)
	}
	return ev.URL
}

// startBrowser starts Chromium inside host i (given a default route on the
// LAN: Chromium gathers ICE candidates only on the default route's
// interface) and returns its context. Chromium offers its real address
// in ICE candidates, unless hideIPs: then it offers a random .local name,
// as it does for real users.
func startBrowser(t testing.TB, lan *netns.LAN, i int, hideIPs ...bool) context.Context {
	t.Helper()
	chromium := chromiumPath(t)
	addressesSettled(t, lan, i)
	if out, err := exec.Command("ip", "-n", lan.Namespace(i), "route", "add", "default", "dev", lan.Iface(i)).CombinedOutput(); err != nil {
		t.Fatalf("default route: %v: %s", err, out)
	}
	wrapper := filepath.Join(t.TempDir(), "chromium-in-ns")
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", lan.Namespace(i), chromium)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	features := "WebRtcHideLocalIpsWithMdns,Translate"
	if len(hideIPs) > 0 && hideIPs[0] {
		features = "Translate"
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(wrapper),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 1100),
		chromedp.Flag("disable-features", features),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	return bctx
}

// person is one browser user: a tab in a browser context of its own (own
// storage, own device key), whose downloads land in a folder of the test.
type person struct {
	t   testing.TB
	ctx context.Context
	dl  string

	mu    sync.Mutex
	names map[string]string // download guid -> suggested name
	done  map[string]string // suggested name -> file on disk
	ch    chan struct{}
}

func newPerson(t testing.TB, bctx context.Context, url string) *person {
	t.Helper()
	p := openPage(t, bctx, url)
	p.waitJS(`document.body.dataset.online`, 20*time.Second)
	return p
}

// openPage is newPerson without waiting for the page to be online.
func openPage(t testing.TB, bctx context.Context, url string) *person {
	t.Helper()
	return openPageWith(t, bctx, url, chromedp.WithNewBrowserContext())
}

// openPageWith is openPage with the tab's options: none opens it in the
// browser's own profile, whose Blob storage goes to disk (a new browser
// context keeps its Blobs in memory, and breaks those past its quota).
func openPageWith(t testing.TB, bctx context.Context, url string, opts ...chromedp.ContextOption) *person {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx, opts...)
	t.Cleanup(cancel)
	p := &person{t: t, ctx: ctx, dl: t.TempDir(), names: map[string]string{}, done: map[string]string{}, ch: make(chan struct{}, 1)}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("new tab: %v", err)
	}
	// A failure often shows at one end and has its cause at the other:
	// every page of a failed test tells its log (before its tab closes).
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of the page at %s (%s): %s", url, p.text(`document.body.dataset.online || document.getElementById('status').textContent`), p.log())
		}
	})
	chromedp.ListenBrowser(ctx, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch e := ev.(type) {
		case *browser.EventDownloadWillBegin:
			p.names[e.GUID] = e.SuggestedFilename
		case *browser.EventDownloadProgress:
			if e.State == browser.DownloadProgressStateCompleted {
				p.done[p.names[e.GUID]] = filepath.Join(p.dl, e.GUID)
				select {
				case p.ch <- struct{}{}:
				default:
				}
			}
		}
	})
	yes := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
		DownloadPath: p.dl, EventsEnabled: &yes}); err != nil {
		t.Fatalf("download behaviour: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return p
}

// waitJS waits until expr is truthy in the page, for up to d (Poll's own
// bound, 30 s unless given, would cut a longer wait short).
func (p *person) waitJS(expr string, d time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[any](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(d))); err != nil {
		p.t.Fatalf("waiting for %s: %v\npage log: %s", expr, err, p.log())
	}
}

// log is the page's log, one entry after the other (for messages).
func (p *person) log() string {
	return p.text(`[...document.querySelectorAll('#log li')].map(e => e.textContent).join(' | ')`)
}

// text evaluates a string expression (best effort, for messages).
func (p *person) text(expr string) string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

func (p *person) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v\npage log: %s", err, p.log())
	}
}

// name is the page's login name.
func (p *person) name() string { return p.text(`document.body.dataset.online`) }

// clickReceive waits for peer's Receive button and clicks it.
func (p *person) clickReceive(peer string) {
	p.t.Helper()
	sel := fmt.Sprintf(`#peers li[data-name=%q] button.receive`, peer)
	p.waitJS(fmt.Sprintf(`document.querySelector(%q)`, sel), 20*time.Second)
	p.do(chromedp.Click(chromedp.CSS(sel)))
}

// receiveFrom clicks Receive on peer, accepts, and waits until done.
func (p *person) receiveFrom(peer string, d time.Duration) {
	p.t.Helper()
	p.clickReceive(peer)
	p.waitJS(`!document.getElementById('offer').hidden`, 30*time.Second)
	p.do(chromedp.Click(chromedp.ID("accept")))
	p.waitJS(`document.getElementById('done').dataset.bytes`, d)
}

// save clicks every Save link and returns the downloaded files by path.
func (p *person) save() map[string]string {
	p.t.Helper()
	paths := strings.Split(p.text(`[...document.querySelectorAll('#received a.save')].map(a => a.dataset.path).join('\n')`), "\n")
	out := map[string]string{}
	for i, path := range paths {
		p.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#received li:nth-child(%d) a.save`, i+1))))
		want := strings.ReplaceAll(path, "/", "_")
		deadline := time.After(60 * time.Second)
		for {
			p.mu.Lock()
			f, ok := p.done[want]
			p.mu.Unlock()
			if ok {
				out[path] = f
				break
			}
			select {
			case <-p.ch:
			case <-deadline:
				p.t.Fatalf("download of %s did not complete", path)
			}
		}
	}
	return out
}

func writeFile(t testing.TB, path string, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserReceivesFromCLI: a CLI share of a 64 MiB file and a folder
// reaches the browser with identical bytes; the same share received by
// the CLI gives the speed to compare with.
func TestBrowserReceivesFromCLI(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	src := t.TempDir()
	big := filepath.Join(src, "big.bin")
	lanfttest.WriteRandom(t, big, 64<<20)
	writeFile(t, filepath.Join(src, "album", "a.txt"), "first file in a folder\n")
	writeFile(t, filepath.Join(src, "album", "deeper", "b.bin"), strings.Repeat("lanft", 50000))
	writeFile(t, filepath.Join(src, "album", "empty.txt"), "")
	// The data channel (httppath_browser_test.go has the HTTP path).
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--path", "datachannel", "--json", big, filepath.Join(src, "album"))
	url := pageURL(t, share)
	if !strings.Contains(url, lan.Addr(1).String()) {
		t.Fatalf("page URL %s is not on host 1's LAN address", url)
	}

	b := startBrowser(t, lan, 2)
	p := newPerson(t, b, url)
	p.receiveFrom("alpha", 3*time.Minute)
	t.Logf("browser: %s", p.text(`document.getElementById('done').textContent`))
	// Both ends show the same verification code at first contact.
	verify := share.WaitLine(t, `"event":"verify"`, 10*time.Second).Text
	code := regexp.MustCompile(`verification code (\d{3} \d{3})`).FindStringSubmatch(verify)
	if code == nil || !strings.Contains(p.text(`document.querySelector('#log li.verify').textContent`), "verification code "+code[1]) {
		t.Errorf("the page's verification code differs from the CLI's (%s): %s", verify, p.text(`document.querySelector('#log li.verify').textContent`))
	}
	t.Logf("page: %s", p.text(`document.querySelector('#log li.verify').textContent`))
	files := p.save()
	for _, rel := range []string{"big.bin", "album/a.txt", "album/deeper/b.bin", "album/empty.txt"} {
		got, ok := files[rel]
		if !ok {
			t.Fatalf("the browser did not receive %s (got %v)", rel, files)
		}
		lanfttest.SameFile(t, filepath.Join(src, rel), got)
	}

	// The CLI on the same host, same share, for the speed beside it.
	out := t.TempDir()
	start := time.Now()
	recv := onHost(t, lan, 2, "receive", "--interface", lan.Iface(2), "--from", "alpha", "--name", "cli", "--yes", "--json", "--out", out)
	recv.WaitLine(t, `"event":"done"`, 2*time.Minute)
	t.Logf("CLI: received the same share (%d MiB) in %.2f s including discovery and login", 64, time.Since(start).Seconds())
	lanfttest.SameFile(t, big, filepath.Join(out, "big.bin"))
}

// share picks files (and a folder) in the page and shares them; it
// returns the page's login name once it is online as a share.
func (p *person) share(files []string, folder string) string {
	p.t.Helper()
	if len(files) > 0 {
		p.do(chromedp.SetUploadFiles(chromedp.ID("files"), files))
	}
	if folder != "" {
		p.do(chromedp.SetUploadFiles(chromedp.ID("folder"), []string{folder}))
	}
	p.do(chromedp.Click(chromedp.ID("share")))
	p.waitJS(`document.getElementById('sharing').textContent.startsWith('sharing')`, 60*time.Second)
	p.waitJS(`document.body.dataset.online`, 20*time.Second)
	return p.name()
}

// candidates gathers the page's host ICE candidates.
const candidates = `new Promise((res) => {
	const pc = new RTCPeerConnection(), out = [];
	pc.createDataChannel('x');
	pc.onicecandidate = (e) => { if (e.candidate) out.push(e.candidate.candidate); else { pc.close(); res(out.join(' | ')); } };
	pc.createOffer().then((o) => pc.setLocalDescription(o));
})`

// TestBrowserSendsToCLI: a file and a folder picked in the browser reach
// lanft receive with identical bytes (both with --code, the page as the
// CPace responder), with Chromium's addresses hidden
// behind .local names (the CLI learns the address from the browser's
// connectivity checks).
func TestBrowserSendsToCLI(t *testing.T) {
	lan := netns.NewLAN(t, 3)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "host.txt"), "the page's host shares this\n")
	host := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "host", "--json", filepath.Join(src, "host.txt"))
	url := pageURL(t, host)

	picked := t.TempDir()
	one := filepath.Join(picked, "one.bin")
	lanfttest.WriteRandom(t, one, 3<<20)
	folder := filepath.Join(picked, "trip")
	writeFile(t, filepath.Join(folder, "day1", "notes.txt"), "from a browser\n")
	os.MkdirAll(filepath.Join(folder, "day2"), 0o755)
	lanfttest.WriteRandom(t, filepath.Join(folder, "day2", "photo.raw"), 1<<20)

	// As for real users: Chromium hides its address behind a .local name.
	p := newPerson(t, startBrowser(t, lan, 2, true), url)
	if c := p.text(candidates); !strings.Contains(c, ".local") || strings.Contains(c, lan.Addr(2).String()) {
		t.Fatalf("Chromium did not hide its address: %s", c)
	}
	p.do(chromedp.SendKeys(chromedp.ID("code"), "seven blue kites"))
	name := p.share([]string{one}, folder)
	t.Logf("the page shares as %q", name)

	out := t.TempDir()
	recv := onHost(t, lan, 3, "receive", "--interface", lan.Iface(3), "--from", name, "--name", "cli", "--code", "seven blue kites", "--yes", "--json", "--out", out)
	verify := recv.WaitLine(t, `"event":"verify"`, 60*time.Second).Text
	recv.WaitLine(t, `"event":"done"`, 90*time.Second)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	lanfttest.SameFile(t, one, filepath.Join(out, "one.bin"))
	lanfttest.SameFile(t, filepath.Join(folder, "day1", "notes.txt"), filepath.Join(out, "trip", "day1", "notes.txt"))
	lanfttest.SameFile(t, filepath.Join(folder, "day2", "photo.raw"), filepath.Join(out, "trip", "day2", "photo.raw"))
	lanfttest.NoPartFiles(t, out)
	p.waitJS(`[...document.querySelectorAll('#log li.sent')].length > 0`, 10*time.Second)
	// The page as the sharer shows the CLI receiver's verification code.
	sameCode(t, verify, p.text(`document.querySelector('#log li.verify').textContent`))
}

// sameCode checks that two first-contact messages show one verification code.
func sameCode(t testing.TB, a, b string) {
	t.Helper()
	re := regexp.MustCompile(`verification code (\d{3} \d{3})`)
	ca, cb := re.FindStringSubmatch(a), re.FindStringSubmatch(b)
	if ca == nil || cb == nil || ca[1] != cb[1] {
		t.Errorf("the verification codes differ: %q and %q", a, b)
		return
	}
	t.Logf("both show verification code %s", ca[1])
}

// hostileName is a peer name holding HTML and script.
const (
	hostileName  = `<img src=x onerror=document.body.dataset.pwned=1><b>`
	hostileTitle = `<script>document.body.dataset.pwned=2</script><img src=x onerror=document.body.dataset.pwned=3>`
)

// TestBrowserTabsTrade: two people in one browser (two tabs with their
// own storage) trade a file; a peer whose name holds HTML and script, and
// one whose share title does, are listed as text; a screenshot shows the
// page with the peers listed.
func TestBrowserTabsTrade(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "readme.txt"), "hello\n")
	host := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", hostileName, "--json", filepath.Join(src, "readme.txt"))
	url := pageURL(t, host)

	b := startBrowser(t, lan, 2)
	ann := newPerson(t, b, url)
	file := filepath.Join(t.TempDir(), "from-ann.bin")
	lanfttest.WriteRandom(t, file, 5<<20)
	annName := ann.share([]string{file}, "")

	// Another client of the protocol announces a share whose title holds
	// HTML and script.
	var mallory *websocket.Conn
	if err := lan.Do(1, func() (err error) {
		mallory, _, err = websocket.DefaultDialer.Dial(strings.Replace(url, "http://", "ws://", 1)+"ws", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer mallory.Close()
	if err := mallory.WriteJSON(map[string]any{"type": "login", "name": "mallory",
		"lanft": map[string]any{"v": 1, "role": "share", "title": hostileTitle, "files": 1, "bytes": 1}}); err != nil {
		t.Fatal(err)
	}
	go func() { // keep answering the host's pings
		for {
			if _, _, err := mallory.ReadMessage(); err != nil {
				return
			}
		}
	}()

	bob := newPerson(t, b, url)
	bob.waitJS(fmt.Sprintf(`document.querySelectorAll('#peers li').length === 3 && document.querySelector('#peers li[data-name=%q] button.receive')`, annName), 20*time.Second)
	if got := bob.text(`document.querySelector('#peers li[data-name="mallory"] .what').textContent`); !strings.Contains(got, hostileTitle) {
		t.Errorf("the hostile title is not shown as text: %q", got)
	}
	// The hostile name is text: no element was made of it, no script ran.
	got := bob.text(`[...document.querySelectorAll('#peers li .name')].map(e => e.textContent).join('\n')`)
	if !strings.Contains(got, hostileName) {
		t.Errorf("the hostile name is not shown as text; names listed: %q", got)
	}
	if n := bob.text(`String(document.querySelectorAll('#peers img, #peers script').length) + (document.body.dataset.pwned || '')`); n != "0" {
		t.Errorf("the hostile name became HTML: %s", n)
	}
	// The page shows a QR code of its address for another device.
	bob.do(chromedp.Click(chromedp.ID("showqr")))
	bob.waitJS(`document.getElementById('qr').complete && document.getElementById('qr').naturalWidth === 256`, 10*time.Second)
	shot := os.Getenv("LANFT_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "page.png")
	}
	ctx, cancel := context.WithTimeout(bob.ctx, 20*time.Second)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	cancel()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the page with the peers listed: %s", shot)

	bob.receiveFrom(annName, 90*time.Second)
	files := bob.save()
	lanfttest.SameFile(t, file, files["from-ann.bin"])
	for _, p := range []*person{ann, bob} {
		if v := p.text(`[...document.querySelectorAll('#log li.csp')].map(e => e.textContent).join(' | ')`); v != "" {
			t.Errorf("the page broke its own Content Security Policy: %s", v)
		}
	}
	t.Logf("bob: %s", bob.text(`document.getElementById('done').textContent`))
	phoneShot(t, bob, os.Getenv("LANFT_SCREENSHOT_PHONE"))
	sameCode(t, ann.text(`document.querySelector('#log li.verify').textContent`), bob.text(`document.querySelector('#log li.verify').textContent`))
}

// phoneShot shows p's page on a phone's screen (390x844, mobile), checks
// that nothing is wider than the screen, and saves a screenshot to path
// (a temporary file when "").
func phoneShot(t *testing.T, p *person, path string) {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "phone.png")
	}
	p.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait))
	if w := p.text(`String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("on a phone's screen (390 px wide) the page is %s px wide", w)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	cancel()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the page on a phone: %s", path)
}

// TestBrowserAsksForCallCredentials: a page served by lanft signal with
// TURN gets STUN alone at login and asks for one call's credential before
// each peer connection (both sides of a trade between two tabs); the trade
// works with the servers it got.
func TestBrowserAsksForCallCredentials(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	sig := onHost(t, lan, 1, "--log-level", "debug", "signal", "--listen", net.JoinHostPort(lan.Addr(1).String(), "0"),
		"--public-addr", lan.Addr(1).String(), "--turn-port", "0")
	line := sig.WaitLine(t, "ws://", 10*time.Second)
	url := "http://" + strings.TrimSuffix(strings.TrimPrefix(line.Text, "ws://"), "/ws") + "/"
	b := startBrowser(t, lan, 2)
	ann := newPerson(t, b, url)
	file := filepath.Join(t.TempDir(), "called.bin")
	lanfttest.WriteRandom(t, file, 1<<20)
	annName := ann.share([]string{file}, "")
	if n := strings.Count(sig.Stderr(), "signal: call credentials"); n != 0 {
		t.Fatalf("%d call credentials minted before any call", n)
	}
	bob := newPerson(t, b, url)
	bob.receiveFrom(annName, 60*time.Second)
	lanfttest.SameFile(t, file, bob.save()["called.bin"])
	if n := strings.Count(sig.Stderr(), "signal: call credentials"); n != 2 {
		t.Errorf("%d call credentials minted for one trade, want 2 (the receiving tab's and the sharing tab's)", n)
	}
}

// TestBrowserSHA256MatchesGo: the page's SHA-256 (sha256.js, which checks
// every byte received) agrees with Go's crypto/sha256 on lengths around
// every block and padding edge, fed whole and in uneven pieces. The page
// here comes from lanft signal, which serves it too; Chromium enforces its
// Content Security Policy.
func TestBrowserSHA256MatchesGo(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	sig := onHost(t, lan, 1, "signal", "--listen", net.JoinHostPort(lan.Addr(1).String(), "0"))
	line := sig.WaitLine(t, "ws://", 10*time.Second)
	url := "http://" + strings.TrimSuffix(strings.TrimPrefix(line.Text, "ws://"), "/ws") + "/"
	p := newPerson(t, startBrowser(t, lan, 2), url)
	lengths := []int{0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 65536, 1<<20 + 3}
	js := fmt.Sprintf(`import('./sha256.js').then(({SHA256}) => %s.map((n) => {
		const b = new Uint8Array(n);
		for (let i = 0; i < n; i++) b[i] = (i * 7 + n) & 255;
		const whole = new SHA256(); whole.update(b);
		const pieces = new SHA256();
		for (let off = 0, k = 1; off < n; off += k, k = k * 3 + 1) pieces.update(b.subarray(off, Math.min(n, off + k)));
		return whole.hex() + ' ' + pieces.hex();
	}).join('\n'))`, strings.ReplaceAll(fmt.Sprint(lengths), " ", ","))
	// The browser enforces the page's policy: an image from elsewhere is
	// blocked before any request, and the page says so.
	p.text(`(() => { document.body.append(Object.assign(document.createElement('img'), {src: 'http://192.0.2.1/x.png'})); return '' })()`)
	p.waitJS(`document.querySelector('#log li.csp')`, 10*time.Second)

	got := strings.Split(p.text(js), "\n")
	if len(got) != len(lengths) {
		t.Fatalf("page returned %q", got)
	}
	for i, n := range lengths {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(j*7 + n)
		}
		sum := sha256.Sum256(b)
		want := hex.EncodeToString(sum[:])
		if got[i] != want+" "+want {
			t.Errorf("length %d: page %q, Go %s", n, got[i], want)
		}
	}
}

// TestBrowserCode: a CLI share with --code; the page receives with the
// same code (CPace in WebAssembly, confirmed over both DTLS fingerprints)
// and is refused with a wrong one. Chromium hides its address here too.
func TestBrowserCode(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	src := filepath.Join(t.TempDir(), "secret.bin")
	lanfttest.WriteRandom(t, src, 1<<20)
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--code", "purple monkey dishwasher", "--path", "datachannel", "--json", src)
	p := newPerson(t, startBrowser(t, lan, 2, true), pageURL(t, share))

	p.do(chromedp.SendKeys(chromedp.ID("code"), "purple monkey dishwater"))
	p.clickReceive("alpha")
	p.waitJS(`[...document.querySelectorAll('#log li.error')].some(e => e.textContent.includes('shared code'))`, 30*time.Second)
	t.Logf("wrong code: %s", p.text(`document.querySelector('#log li.error').textContent`))

	p.do(chromedp.SetValue(chromedp.ID("code"), "purple monkey dishwasher"))
	p.receiveFrom("alpha", 60*time.Second)
	lanfttest.SameFile(t, src, p.save()["secret.bin"])
}

// rewriter is a signaling host in the middle: a WebSocket proxy in front
// of a real signaling server that swaps the DTLS fingerprint in every
// answer it relays, as a host terminating DTLS on both sides would.
func rewriter(upstream string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) http.Handler {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	dialer := websocket.Dialer{NetDialContext: dial}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer client.Close()
		server, _, err := dialer.Dial(upstream, nil)
		if err != nil {
			return
		}
		defer server.Close()
		done := make(chan struct{}, 2)
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				_, b, err := client.ReadMessage()
				if err != nil || server.WriteMessage(websocket.TextMessage, b) != nil {
					return
				}
			}
		}()
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				_, b, err := server.ReadMessage()
				if err != nil {
					return
				}
				var m map[string]any
				if json.Unmarshal(b, &m) == nil && m["type"] == "answer" {
					if a, ok := m["answer"].(map[string]any); ok {
						sdp, _ := a["sdp"].(string)
						i := strings.Index(sdp, "a=fingerprint:sha-256 ")
						if i >= 0 {
							j := i + len("a=fingerprint:sha-256 ")
							c := "A"
							if sdp[j] == 'A' {
								c = "B"
							}
							a["sdp"] = sdp[:j] + c + sdp[j+1:]
							b, _ = json.Marshal(m)
						}
					}
				}
				if client.WriteMessage(websocket.TextMessage, b) != nil {
					return
				}
			}
		}()
		<-done
	})
}

type staticUp string

func (s staticUp) Host(context.Context) (string, <-chan struct{}, error) { return string(s), nil, nil }

// listenOn opens a TCP listener inside host i and serves h on it until
// the test ends.
func listenOn(t testing.TB, lan *netns.LAN, i int, h http.Handler) string {
	t.Helper()
	var ln net.Listener
	if err := lan.Do(i, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(lan.Addr(i).String(), "0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// TestBrowserRefusesHostInTheMiddle: the elected host rewrites the DTLS
// fingerprint of the sharer's answer; the page refuses the peer instead
// of connecting to whoever holds that certificate.
func TestBrowserRefusesHostInTheMiddle(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	honest, err := signal.NewServer(signal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { honest.Close() })
	honestAddr := listenOn(t, lan, 1, honest.Handler())
	// Connections the test's servers open are made inside host 1.
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = lan.Do(1, func() error {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	evil := "ws://" + listenOn(t, lan, 1, rewriter("ws://"+honestAddr+signal.Path, dial)) + signal.Path
	// The page's own instance is honest; the host it bridges to is not.
	page, err := web.New(web.Config{Signal: honest.Handler(), Upstream: staticUp(evil), Admits: honest.Admits, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { page.Close() })
	pageAddr := listenOn(t, lan, 1, page)

	src := filepath.Join(t.TempDir(), "x.bin")
	lanfttest.WriteRandom(t, src, 1<<16)
	onHost(t, lan, 1, "share", "--signal", evil, "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	p := newPerson(t, startBrowser(t, lan, 2), "http://"+pageAddr+"/")
	p.clickReceive("alpha")
	p.waitJS(`[...document.querySelectorAll('#log li.error')].some(e => e.textContent.includes('could not be verified'))`, 30*time.Second)
	t.Logf("page: %s", p.text(`document.querySelector('#log li.error').textContent`))
	if got := p.text(`String(document.getElementById('received').children.length)`); got != "0" {
		t.Fatalf("the page received %s file(s) through a host in the middle", got)
	}
}

// TestBrowserPageSurvivesHostChange: the page's URL belongs to one lanft
// instance; when the elected host dies, that instance bridges the page to
// the new host and the page receives as before.
func TestBrowserPageSurvivesHostChange(t *testing.T) {
	lan := netns.NewLAN(t, 3)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tiny.txt"), "host")
	first := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "first", "--json", filepath.Join(dir, "tiny.txt"))
	first.WaitLine(t, `"event":"online"`, 20*time.Second)
	src := filepath.Join(dir, "doc.bin")
	lanfttest.WriteRandom(t, src, 2<<20)
	second := onHost(t, lan, 3, "share", "--interface", lan.Iface(3), "--name", "second", "--path", "datachannel", "--json", src)
	url := pageURL(t, second)
	online := second.WaitLine(t, `"event":"online"`, 20*time.Second)
	if !strings.Contains(online.Text, lan.Addr(1).String()) {
		t.Fatalf("second should log in to the host on h1: %s", online.Text)
	}

	p := newPerson(t, startBrowser(t, lan, 2), url)
	p.waitJS(`document.querySelector('#peers li[data-name="first"]') && document.querySelector('#peers li[data-name="second"]')`, 20*time.Second)
	first.Kill()
	killed := time.Now()
	p.waitJS(`Number(document.body.dataset.logins) >= 2 && !document.querySelector('#peers li[data-name="first"]') && document.querySelector('#peers li[data-name="second"] button.receive')`, 30*time.Second)
	t.Logf("the page is online again through %s %v after the host was killed", url, time.Since(killed).Round(time.Millisecond))
	p.receiveFrom("second", 60*time.Second)
	lanfttest.SameFile(t, src, p.save()["doc.bin"])
}

// TestBrowserRefusesTooBig: a share over the page's limit (web.MaxReceive)
// is marked in the list and refused with a message that says why, on the
// page and at the sharer.
func TestBrowserRefusesTooBig(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	big := filepath.Join(t.TempDir(), "huge.img")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(web.MaxReceive + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	// Over the data channel: over HTTP no limit applies.
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--path", "datachannel", "--json", big)
	// The page is announced after hashing 2 GiB, which takes seconds on an
	// idle machine and more than 20 s on a loaded one.
	url := pageURLWithin(t, share, 2*time.Minute)
	p := newPerson(t, startBrowser(t, lan, 2), url)
	p.waitJS(`document.querySelector('#peers li[data-name="alpha"] .toobig')`, 20*time.Second)
	p.do(chromedp.Click(chromedp.CSS(`#peers li[data-name="alpha"] button.receive`)))
	p.waitJS(`[...document.querySelectorAll('#log li.error')].some(e => e.textContent.includes('at most 2 GiB'))`, 30*time.Second)
	t.Logf("page: %s", p.text(`document.querySelector('#log li.error').textContent`))
	line := share.WaitLine(t, `"event":"error"`, 10*time.Second)
	if !strings.Contains(line.Text, "at most 2 GiB") {
		t.Fatalf("the sharer was not told why: %s", line.Text)
	}
	if got := p.text(`String(document.getElementById('received').children.length)`); got != "0" {
		t.Fatalf("the page kept %s file(s)", got)
	}
}

// pairJS sends 32 MiB between two peer connections inside the page, with
// the raw data channel API (mode "raw") or through the page's Stream
// (64 KiB messages, back-pressure, byte-stream reads), and returns MB/s.
const pairJS = `(async () => {
  const { Stream } = await import('./proto.js');
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  const dc = a.createDataChannel('x');
  const got = new Promise((r) => { b.ondatachannel = (e) => r(e.channel); });
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  await new Promise((r) => { dc.onopen = r; });
  const rdc = await got;
  const N = 32 << 20, MODE = '%s';
  const s = new Stream(dc), r = new Stream(rdc);
  const t0 = performance.now();
  let recv = 0;
  const reader = (async () => {
    if (MODE === 'raw') { await new Promise((res) => { rdc.addEventListener('message', (e) => { recv += e.data.byteLength; if (recv >= N) res(); }); }); return; }
    while (recv < N) { const x = await r.read(65536); recv += x.length; }
  })();
  const buf = new Uint8Array(65536);
  for (let off = 0; off < N; off += 65536) await s.write(buf);
  await reader;
  const secs = (performance.now() - t0) / 1000;
  a.close(); b.close();
  return String(N / 1e6 / secs);
})()`

// BenchmarkBrowserDataChannel measures Chromium's own data channel inside
// one page, raw and through the page's Stream, to tell the browser's
// limit from the page's overhead.
func BenchmarkBrowserDataChannel(b *testing.B) {
	lan := netns.NewLAN(b, 2)
	sig := onHost(b, lan, 1, "signal", "--listen", net.JoinHostPort(lan.Addr(1).String(), "0"))
	line := sig.WaitLine(b, "ws://", 10*time.Second)
	url := "http://" + strings.TrimSuffix(strings.TrimPrefix(line.Text, "ws://"), "/ws") + "/"
	p := newPerson(b, startBrowser(b, lan, 2), url)
	for range b.N {
		for _, mode := range []string{"raw", "stream", "raw", "stream"} {
			ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
			v, err := chromedp.Run(ctx, chromedp.Evaluate[string](strings.Replace(pairJS, "%s", mode, 1), chromedp.EvalAwaitPromise))
			cancel()
			if err != nil {
				b.Fatalf("%s: %v", mode, err)
			}
			var mbs float64
			fmt.Sscan(v, &mbs)
			b.Logf("%s: %.1f MB/s", mode, mbs)
		}
	}
}

// TestBrowserShareResumes: lanft receive, killed while fetching from a
// page, fetches only the rest when run again: the page checks the hash of
// the receiver's partial file (PLAN offset) and sends from there.
func TestBrowserShareResumes(t *testing.T) {
	lan := netns.NewLAN(t, 3)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "host.txt"), "host")
	host := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "host", "--json", filepath.Join(dir, "host.txt"))
	p := newPerson(t, startBrowser(t, lan, 2), pageURL(t, host))
	const size = 48 << 20
	file := filepath.Join(dir, "movie.bin")
	lanfttest.WriteRandom(t, file, size)
	name := p.share([]string{file}, "")

	out := t.TempDir()
	cfg := t.TempDir() // one device for both runs
	args := []string{"ip", "netns", "exec", lan.Namespace(3), lanft(t), "--config-dir", cfg, "receive", "--interface", lan.Iface(3),
		"--from", name, "--name", "cli", "--yes", "--json", "--out", out}
	first := lanfttest.Start(t, args...)
	for deadline := time.Now().Add(90 * time.Second); ; {
		l := first.WaitLine(t, `"event":"progress"`, time.Until(deadline))
		var e struct{ Done, Total int64 }
		if json.Unmarshal([]byte(l.Text), &e) == nil && e.Done >= size/3 {
			break
		}
	}
	first.Kill()

	stdout, stderr, code := lanfttest.Run(t, 90*time.Second, args...)
	if code != 0 {
		t.Fatalf("second receive exited %d: %s\npage log: %s", code, stderr, p.log())
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var done struct {
		Event    string
		Received int64 `json:"transferred"`
		Skipped  int64
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &done); err != nil || done.Event != "done" {
		t.Fatalf("last line %q", lines[len(lines)-1])
	}
	if done.Skipped < size/4 || done.Received+done.Skipped != size {
		t.Fatalf("second run received %d and kept %d of %d: not a resume", done.Received, done.Skipped, size)
	}
	t.Logf("resumed: %d MiB kept from the first run, %d MiB fetched from the page", done.Skipped>>20, done.Received>>20)
	lanfttest.SameFile(t, file, filepath.Join(out, "movie.bin"))
}

// TestBrowsersOnTwoHostsWithHiddenAddresses: two browsers on two hosts of
// the LAN, each hiding its address behind a .local name as Chromium does
// for real users, trade a file (Chromium resolves the names over mDNS on
// the LAN).
func TestBrowsersOnTwoHostsWithHiddenAddresses(t *testing.T) {
	lan := netns.NewLAN(t, 3)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "host.txt"), "host")
	url := pageURL(t, onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "host", "--json", filepath.Join(dir, "host.txt")))
	ann := newPerson(t, startBrowser(t, lan, 2, true), url)
	file := filepath.Join(dir, "across.bin")
	lanfttest.WriteRandom(t, file, 2<<20)
	annName := ann.share([]string{file}, "")
	bob := newPerson(t, startBrowser(t, lan, 3, true), url)
	bob.receiveFrom(annName, 60*time.Second)
	lanfttest.SameFile(t, file, bob.save()["across.bin"])
}

// TestBrowserKeepsItsKeyAcrossRestarts: a share restarted with the same
// config folder serves its page at the same address, so the browser keeps
// its device key and its pin of the sharer (no new first contact).
func TestBrowserKeepsItsKeyAcrossRestarts(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	src := filepath.Join(t.TempDir(), "again.txt")
	writeFile(t, src, "twice\n")
	cfg := t.TempDir()
	start := func() *lanfttest.Proc {
		return lanfttest.Start(t, "ip", "netns", "exec", lan.Namespace(1), lanft(t), "--config-dir", cfg,
			"share", "--interface", lan.Iface(1), "--name", "alpha", "--path", "datachannel", "--json", src)
	}
	first := start()
	url := pageURL(t, first)
	p := newPerson(t, startBrowser(t, lan, 2), url)
	device := p.text(`document.getElementById('me').textContent`)
	p.receiveFrom("alpha", 60*time.Second)
	p.waitJS(`document.querySelector('#log li.verify')`, 5*time.Second)
	first.Kill()

	second := start()
	if again := pageURL(t, second); again != url {
		t.Fatalf("the restarted share serves its page at %s, not %s", again, url)
	}
	second.WaitLine(t, `"event":"online"`, 20*time.Second)
	p.do(chromedp.Navigate(url))
	p.waitJS(`document.body.dataset.online`, 20*time.Second)
	if got := p.text(`document.getElementById('me').textContent`); got != device {
		t.Fatalf("the browser's device changed: %q, was %q", got, device)
	}
	p.receiveFrom("alpha", 60*time.Second)
	if v := p.text(`[...document.querySelectorAll('#log li.verify')].map(e => e.textContent).join(' | ')`); v != "" {
		t.Fatalf("a known sharer was treated as a first contact: %s", v)
	}
}
