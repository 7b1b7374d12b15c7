package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// needsUp skips a test of the push offer against the CLI on a tree built
// without `lanft up` and `lanft send` (they come with issue #20's CLI side).
func needsUp(t *testing.T) {
	t.Helper()
	if err := exec.Command(lanft(t), "up", "--help").Run(); err != nil {
		t.Skipf("this lanft has no `lanft up` (%v): the CLI side of the push offer is not merged yet", err)
	}
}

// decideUp answers lanft up's next question (a JSON "ask" event), which
// must be about peer.
func decideUp(t *testing.T, up *lanfttest.Proc, stdin io.Writer, peer string, accept bool) {
	t.Helper()
	ask := up.WaitLine(t, `"event":"ask"`, 60*time.Second)
	if !strings.Contains(ask.Text, fmt.Sprintf(`"peer":%q`, peer)) {
		t.Fatalf("lanft up asks about another peer than %s: %s", peer, ask.Text)
	}
	fmt.Fprintf(stdin, `{"peer":%q,"accept":%v}`+"\n", peer, accept)
}

// deskUp starts `lanft up` as "desk" on host 1 of a new LAN of 3 hosts,
// saving into out, and returns its page's URL.
func deskUp(t *testing.T) (lan *netns.LAN, up *lanfttest.Proc, stdin io.Writer, out, url string) {
	t.Helper()
	needsUp(t)
	lan = netns.NewLAN(t, 3)
	out = t.TempDir()
	up, stdin = lanfttest.StartWithStdin(t, "ip", "netns", "exec", lan.Namespace(1), lanft(t), "--config-dir", t.TempDir(),
		"up", "--interface", lan.Iface(1), "--name", "desk", "--json", "--out", out)
	return lan, up, stdin, out, pageURL(t, up)
}

// TestPageAndLanftUp: a page (a phone's screen, its own host) lists a
// `lanft up` device with a Send… action and sends it a file and a text,
// which up accepts: the file lands identical in up's folder, the text as
// typed; a third send up declines, and the page says so once. Then `lanft send` on a third host sends a file and a text to the
// page, which accepts both (identical, as typed), and a file the page
// declines: send exits with its "declined" code, and the page says it once.
func TestPageAndLanftUp(t *testing.T) {
	lan, up, stdin, out, url := deskUp(t)
	p := newPerson(t, startBrowser(t, lan, 2), url)
	p.phone()
	page := p.name()
	p.waitJS(`document.querySelector('#peers li[data-name="desk"] button.send')`, 30*time.Second)
	if k := p.text(`document.querySelector('#peers li[data-name="desk"] .kind').textContent`); k != "lanft up" {
		t.Errorf("lanft up is listed as %q", k)
	}
	shot(t, p, screens(t), "08-lanft-up")

	// Page -> lanft up: a file, then a text.
	dir := t.TempDir()
	file := filepath.Join(dir, "scan.pdf")
	lanfttest.WriteRandom(t, file, 3<<20)
	p.sendTo("desk", []string{file}, "")
	decideUp(t, up, stdin, page, true)
	if path, line := eventPath(t, up, "done", 60*time.Second); path != "http" {
		t.Errorf("lanft up took the page's file over path %q, want http: %s", path, line)
	}
	p.waitJS(`document.querySelector('#transfers li[data-state=done]')`, 30*time.Second)
	lanfttest.SameFile(t, file, filepath.Join(out, "scan.pdf"))

	const text = "meet at 7\nbring the ünïcödé cable"
	p.sendTo("desk", nil, text)
	decideUp(t, up, stdin, page, true)
	got := up.WaitLine(t, `"event":"text"`, 30*time.Second)
	var e struct{ Message string }
	if err := json.Unmarshal([]byte(got.Text), &e); err != nil || e.Message != text {
		t.Errorf("lanft up showed the text %q (%v), want %q", e.Message, err, text)
	}
	p.waitJS(`[...document.querySelectorAll('#log li.sent')].some(e => e.textContent.startsWith('sent a text to desk'))`, 20*time.Second)

	// Declined by lanft up: the page's card says so, and its log once.
	p.sendTo("desk", []string{file}, "")
	decideUp(t, up, stdin, page, false)
	p.waitJS(`document.querySelector('#transfers li[data-state=error]')`, 30*time.Second)
	if got := p.text(`document.querySelector('#transfers li[data-state=error] .xline').textContent`); got != "desk declined" {
		t.Errorf("the page's card says %q, want %q", got, "desk declined")
	}
	if n := p.count("desk declined"); n != "1" {
		t.Errorf("the page was told of up's decline %s times: %s", n, p.log())
	}

	// lanft send -> page: a file, a text, and a file declined.
	sender := t.TempDir()
	send := func(args ...string) *lanfttest.Proc {
		argv := append([]string{"ip", "netns", "exec", lan.Namespace(3), lanft(t), "--config-dir", sender,
			"send", "--interface", lan.Iface(3), "--name", "laptop", "--json", "--wait", "30s", "--to", page}, args...)
		return lanfttest.Start(t, argv...)
	}
	photo := filepath.Join(dir, "photo.jpg")
	lanfttest.WriteRandom(t, photo, 5<<20)
	s := send(photo)
	if offer := p.offered(); !strings.Contains(offer, "laptop wants to send you 1 file, 5.0 MiB: photo.jpg") {
		t.Errorf("the page's dialog says %q", offer)
	}
	p.do(chromedp.Click(chromedp.ID("accept")))
	// lanft on the LAN gives the page its files over HTTP: the browser's
	// download manager saves them.
	if path, line := eventPath(t, s, "peer", 30*time.Second); path != "http" {
		t.Errorf("lanft send's peer event has path %q, want http: %s", path, line)
	}
	saved := p.saved(`#httppath a.save[data-path="photo.jpg"]`, func(n string) bool { return n == "photo.jpg" }, 60*time.Second)
	if code := s.ExitCode(); code != 0 {
		t.Fatalf("lanft send of a file exited %d: %s", code, s.Stderr())
	}
	lanfttest.SameFile(t, photo, saved)

	const back = "got it, thanks"
	s = send("--text", back)
	if offer := p.offered(); !strings.Contains(offer, "laptop wants to send you a text") {
		t.Errorf("the page's dialog says %q", offer)
	}
	p.do(chromedp.Click(chromedp.ID("accept")))
	p.waitJS(`document.querySelector('#texts li textarea')`, 20*time.Second)
	if got := p.text(`document.querySelector('#texts li textarea').value`); got != back {
		t.Errorf("the page shows the text %q, want %q", got, back)
	}
	if code := s.ExitCode(); code != 0 {
		t.Fatalf("lanft send of a text exited %d: %s", code, s.Stderr())
	}

	s = send(photo)
	p.offered()
	p.do(chromedp.Click(chromedp.ID("decline")))
	if code := s.ExitCode(); code != 4 {
		t.Errorf("lanft send of a declined file exited %d, want 4 (declined): %s", code, s.Stderr())
	}
	t.Logf("lanft send: %s", strings.TrimSpace(s.Stderr()))
	// The decline and the text are told "from laptop"; the file, which
	// came over HTTP, as what laptop gives. (A connection that ended
	// before its preamble, which send dials again, is an error entry.)
	told := "#log li:not(.error)"
	if n, f := p.countAt(told, "from laptop"), p.countAt(told, "laptop gives"); n != "2" || f != "1" {
		t.Errorf("the page told of laptop's sends %s+%s times, want 2+1 (once each): %s", n, f, p.log())
	}
}
