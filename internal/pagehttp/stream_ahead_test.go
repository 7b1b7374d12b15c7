package pagehttp

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// until waits, on the stream's own changes, for cond (read under its lock).
func until(t *testing.T, st *Stream, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		st.mu.Lock()
		ok, w := cond(), st.wake
		st.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-w:
		case <-deadline:
			t.Fatalf("waiting for %s: not within 10 s", what)
		}
	}
}

type answer struct {
	code int
	have int64
}

// postAsync POSTs body at off and sends the answer on the returned channel.
func postAsync(t *testing.T, hc *http.Client, base string, off int64, body []byte) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		r := req(t, "POST", base+"up?off="+strconv.FormatInt(off, 10), bytes.NewReader(body), true)
		resp, err := hc.Do(r)
		if err != nil {
			t.Errorf("POST up?off=%d: %v", off, err)
			ch <- answer{}
			return
		}
		resp.Body.Close()
		have, _ := strconv.ParseInt(resp.Header.Get(HeaderHave), 10, 64)
		ch <- answer{resp.StatusCode, have}
	}()
	return ch
}

func readN(t *testing.T, st *Stream, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(st, b); err != nil {
		t.Fatalf("Read: %v", err)
	}
	return b
}

// TestUploadAhead: POSTs that start past what the CLI has are held, then
// appended in order once the gap fills, and each answers with all it has;
// one past the window, or one more than maxHeld, is refused with a 409.
func TestUploadAhead(t *testing.T) {
	s := newServer(t, Config{})
	c, st, err := s.Upload(t.Context(), grant())
	if err != nil {
		t.Fatal(err)
	}
	hc := client(t, peer)
	const x = 3<<20 + 17 // bytes per POST: more than one read chunk
	data := make([]byte, 3*x)
	rand.NewChaCha8([32]byte{9}).Read(data)

	// The third, then the second: held, nothing in the stream.
	third := postAsync(t, hc, c.URL, 2*x, data[2*x:])
	second := postAsync(t, hc, c.URL, x, data[x:2*x])
	until(t, st, "both POSTs held", func() bool { return st.aheadBytes == 2*x })
	st.mu.Lock()
	have, in := st.have, st.in.n
	st.mu.Unlock()
	if have != 0 || in != 0 {
		t.Fatalf("with only later POSTs the stream has %d bytes (%d readable), want none", have, in)
	}
	select {
	case a := <-third:
		t.Fatalf("a POST past the gap answered %d before the gap filled", a.code)
	case a := <-second:
		t.Fatalf("a POST past the gap answered %d before the gap filled", a.code)
	default:
	}

	// One past the window: refused at once with what the CLI has.
	code, h, _ := do(t, hc, req(t, "POST", c.URL+"up?off="+strconv.Itoa(maxAhead+1), bytes.NewReader([]byte("x")), true))
	if code != http.StatusConflict || h.Get(HeaderHave) != "0" {
		t.Errorf("a POST past the window: %d, have %q; want 409 with 0", code, h.Get(HeaderHave))
	}

	// The first fills the gap: all three join the stream in order.
	first := postAsync(t, hc, c.URL, 0, data[:x])
	if got := readN(t, st, 3*x); !bytes.Equal(got, data) {
		t.Fatal("the stream read back differs from the POSTs in order")
	}
	for i, ch := range []<-chan answer{first, second, third} {
		if a := <-ch; a.code != http.StatusOK || a.have != 3*x {
			t.Errorf("POST %d: %d with have %d, want 200 with %d", i+1, a.code, a.have, 3*x)
		}
	}
	st.mu.Lock()
	left, held := st.aheadBytes, st.holding
	st.mu.Unlock()
	if left != 0 || held != 0 {
		t.Errorf("after the gap filled: %d bytes held by %d POSTs, want none", left, held)
	}

	// maxHeld POSTs ahead are held; one more is refused.
	var waits []<-chan answer
	for i := range maxHeld {
		waits = append(waits, postAsync(t, hc, c.URL, 3*x+1+int64(i), nil))
	}
	until(t, st, "maxHeld POSTs held", func() bool { return st.holding == maxHeld })
	code, h, _ = do(t, hc, req(t, "POST", c.URL+"up?off="+strconv.Itoa(3*x+1), nil, true))
	if code != http.StatusConflict || h.Get(HeaderHave) != strconv.Itoa(3*x) {
		t.Errorf("POST %d ahead: %d, have %q; want 409 with %d", maxHeld+1, code, h.Get(HeaderHave), 3*x)
	}
	tail := []byte("0123456789abcdef")
	if code, h, _ = do(t, hc, req(t, "POST", c.URL+"up?off="+strconv.Itoa(3*x), bytes.NewReader(tail), true)); code != http.StatusOK {
		t.Errorf("the POST filling the gap: %d, have %q", code, h.Get(HeaderHave))
	}
	for i, ch := range waits {
		if a := <-ch; a.code != http.StatusOK || a.have != 3*x+int64(len(tail)) {
			t.Errorf("held POST %d: %d with have %d, want 200 with %d", i, a.code, a.have, 3*x+len(tail))
		}
	}
	if got := readN(t, st, len(tail)); !bytes.Equal(got, tail) {
		t.Errorf("the tail read back as %q", got)
	}
}

