package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// screens is the folder of a test's screenshots: $LANFT_SCREENS when set
// (to keep and look at them), else a temporary folder.
func screens(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("LANFT_SCREENS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// shot saves what p's screen shows (the viewport it was given) as
// dir/name.png; on a phone's width it checks that nothing is wider.
func shot(t *testing.T, p *person, dir, name string) {
	t.Helper()
	if w := p.text(`String(window.innerWidth < 500 && document.documentElement.scrollWidth > window.innerWidth ? document.documentElement.scrollWidth : 'ok')`); w != "ok" {
		t.Errorf("%s: on a phone's screen the page is %s px wide", name, w)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	cancel()
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s: %s", name, path)
}

// phone gives p a phone's screen (390x844, touch, mobile).
func (p *person) phone() {
	p.t.Helper()
	p.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait, chromedp.EmulateTouch))
}

// dark makes p's page see prefers-color-scheme: dark (or light again).
func (p *person) dark(on bool) {
	p.t.Helper()
	v := "light"
	if on {
		v = "dark"
	}
	if _, err := chromedp.Call(p.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}}); err != nil {
		p.t.Fatalf("emulate %s mode: %v", v, err)
	}
}

// sendTo opens peer's Send… panel, picks files or types text, and sends.
func (p *person) sendTo(peer string, files []string, text string) { p.sendSnap(peer, files, text, nil) }

// sendSnap is sendTo that calls snap (when not nil) before it presses Send.
func (p *person) sendSnap(peer string, files []string, text string, snap func()) {
	p.t.Helper()
	sel := fmt.Sprintf(`#peers li[data-name=%q] button.send`, peer)
	p.waitJS(fmt.Sprintf(`document.querySelector(%q)`, sel), 20*time.Second)
	p.do(chromedp.Click(chromedp.CSS(sel)))
	p.waitJS(`!document.getElementById('sendpanel').hidden`, 10*time.Second)
	if len(files) > 0 {
		p.do(chromedp.SetUploadFiles(chromedp.ID("sendfiles"), files))
	}
	if text != "" {
		p.do(chromedp.SetValue(chromedp.ID("sendtext"), text))
	}
	if snap != nil {
		snap()
	}
	p.do(chromedp.Click(chromedp.ID("sendgo")))
	p.waitJS(`document.getElementById('sendpanel').hidden`, 10*time.Second)
}

// offered waits for the offer dialog and returns what it says.
func (p *person) offered() string {
	p.t.Helper()
	p.waitJS(`!document.getElementById('offer').hidden`, 60*time.Second)
	return p.text(`document.getElementById('offertext').textContent + ' | ' + document.getElementById('offerwho').textContent + ' | ' + document.getElementById('offercode').textContent`)
}

// count is how many of the page's log entries contain s.
func (p *person) count(s string) string { return p.countAt("#log li", s) }

// countAt is how many of the elements sel says s.
func (p *person) countAt(sel, s string) string {
	return p.text(fmt.Sprintf(`String([...document.querySelectorAll(%q)].filter(e => e.textContent.includes(%q)).length)`, sel, s))
}

// scrollTo brings the element sel into the middle of the screen.
func (p *person) scrollTo(sel string) {
	p.text(fmt.Sprintf(`(document.querySelector(%q).scrollIntoView({block: 'center'}), '')`, sel))
}

