package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// The HTTP path's list of files is bound to the verified data channel
// (manifest_sha256 in internal/node/pagepath.go and
// web/static/httppath.js): plain HTTP lets a machine in the middle change
// a file and its SHA-256 in the list together; the side that checks the
// files then refuses a list whose bytes are not the ones hashed over the
// verified channel.
//
// The machine in the middle here is the page's own fetch, replaced in the
// tab: it changes the bytes of an HTTP response or request exactly as an
// ARP spoofer on the LAN would, while the data channel, which no one on
// the LAN can change, stays as it is.

// tamperJS replaces window.fetch with one that swaps, in the body of each
// request (POST) or response (GET) whose URL ends with what, every
// occurrence of a byte string by another of the same length; it counts
// the bodies it changed in window.tampered; window.untamper() puts the
// real fetch back.
const tamperJS = `(() => {
  const swaps = %s.map(([a, b]) => [new TextEncoder().encode(a), new TextEncoder().encode(b)]);
  const what = %q;
  const swap = (buf) => {
    const b = new Uint8Array(buf);
    let changed = false;
    for (const [from, to] of swaps) {
      for (let i = b.indexOf(from[0]); i >= 0 && i + from.length <= b.length; i = b.indexOf(from[0], i + 1)) {
        if (from.every((x, k) => b[i + k] === x)) { b.set(to, i); changed = true; }
      }
    }
    if (changed) window.tampered = (window.tampered || 0) + 1;
    return b;
  };
  const real = window.fetch;
  window.tampered = 0;
  window.untamper = () => { window.fetch = real; };
  window.fetch = async (input, init = {}) => {
    if (!new URL(String(input), location.href).pathname.endsWith(what)) return real(input, init);
    if (init.method === 'POST') return real(input, { ...init, body: new Blob([swap(await init.body.arrayBuffer())]) });
    const r = await real(input, init);
    return new Response(swap(await r.arrayBuffer()), { status: r.status, headers: r.headers });
  };
  return true;
})()`

// tamper installs tamperJS in p's tab: swaps are [from, to] pairs.
func (p *person) tamper(what string, swaps [][2]string) {
	p.t.Helper()
	b, err := json.Marshal(swaps)
	if err != nil {
		p.t.Fatal(err)
	}
	p.eval(fmt.Sprintf(tamperJS, b, what))
}

// eval runs expr in p's tab; it must be true.
func (p *person) eval(expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
	if err != nil || !ok {
		p.t.Fatalf("browser: %s: %v, %v", expr, ok, err)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Two contents of one length (the stream's offsets stay as they are): the
// file shared, and what the machine in the middle puts in its place.
const (
	realContent = "ORIGINAL: the file the sharer meant to send\n"
	evilContent = "TAMPERED: the file a neighbour slipped in!!\n"
)

// TestBrowserRefusesChangedList: the list of files a lanft share serves
// over HTTP, changed on its way to the page (a file's SHA-256 replaced by
// another file's), is refused by the page with words, no Save link shown;
// fetched unchanged, the page offers the files and says its hashes are
// authentic.
func TestBrowserRefusesChangedList(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	src := filepath.Join(t.TempDir(), "a.txt")
	writeFile(t, src, realContent)
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	p := newPerson(t, browserOn(t, lan, 2), pageURL(t, share))

	p.tamper("/manifest", [][2]string{{sha256Hex(realContent), sha256Hex(evilContent)}})
	sel := `#peers li[data-name="alpha"] button.receive`
	p.waitJS(fmt.Sprintf(`document.querySelector(%q)`, sel), 20*time.Second)
	p.do(chromedp.Click(chromedp.CSS(sel)))
	p.waitJS(`[...document.querySelectorAll('#log li.error')].some((e) => e.textContent.includes('was changed on its way over HTTP'))`, 30*time.Second)
	if n := p.text(`String(window.tampered)`); n != "1" {
		t.Fatalf("the list was changed %s time(s), want 1: the test tampered with nothing", n)
	}
	if n := p.text(`String(document.querySelectorAll('#httppath a.save').length)`); n != "0" {
		t.Fatalf("the page offers %s Save link(s) from a changed list, want none", n)
	}
	t.Logf("page: %s", p.text(`[...document.querySelectorAll('#log li.error')].pop().textContent`))

	// Unchanged, the same share is saved, its list bound.
	p.eval(`window.untamper(); true`)
	p.do(chromedp.Click(chromedp.CSS(sel)))
	p.waitJS(`document.getElementById('httppath') && document.getElementById('httppath').dataset.ready`, 30*time.Second)
	if b := p.text(`document.querySelector('#httppath .checked').dataset.bound`); b != "true" {
		t.Fatalf("the page's check says bound %q, want true: lanft gave no manifest_sha256", b)
	}
	if text := p.text(`document.querySelector('#httppath p.check').textContent`); !strings.Contains(text, "the SHA-256 lanft gave over the verified connection") {
		t.Fatalf("Check a saved file says %q, want that it compares with the SHA-256 given over the verified connection", text)
	}
	got := p.saved(`#httppath a.save[data-path="a.txt"]`, func(n string) bool { return n == "a.txt" }, time.Minute)
	lanfttest.SameFile(t, src, got)
}

// TestBrowserRefusesChangedUpload: a page's upload to lanft receive over
// HTTP, with the file and its SHA-256 in the list both changed on the way
// (every check of the transfer would pass), is refused by lanft receive
// before it writes anything: the list is not the one the page hashed over
// the verified channel.
func TestBrowserRefusesChangedUpload(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "host.txt"), "the page's host shares this\n")
	host := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "host", "--json", filepath.Join(dir, "host.txt"))
	p := newPerson(t, browserOn(t, lan, 2), pageURL(t, host))
	file := filepath.Join(t.TempDir(), "up.txt")
	writeFile(t, file, realContent)
	name := p.share([]string{file}, "")
	if len(realContent) != len(evilContent) {
		t.Fatal("the two contents must have one length")
	}
	p.tamper("/up", [][2]string{{realContent, evilContent}, {sha256Hex(realContent), sha256Hex(evilContent)}})

	out := t.TempDir()
	recv := onHost(t, lan, 1, "receive", "--interface", lan.Iface(1), "--from", name, "--name", "cli", "--yes", "--json", "--out", out)
	if path, line := eventPath(t, recv, "peer", 60*time.Second); path != "http" {
		t.Fatalf("the receiver's peer event has path %q, want http: %s", path, line)
	}
	line := recv.WaitLine(t, `"event":"error"`, time.Minute)
	if !strings.Contains(line.Text, "the list of files arrived changed; nothing was written") {
		t.Fatalf("lanft receive's error %s, want that the list arrived changed", line.Text)
	}
	if code := recv.ExitCode(); code == 0 {
		t.Fatal("lanft receive exited 0 after a changed upload")
	}
	if n := p.text(`String(window.tampered)`); n == "0" {
		t.Fatal("the upload was not changed: the test tampered with nothing")
	}
	left, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("lanft receive wrote %d entries (%s, ...) from a changed upload, want none", len(left), left[0].Name())
	}
	t.Logf("lanft receive: %s", line.Text)
	p.waitJS(`[...document.querySelectorAll('#log li.error')].some((e) => e.textContent.includes('list of files arrived changed'))`, 30*time.Second)
}
