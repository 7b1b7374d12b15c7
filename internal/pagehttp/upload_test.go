package pagehttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanft/lanft/transfer"
)

// page plays a browser page's side of an upload, as httppath.js does: what
// its sender writes goes out in POSTs from the last acknowledged offset,
// and what the CLI writes comes back from a GET down, again from the last
// offset after a cut.
type page struct {
	t    *testing.T
	hc   *http.Client
	base string

	mu     sync.Mutex
	wake   chan struct{}
	out    []byte // all the page's sender wrote
	acked  int64
	closed bool

	downR *io.PipeReader
	downW *io.PipeWriter

	cutUpAt   int64 // the POST carrying this offset dies there (0: none)
	cutDownAt int64 // the first GET down is dropped after this many bytes (0: none)
	cuts      int   // cuts made
}

func newPage(t *testing.T, base string) *page {
	pr, pw := io.Pipe()
	return &page{t: t, hc: client(t, peer), base: base, wake: make(chan struct{}), downR: pr, downW: pw}
}

// Read and Write make the page's side an io.ReadWriteCloser for the
// transfer's sender.
func (p *page) Read(b []byte) (int, error) { return p.downR.Read(b) }

func (p *page) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errors.New("page closed")
	}
	p.out = append(p.out, b...)
	close(p.wake)
	p.wake = make(chan struct{})
	return len(b), nil
}

func (p *page) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.wake)
		p.wake = make(chan struct{})
	}
	p.downR.Close()
	return nil
}

// run moves the bytes until ctx is done or the page is closed.
func (p *page) run(ctx context.Context) func() {
	var wg sync.WaitGroup
	wg.Go(func() { p.upload(ctx) })
	wg.Go(func() { p.download(ctx) })
	return wg.Wait
}

// failingReader yields b, then fails: a connection that dies mid-body.
type failingReader struct{ b []byte }

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, errors.New("the network went away")
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

func (p *page) upload(ctx context.Context) {
	for ctx.Err() == nil {
		off, body, ok := p.next(ctx)
		if !ok {
			return
		}
		var rd io.Reader = bytes.NewReader(body)
		cut := p.cutUpAt > off && p.cutUpAt < off+int64(len(body))
		if cut {
			// No Content-Length: the body is cut where the network dies.
			rd = &failingReader{b: body[:p.cutUpAt-off]}
		}
		have, status, err := p.post(ctx, off, rd)
		switch {
		case err != nil && cut:
			p.afterCut(ctx, p.cutUpAt)
			p.cutUpAt = 0
			continue // again from the last acknowledged offset
		case err != nil:
			if ctx.Err() == nil {
				p.t.Errorf("POST up?off=%d: %v", off, err)
			}
			return
		case status != http.StatusOK:
			return // the CLI ended the stream
		}
		if want := off + int64(len(body)); have != want {
			p.t.Errorf("POST up?off=%d of %d bytes: the CLI has %d, want %d", off, len(body), have, want)
		}
		p.mu.Lock()
		p.acked = have
		p.mu.Unlock()
	}
}

// next waits for bytes not yet acknowledged and returns up to 1 MiB of them.
func (p *page) next(ctx context.Context) (int64, []byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for int64(len(p.out)) == p.acked && !p.closed {
		w := p.wake
		p.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
		}
		p.mu.Lock()
		if ctx.Err() != nil {
			return 0, nil, false
		}
	}
	if p.closed {
		return 0, nil, false
	}
	return p.acked, p.out[p.acked:min(int64(len(p.out)), p.acked+1<<20)], true
}

func (p *page) post(ctx context.Context, off int64, body io.Reader) (have int64, status int, err error) {
	r, err := http.NewRequestWithContext(ctx, "POST", p.base+"up?off="+strconv.FormatInt(off, 10), body)
	if err != nil {
		return 0, 0, err
	}
	r.Header.Set("Origin", origin)
	r.Header.Set("Content-Type", "application/octet-stream")
	resp, err := p.hc.Do(r)
	if err != nil {
		return 0, 0, err
	}
	resp.Body.Close()
	have, _ = strconv.ParseInt(resp.Header.Get(HeaderHave), 10, 64)
	return have, resp.StatusCode, nil
}

// afterCut waits until the CLI holds the bytes the cut POST carried, so
// that the retry from the acknowledged offset must skip them.
func (p *page) afterCut(ctx context.Context, at int64) {
	p.cuts++
	deadline := time.Now().Add(20 * time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		have, status, err := p.post(ctx, at, bytes.NewReader(nil))
		if err == nil && status == http.StatusOK && have >= at {
			return
		}
		if err == nil && status != http.StatusConflict {
			p.t.Errorf("after a cut, POST up?off=%d: %d", at, status)
			return
		}
		time.Sleep(5 * time.Millisecond) // polling the CLI as a page would; bounded above
	}
	p.t.Errorf("the bytes of the cut POST (up to %d) never arrived", at)
}