// TestPageSendsToPage: on phones' screens, page A sends a file and a text
// to page B, which accepts each in its offer dialog (showing the device
// and, at first contact, the verification code that A shows): the file
// arrives identical and the text as typed; B declines a third send and A
// is told once. Screenshots: the device list, an incoming offer, a
// transfer in progress, done, an error, dark mode and a desktop's screen.
func TestPageSendsToPage(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "host.txt"), "host")
	url := pageURL(t, onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "host", "--json", filepath.Join(dir, "host.txt")))
	shots := screens(t)
	b := startBrowser(t, lan, 2)
	ann, bob := newPerson(t, b, url), newPerson(t, b, url)
	ann.phone()
	bob.phone()
	annName, bobName := ann.name(), bob.name()
	for _, p := range []*person{ann, bob} {
		p.waitJS(`document.querySelectorAll('#peers li button.send').length === 1 && document.querySelector('#peers li[data-name="host"] button.receive')`, 20*time.Second)
	}
	if k := ann.text(fmt.Sprintf(`document.querySelector('#peers li[data-name=%q] .kind').textContent + '/' + document.querySelector('#peers li[data-name="host"] .kind').textContent`, bobName)); k != "page/lanft share" {
		t.Errorf("kinds listed: %q, want page/lanft share", k)
	}
	shot(t, ann, shots, "01-devices")

	// A file, accepted.
	big := filepath.Join(dir, "holiday.bin")
	const bigSize = 64 << 20
	lanfttest.WriteRandom(t, big, bigSize)
	ann.sendTo(bobName, []string{big}, "")
	offer := bob.offered()
	t.Logf("bob's dialog: %s", offer)
	if !strings.Contains(offer, annName+" wants to send you 1 file, 64.0 MiB: holiday.bin") || !strings.Contains(offer, "device ") {
		t.Errorf("the offer dialog says %q", offer)
	}
	ann.waitJS(`document.querySelector('#log li.verify')`, 10*time.Second)
	code := regexp.MustCompile(`verification code (\d{3} \d{3})`).FindStringSubmatch(ann.text(`document.querySelector('#log li.verify').textContent`))
	if code == nil || !strings.Contains(offer, code[1]) {
		t.Errorf("the offer dialog does not show the sender's verification code %v: %q", code, offer)
	}
	shot(t, bob, shots, "02-offer")
	bob.do(chromedp.Click(chromedp.ID("accept")))
	bob.waitJS(fmt.Sprintf(`(e => e && Number(e.dataset.done) > %d)(document.querySelector('#transfers li[data-state=running]'))`, bigSize/5), 60*time.Second)
	bob.scrollTo(`#transfers`)
	shot(t, bob, shots, "03-progress")
	bob.waitJS(fmt.Sprintf(`document.getElementById('done').dataset.bytes === '%d'`, bigSize), 3*time.Minute)
	ann.waitJS(`document.querySelector('#transfers li[data-state=done]') && document.querySelector('#log li.sent')`, 20*time.Second)
	t.Logf("bob: %s", bob.text(`document.getElementById('done').textContent`))
	bob.scrollTo(`#transfers`)
	shot(t, bob, shots, "04-done")
	lanfttest.SameFile(t, big, bob.save()["holiday.bin"])

	// A text, accepted, shown as text with a Copy button.
	const text = "Grüße aus der Küche 👋\nthe Wi-Fi code is <b>7 blue kites</b> & more"
	ann.sendSnap(bobName, nil, text, func() { shot(t, ann, shots, "01-send-panel") })
	if offer := bob.offered(); !strings.Contains(offer, annName+" wants to send you a text") {
		t.Errorf("the text's offer dialog says %q", offer)
	}
	bob.do(chromedp.Click(chromedp.ID("accept")))
	bob.waitJS(`document.querySelector('#texts li textarea')`, 20*time.Second)
	if got := bob.text(`document.querySelector('#texts li textarea').value`); got != text {
		t.Errorf("the text arrived as %q, want %q", got, text)
	}
	bob.do(chromedp.Click(chromedp.CSS(`#texts li button.copy`)))
	bob.waitJS(`document.querySelector('#texts li .copied').textContent`, 10*time.Second)
	t.Logf("copy says: %s", bob.text(`document.querySelector('#texts li .copied').textContent`))
	ann.waitJS(`[...document.querySelectorAll('#log li.sent')].some(e => e.textContent.startsWith('sent a text to'))`, 20*time.Second)
	bob.dark(true)
	bob.scrollTo(`#receivedlist`)
	shot(t, bob, shots, "07-dark")
	bob.dark(false)

	// Declined: told once, on both sides; nothing more arrives.
	small := filepath.Join(dir, "notes.txt")
	writeFile(t, small, "not wanted\n")
	ann.sendTo(bobName, []string{small}, "")
	bob.offered()
	bob.do(chromedp.Click(chromedp.ID("decline")))
	ann.waitJS(`document.querySelector('#transfers li[data-state=error]')`, 20*time.Second)
	if got := ann.text(`document.querySelector('#transfers li[data-state=error] .xline').textContent`); got != bobName+" declined" {
		t.Errorf("the sender's card says %q, want %q", got, bobName+" declined")
	}
	if n := ann.count("declined"); n != "1" {
		t.Errorf("the sender was told of the decline %s times: %s", n, ann.log())
	}
	if n := bob.count("declined"); n != "1" {
		t.Errorf("the target said its decline %s times: %s", n, bob.log())
	}
	if n := bob.text(`String(document.querySelectorAll('#received li').length)`); n != "1" {
		t.Errorf("after the decline the target lists %s files received, want 1", n)
	}
	ann.scrollTo(`#transfers`)
	shot(t, ann, shots, "05-error")

	ann.do(chromedp.EmulateViewport(1280, 800))
	ann.text(`(window.scrollTo(0, 0), '')`)
	shot(t, ann, shots, "06-desktop")
	for _, p := range []*person{ann, bob} {
		if v := p.text(`[...document.querySelectorAll('#log li.csp')].map(e => e.textContent).join(' | ')`); v != "" {
			t.Errorf("the page broke its own Content Security Policy: %s", v)
		}
	}
}

