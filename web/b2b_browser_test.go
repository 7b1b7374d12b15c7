package web_test

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
	"github.com/lanft/lanft/web"
)

// procField is the number after name in /proc/PID/file (status: kB).
func procField(t testing.TB, pid int, file, name string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name); ok {
			n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			if err != nil {
				t.Fatalf("%s %s: %q", file, name, l)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/%s", name, pid, file)
	return 0
}

// treeBytes is the size of every file under dirs.
func treeBytes(t testing.TB, dirs ...string) int64 {
	var n int64
	for _, d := range dirs {
		filepath.WalkDir(d, func(_ string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				if i, err := e.Info(); err == nil {
					n += i.Size()
				}
			}
			return nil
		})
	}
	return n
}

// relayTamperJS makes the page flip one bit in the middle of its next big POST
// to a relay: the test's own man in the middle, inside the sender.
const relayTamperJS = `(() => {
	const f = window.fetch;
	let done = false;
	window.fetch = async (u, o) => {
		if (!done && o && o.method === 'POST' && String(u).includes('/lanft/relay/') && o.body instanceof Blob && o.body.size > (1 << 20)) {
			done = true;
			const b = new Uint8Array(await o.body.arrayBuffer());
			b[b.length >> 1] ^= 1;
			o = { ...o, body: new Blob([b]) };
		}
		return f(u, o);
	};
	return 'ok';
})()`