// TestUploadAheadTimesOut: a POST held past a gap that does not fill is a
// 409 once the stream has not grown for Hold; its bytes are dropped, and
// the same bytes sent again after the gap filled join the stream.
func TestUploadAheadTimesOut(t *testing.T) {
	const hold = 300 * time.Millisecond
	s := newServer(t, Config{Hold: hold})
	c, st, err := s.Upload(t.Context(), grant())
	if err != nil {
		t.Fatal(err)
	}
	hc := client(t, peer)
	t0 := time.Now()
	code, h, _ := do(t, hc, req(t, "POST", c.URL+"up?off=4", bytes.NewReader([]byte("late")), true))
	if code != http.StatusConflict || h.Get(HeaderHave) != "0" {
		t.Errorf("a held POST whose gap never filled: %d, have %q; want 409 with 0", code, h.Get(HeaderHave))
	}
	if d := time.Since(t0); d < hold {
		t.Errorf("it was refused after %v, before Hold (%v)", d, hold)
	}
	st.mu.Lock()
	left := st.aheadBytes
	st.mu.Unlock()
	if left != 0 {
		t.Errorf("%d bytes still held after the 409", left)
	}
	for _, p := range []struct {
		off  int64
		body string
	}{{0, "soon"}, {4, "late"}} {
		if code, h, _ := do(t, hc, req(t, "POST", c.URL+"up?off="+strconv.FormatInt(p.off, 10), bytes.NewReader([]byte(p.body)), true)); code != http.StatusOK {
			t.Errorf("POST up?off=%d: %d, have %q", p.off, code, h.Get(HeaderHave))
		}
	}
	if got := readN(t, st, 8); string(got) != "soonlate" {
		t.Errorf("read back %q, want soonlate", got)
	}
}

// TestUploadAheadConcurrent: a page keeping four POSTs in flight, as
// httppath.js does, with one POST cut mid-body and sent again from its
// offset: the stream reads back exactly once, in order.
func TestUploadAheadConcurrent(t *testing.T) {
	s := newServer(t, Config{})
	c, st, err := s.Upload(t.Context(), grant())
	if err != nil {
		t.Fatal(err)
	}
	hc := client(t, peer)
	const chunk, n = 1 << 20, 24
	data := make([]byte, chunk*n)
	rand.NewChaCha8([32]byte{4}).Read(data)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(data))
		_, err := io.ReadFull(st, b)
		if err != nil {
			t.Errorf("Read: %v", err)
		}
		got <- b
	}()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	slots := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range n {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			off := int64(i * chunk)
			body := data[off : off+chunk]
			if i == 5 { // the network dies a third of the way in
				r, _ := http.NewRequestWithContext(ctx, "POST", c.URL+"up?off="+strconv.FormatInt(off, 10), &failingReader{b: body[:chunk/3]})
				r.Header.Set("Origin", origin)
				if resp, err := hc.Do(r); err == nil {
					resp.Body.Close()
					t.Errorf("a cut POST answered %d", resp.StatusCode)
				}
			}
			for ctx.Err() == nil {
				_, code, err := (&page{hc: hc, base: c.URL}).post(ctx, off, bytes.NewReader(body))
				if err == nil && code == http.StatusOK {
					return
				}
				t.Logf("POST up?off=%d: %d %v; again", off, code, err)
			}
		})
	}
	wg.Wait()
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatal("the stream read back differs")
	}
}