// download copies the CLI's bytes to the page's reader, GETting again from
// the last offset after a cut, until the CLI ends the stream.
func (p *page) download(ctx context.Context) {
	defer p.downW.Close()
	var off int64
	for ctx.Err() == nil {
		r, _ := http.NewRequestWithContext(ctx, "GET", p.base+"down?off="+strconv.FormatInt(off, 10), nil)
		r.Header.Set("Origin", origin)
		resp, err := p.hc.Do(r)
		if err != nil {
			if ctx.Err() == nil {
				p.t.Errorf("GET down: %v", err)
			}
			return
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return // the capability ended
		}
		var body io.Reader = resp.Body
		cut := p.cutDownAt > 0
		if cut {
			body = io.LimitReader(resp.Body, p.cutDownAt)
			p.cutDownAt = 0
		}
		n, err := io.Copy(p.downW, body)
		off += n
		resp.Body.Close()
		if cut {
			p.cuts++
			continue
		}
		if err != nil || n == 0 {
			return
		}
		// The CLI ended the stream: nothing more will come.
		return
	}
}

// runUpload runs a real transfer from the page's folder to a CLI's target
// over the HTTP stream: transfer.Source.Serve on the page's side,
// transfer.Receive on the CLI's.
func runUpload(t *testing.T, src *transfer.Source, target string, cutUpAt, cutDownAt int64) (sendErr, recvErr, lingerErr error, p *page) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s := newServer(t, Config{})
	c, st, err := s.Upload(ctx, grant())
	if err != nil {
		t.Fatal(err)
	}
	p = newPage(t, c.URL)
	p.cutUpAt, p.cutDownAt = cutUpAt, cutDownAt
	wait := p.run(ctx)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		_, recvErr = transfer.Receive(ctx, st, transfer.ReceiveOptions{Dir: target})
		lingerErr = st.Linger(10 * time.Second)
	}()
	sendErr = src.Serve(ctx, p, transfer.SendOptions{})
	<-recvDone
	p.Close()
	wait()
	return sendErr, recvErr, lingerErr, p
}

func TestUploadTransfer(t *testing.T) {
	dir := t.TempDir()
	want := files{
		"up/big.bin":       randomFile(t, filepath.Join(t.TempDir(), "x"), 6<<20+5, 7),
		"up/sub/small.txt": []byte("small"),
		"up/sub/empty":     {},
		"up/ünïcode ☀.txt": []byte("named"),
	}
	writeFiles(t, dir, want)
	src := newSource(t, filepath.Join(dir, "up"))
	target := t.TempDir()
	// Cut a POST in the middle of big.bin, and the first GET down inside
	// the PLAN.
	sendErr, recvErr, lingerErr, p := runUpload(t, src, target, 2<<20+1234, 3)
	if sendErr != nil || recvErr != nil || lingerErr != nil {
		t.Fatalf("send: %v; receive: %v; linger: %v", sendErr, recvErr, lingerErr)
	}
	if p.cuts != 2 {
		t.Errorf("%d cuts made, want 2 (the test did not test resuming)", p.cuts)
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(target, filepath.FromSlash(name)))
		if err != nil || !same(got, b) {
			t.Errorf("%s: %d bytes (%v), want the %d sent", name, len(got), err, len(b))
		}
	}
}

// frame encodes one transfer frame (see transfer/doc.go).
func frame(typ byte, payload []byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	b[1], b[2], b[3], b[4] = byte(len(payload)>>24), byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	return append(b, payload...)
}

func fileFrame(i uint32, off uint64) []byte {
	p := make([]byte, 12)
	p[0], p[1], p[2], p[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	for k := range 8 {
		p[4+k] = byte(off >> (56 - 8*k))
	}
	return frame('F', p)
}

func manifestFrame(t *testing.T, entries ...transfer.Entry) []byte {
	t.Helper()
	b, err := (&transfer.Manifest{Entries: entries}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return frame('M', b)
}

func sumOf(b string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(b))) }

// tree returns every file under root with its content.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	got := make(map[string]string)
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, _ := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return got
}