// TestBrowsersRelay: two browsers on two hosts trade a share bigger than
// the data channel's small transfers through the lanft that serves the
// pages (host 1): it lands identical, that lanft's memory stays bounded
// and it writes nothing of it (its write_bytes, its config and temp
// folders); the relay's ends are refused to another address; a bit
// flipped on the way is refused by the receiving page. LANFT_BIG=1 makes
// the share 3 GiB (past the data channel's 2 GiB).
func TestBrowsersRelay(t *testing.T) {
	lan := netns.NewLAN(t, 4)
	var size int64 = 256 << 20
	if os.Getenv("LANFT_BIG") == "1" {
		size = 3 << 30
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "host.txt"), "host")
	cfg, tmp := t.TempDir(), t.TempDir()
	host := lanfttest.Start(t, "ip", "netns", "exec", lan.Namespace(1), "env", "TMPDIR="+tmp, lanft(t), "--config-dir", cfg,
		"share", "--interface", lan.Iface(1), "--name", "host", "--json", filepath.Join(dir, "host.txt"))
	url := pageURL(t, host)
	pid := host.Cmd.Process.Pid

	ann := newPerson(t, browserOn(t, lan, 2), url)
	file := filepath.Join(t.TempDir(), "big.bin")
	lanfttest.WriteRandom(t, file, size)
	annName := ann.share([]string{file}, "")
	// bob's tab is in the browser's own profile, whose Blob storage goes
	// to disk past what it keeps in memory, as for a person.
	bob := openPageWith(t, browserOn(t, lan, 3), url)
	bob.waitJS(`document.body.dataset.online`, 20*time.Second)

	wrote, disk := procField(t, pid, "io", "write_bytes:"), treeBytes(t, cfg, tmp)
	bob.receiveFrom(annName, time.Duration(size>>20)*time.Second+60*time.Second)
	if !strings.Contains(bob.log(), "sealed end to end") || !strings.Contains(ann.log(), "sealed end to end") {
		t.Fatalf("the share did not go through the relay:\nbob: %s\nann: %s", bob.log(), ann.log())
	}
	secs, _ := strconv.ParseFloat(bob.text(`document.getElementById('done').dataset.seconds`), 64)
	hwm := procField(t, pid, "status", "VmHWM:") << 10
	t.Logf("%d MiB from page to page through the relay in %.1f s: %.1f MB/s; the relaying lanft's peak RSS %d MiB",
		size>>20, secs, float64(size)/1e6/secs, hwm>>20)
	if hwm > 160<<20 {
		t.Errorf("the relaying lanft's peak RSS is %d MiB for a %d MiB share: it holds more than a bounded window", hwm>>20, size>>20)
	}
	if w := procField(t, pid, "io", "write_bytes:") - wrote; w > 4<<20 {
		t.Errorf("the relaying lanft wrote %d bytes to storage during the transfer", w)
	}
	if d := treeBytes(t, cfg, tmp) - disk; d > 1<<20 {
		t.Errorf("the relaying lanft's config and temp folders grew by %d bytes", d)
	}
	lanfttest.SameFile(t, file, saveFirst(bob, "big.bin", time.Duration(size>>20)*100*time.Millisecond+60*time.Second))

	// The ends are bound to the two pages' addresses: bob's browser
	// cannot use ann's end, a client on host 4 neither end.
	annEnd, bobEnd := ann.text(`document.body.dataset.relay`), bob.text(`document.body.dataset.relay`)
	if annEnd == "" || bobEnd == "" || annEnd == bobEnd {
		t.Fatalf("relay ends %q and %q", annEnd, bobEnd)
	}
	if got := bob.text(fmt.Sprintf(`fetch(%q).then(r => String(r.status), e => 'failed: ' + e.message)`, annEnd+"hello")); got != "404" {
		t.Errorf("bob's browser used ann's end of the relay: %s", got)
	}
	for _, end := range []string{annEnd, bobEnd} {
		for _, path := range []string{"hello", "down?off=0"} {
			out, err := exec.Command("ip", "netns", "exec", lan.Namespace(4), "curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}",
				"-H", "Origin: "+strings.TrimSuffix(url, "/"), end+path).Output()
			if err != nil {
				t.Fatalf("curl on host 4: %v", err)
			}
			status, _ := strconv.Atoi(string(out))
			if status != http.StatusNotFound {
				t.Errorf("a client on host 4 got %d for %s%s", status, end, path)
			}
		}
	}

	// A bit flipped on the way: the receiving page refuses the stream.
	ann.text(relayTamperJS)
	bob.clickReceive(annName)
	bob.waitJS(`!document.getElementById('offer').hidden`, 30*time.Second)
	bob.do(chromedp.Click(chromedp.ID("accept")))
	bob.waitJS(`[...document.querySelectorAll('#log li')].some(l => l.textContent.includes('changed on the way'))`, 60*time.Second)
	t.Logf("bob: %s", lastLine(bob.log(), "changed on the way"))

	// ann's lanft gives no relay: the data channel carries the share (the
	// same size, for the rate beside the relay's), or refuses it past 2 GiB.
	ann.text(`(() => { const f = window.fetch; window.fetch = (u, o) => String(u) === '/lanft/relay' ? Promise.reject(new Error('switched off by the test')) : f(u, o); return 'ok'; })()`)
	if size > web.MaxReceive {
		bob.clickReceive(annName)
		bob.waitJS(`[...document.querySelectorAll('#log li')].some(l => l.textContent.includes('at most 2 GiB'))`, 60*time.Second)
		return
	}
	bob.receiveFrom(annName, time.Duration(size>>20)*time.Second+60*time.Second)
	if !strings.Contains(bob.log(), "gives no relay") {
		t.Fatalf("bob's page does not say why the data channel carried it: %s", bob.log())
	}
	secs, _ = strconv.ParseFloat(bob.text(`document.getElementById('done').dataset.seconds`), 64)
	t.Logf("the same %d MiB over the data channel in %.1f s: %.1f MB/s", size>>20, secs, float64(size)/1e6/secs)
}

// saveFirst clicks the first Save link under Received (name) and waits up
// to d for Chromium to have saved it (person.save waits 60 s: less than
// Chromium takes to save 3 GiB from its Blob storage here).
func saveFirst(p *person, name string, d time.Duration) string {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(`#received li:nth-child(1) a.save`)))
	deadline := time.After(d)
	for {
		p.mu.Lock()
		f, ok := p.done[name]
		p.mu.Unlock()
		if ok {
			return f
		}
		select {
		case <-p.ch:
		case <-deadline:
			p.t.Fatalf("Chromium did not save %s within %v", name, d)
		}
	}
}

// lastLine is the last line of log that holds s.
func lastLine(log, s string) string {
	out := ""
	for _, l := range strings.Split(log, " | ") {
		if strings.Contains(l, s) {
			out = l
		}
	}
	return out
}
