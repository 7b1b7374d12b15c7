package web_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lanft/lanft/internal/netns"
)

// TestBrowserPinsFoldNames: the page looks a name up among the pins it is
// one name with (names.Same, from the wasm), as the CLI does. A pin stored
// under a look-alike spelling in Greek capitals ("ΑLΡΗΑ", which only the
// shape keys find) with another device key stops a receive from "alpha",
// saying which pinned name it is; nothing is received.
func TestBrowserPinsFoldNames(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	src := filepath.Join(t.TempDir(), "x.txt")
	writeFile(t, src, "for the pinned device only\n")
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	url := pageURL(t, share)
	p := newPerson(t, startBrowser(t, lan, 2), url)
	other := make([]byte, 32)
	rand.Read(other)
	p.text(fmt.Sprintf(`(localStorage.setItem('lanft-pins', JSON.stringify({"\u0391L\u03a1\u0397\u0391": %q})), '')`, base64.StdEncoding.EncodeToString(other)))

	sel := `#peers li[data-name="alpha"] button.receive`
	p.waitJS(fmt.Sprintf(`document.querySelector(%q)`, sel), 20*time.Second)
	p.do(chromedp.Click(chromedp.CSS(sel)))
	p.waitJS(`[...document.querySelectorAll('#log li.error')].some(e => e.textContent.includes('another spelling of the pinned name "\u0391L\u03a1\u0397\u0391"'))`, 30*time.Second)
	t.Logf("page: %s", p.text(`document.querySelector('#log li.error').textContent`))
	if got := p.text(`String(document.getElementById('received').children.length)`); got != "0" {
		t.Fatalf("the page received %s file(s) from a device other than the pinned one", got)
	}
}