// TestUploadHostilePage sends what a hostile page might over the HTTP
// stream: transfer.Receive refuses it, the page is told with an ERROR
// frame, and nothing is written outside the target folder.
func TestUploadHostilePage(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	writeFiles(t, outside, files{"secret.txt": []byte("secret")})
	million := make([]transfer.Entry, 1_000_000)
	for i := range million {
		million[i] = transfer.Entry{Path: "d" + strconv.Itoa(i), Kind: transfer.KindDir}
	}
	millionJSON, _ := (&transfer.Manifest{Entries: million}).Encode()
	fe := func(p, content string) transfer.Entry {
		return transfer.Entry{Path: p, Kind: transfer.KindFile, Size: int64(len(content)), SHA256: sumOf(content)}
	}
	cases := []struct {
		name   string
		stream []byte
	}{
		{"dot dot", concat(manifestFrame(t, fe("../outside/x.txt", "evil")), fileFrame(0, 0), frame('D', []byte("evil")), frame('E', nil))},
		{"inner dot dot", concat(manifestFrame(t, fe("a/../../outside/secret.txt", "evil")), fileFrame(0, 0), frame('D', []byte("evil")), frame('E', nil))},
		{"absolute", concat(manifestFrame(t, fe(filepath.ToSlash(filepath.Join(outside, "abs.txt")), "evil")), fileFrame(0, 0), frame('D', []byte("evil")), frame('E', nil))},
		{"a million entries", frame('M', millionJSON)[:4<<20]},
		{"longer than said", concat(manifestFrame(t, fe("a.txt", "abcd")), fileFrame(0, 0), frame('D', []byte("abcdefgh")), frame('E', nil))},
		{"shorter than said", concat(manifestFrame(t, fe("a.txt", "abcd")), fileFrame(0, 0), frame('D', []byte("ab")), frame('E', nil))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := filepath.Join(base, "recv-"+strconv.Itoa(len(c.name)))
			writeFiles(t, target, files{"existing.txt": []byte("keep me")})
			before := tree(t, base)
			s := newServer(t, Config{MaxBody: 8 << 20})
			c2, st, err := s.Upload(t.Context(), grant())
			if err != nil {
				t.Fatal(err)
			}
			// The page's GET down, open before it sends anything.
			r := req(t, "GET", c2.URL+"down?off=0", nil, true)
			resp, err := client(t, peer).Do(r)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET down: %v %v", resp, err)
			}
			defer resp.Body.Close()
			recvErr := make(chan error, 1)
			go func() {
				_, err := transfer.Receive(t.Context(), st, transfer.ReceiveOptions{Dir: target})
				recvErr <- err
			}()
			// The CLI may stop reading the hostile body half way: then the
			// page's POST ends with a cut connection rather than a status.
			if pr, err := client(t, peer).Do(req(t, "POST", c2.URL+"up?off=0", bytes.NewReader(c.stream), true)); err == nil {
				pr.Body.Close()
				if pr.StatusCode != 200 && pr.StatusCode != http.StatusNotFound {
					t.Errorf("POST: %d", pr.StatusCode)
				}
			}
			select {
			case err := <-recvErr:
				if err == nil {
					t.Fatal("Receive accepted a hostile stream")
				}
				t.Logf("refused: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("Receive did not refuse")
			}
			got, _ := io.ReadAll(resp.Body)
			if typ := lastFrame(got); typ != 'X' {
				t.Errorf("the page read %q from down, want frames ending in ERROR", got)
			}
			after := tree(t, base)
			for k, v := range after {
				rel, err := filepath.Rel(target, filepath.Join(base, k))
				inside := err == nil && filepath.IsLocal(rel)
				switch {
				case !inside && before[k] != v:
					t.Errorf("%s written outside the target folder", k)
				case inside && rel != "existing.txt" && filepath.Ext(rel) != ".part":
					t.Errorf("%s was saved", rel)
				}
			}
			for k, v := range before {
				if after[k] != v {
					t.Errorf("%s changed", k)
				}
			}
		})
	}
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// lastFrame returns the type of the last whole frame in b, or 0.
func lastFrame(b []byte) byte {
	var typ byte
	for len(b) >= 5 {
		n := int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])
		if len(b) < 5+n {
			return 0
		}
		typ, b = b[0], b[5+n:]
	}
	if len(b) != 0 {
		return 0
	}
	return typ
}

// A receive that fails writes its ERROR frame and closes the stream
// (transfer.Receive does both) before lanft lingers and exits: Linger
// still waits until the page's GET down has those last bytes and has
// ended, so that lanft's exit right after (here: the server closed at
// once) cuts nothing and the page reads why rather than a network error.
func TestLingerGivesAClosedStreamItsLastWord(t *testing.T) {
	s := newServer(t, Config{})
	c, st, err := s.Upload(t.Context(), grant())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client(t, peer).Do(req(t, "GET", c.URL+"down?off=0", nil, true))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET down: %v %v", resp, err)
	}
	defer resp.Body.Close()
	type read struct {
		b   []byte
		err error
	}
	got := make(chan read, 1)
	go func() {
		b, err := io.ReadAll(resp.Body)
		got <- read{b, err}
	}()
	const last = "ERROR: the list of files arrived changed"
	for range 20 { // the same again and again, as a loaded machine schedules it
		if _, err := st.Write([]byte(last)); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	lingerErr := st.Linger(10 * time.Second)
	s.Close() // lanft exits
	r := <-got
	if want := strings.Repeat(last, 20); string(r.b) != want || r.err != nil {
		t.Fatalf("the page read %d bytes (%v), want the %d of lanft's last word and a clean end", len(r.b), r.err, len(want))
	}
	if lingerErr != nil {
		t.Errorf("Linger: %v, want nil: the page took everything", lingerErr)
	}
}