// TestPageOfferDropBusyTimeout: files dropped on a device's row (a
// computer's drag and drop) open its send panel with them picked, and
// arrive identical; an offer nobody answers is declined after 60 s with
// "timeout", and the sender is told once; a send that comes while the
// dialog asks about another is answered "busy".
func TestPageOfferDropBusyTimeout(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "host.txt"), "host")
	url := pageURL(t, onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "host", "--json", filepath.Join(dir, "host.txt")))
	b := startBrowser(t, lan, 2)
	ann, bob, cat := newPerson(t, b, url), newPerson(t, b, url), newPerson(t, b, url)
	annName, bobName := ann.name(), bob.name()
	row := fmt.Sprintf(`#peers li[data-name=%q]`, bobName)
	for _, p := range []*person{ann, cat} {
		p.waitJS(fmt.Sprintf(`document.querySelector('%s button.send')`, row), 20*time.Second)
	}

	// A drop on bob's row: the panel opens with the file picked.
	const dropped = "dropped on a device\n"
	ann.text(fmt.Sprintf(`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File([%q], 'dropped.txt', {type: 'text/plain'}));
		document.querySelector('%s').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
		return '';
	})()`, dropped, row))
	ann.waitJS(`!document.getElementById('sendpanel').hidden`, 10*time.Second)
	if got := ann.text(`document.getElementById('sendpicked').textContent`); !strings.Contains(got, "1 file") || !strings.Contains(got, "dropped.txt") {
		t.Errorf("after the drop the send panel says %q", got)
	}
	ann.do(chromedp.Click(chromedp.ID("sendgo")))
	bob.offered()
	bob.do(chromedp.Click(chromedp.ID("accept")))
	bob.waitJS(`document.getElementById('done').dataset.bytes`, 60*time.Second)
	want := filepath.Join(dir, "dropped.txt")
	writeFile(t, want, dropped)
	lanfttest.SameFile(t, want, bob.save()["dropped.txt"])

	// Nobody answers ann's text; cat's send meanwhile is told "busy".
	ann.sendTo(bobName, nil, "are you there?")
	if offer := bob.offered(); !strings.Contains(offer, annName+" wants to send you a text") {
		t.Fatalf("bob's dialog says %q", offer)
	}
	cat.sendTo(bobName, nil, "me too")
	cat.waitJS(`document.querySelector('#transfers li[data-state=error]')`, 30*time.Second)
	if got := cat.text(`document.querySelector('#transfers li[data-state=error] .xline').textContent`); !strings.Contains(got, "answering another offer") {
		t.Errorf("a send during another offer was told %q", got)
	}
	if offer := bob.offered(); !strings.Contains(offer, annName) {
		t.Errorf("the busy answer changed bob's dialog: %q", offer)
	}
	ann.waitJS(`document.querySelector('#transfers li[data-state=error]')`, 90*time.Second)
	if got, want := ann.text(`document.querySelector('#transfers li[data-state=error] .xline').textContent`), bobName+" did not answer within 60 s"; got != want {
		t.Errorf("the sender's card says %q, want %q", got, want)
	}
	if n := ann.count("did not answer"); n != "1" {
		t.Errorf("the sender was told of the timeout %s times: %s", n, ann.log())
	}
	if n := bob.count("nobody answered"); n != "1" || bob.text(`String(document.getElementById('offer').hidden)`) != "true" {
		t.Errorf("the target said its timeout %s times (dialog hidden: %s): %s", n, bob.text(`String(document.getElementById('offer').hidden)`), bob.log())
	}
	if n := bob.text(`String(document.querySelectorAll('#texts li').length)`); n != "0" {
		t.Errorf("the target shows %s texts after a timeout and a busy answer", n)
	}
}
