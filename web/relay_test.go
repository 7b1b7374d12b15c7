package web

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	pageOrigin = "http://page.test:1"
	peerOrigin = "http://peer.test:2"
)

// testRelays admits the Host page.test:1 and its own Origin, as
// signal.Server.Admits would.
func testRelays() *relays {
	return newRelays(func(r *http.Request) bool {
		o := r.Header.Get("Origin")
		return r.Host == "page.test:1" && (o == "" || o == pageOrigin)
	})
}

// call serves one request from addr and returns the recorder.
func call(rs *relays, method, path, from, origin, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://page.test:1"+path, strings.NewReader(body))
	r.RemoteAddr = from
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	w := httptest.NewRecorder()
	rs.ServeHTTP(w, r)
	return w
}

func create(t *testing.T, rs *relays, from string) (a, b string) {
	t.Helper()
	w := call(rs, http.MethodPost, relayPrefix, from, pageOrigin, `{"origin":"`+peerOrigin+`"}`)
	var tok struct{ A, B string }
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &tok) != nil || tok.A == "" || tok.B == "" || tok.A == tok.B {
		t.Fatalf("create: %d %q", w.Code, w.Body)
	}
	return tok.A, tok.B
}

// TestRelayRefuses: every request that is not one of the two pages' is
// the same empty 404, and relays are bounded per address.
func TestRelayRefuses(t *testing.T) {
	rs := testRelays()
	defer rs.close()
	a, b := create(t, rs, "10.0.0.2:1000")
	hello := func(tok string) string { return relayPrefix + "/" + tok + "/hello" }
	for _, c := range []struct {
		what, method, path, from, origin string
		want                             int
	}{
		{"ann's end from ann", "GET", hello(a), "10.0.0.2:1001", "", 204},
		{"ann's end from another address", "GET", hello(a), "10.0.0.9:1", "", 404},
		{"ann's end from the peer's origin", "GET", hello(a), "10.0.0.2:1", peerOrigin, 404},
		{"bob's end, first use, from a foreign origin", "GET", hello(b), "10.0.0.3:1", "http://evil.test", 404},
		{"bob's end, first use", "GET", hello(b), "10.0.0.3:1", peerOrigin, 204},
		{"bob's end from another address", "GET", hello(b), "10.0.0.4:1", peerOrigin, 404},
		{"a guessed token", "GET", hello(strings.Repeat("A", 43)), "10.0.0.2:1", "", 404},
		{"a POST without Origin", "POST", relayPrefix + "/" + a + "/up?off=0", "10.0.0.2:1", "", 404},
		{"a create from another origin", "POST", relayPrefix, "10.0.0.2:1", peerOrigin, 404},
		{"a create without Origin", "POST", relayPrefix, "10.0.0.2:1", "", 404},
	} {
		r := httptest.NewRequest(c.method, "http://page.test:1"+c.path, strings.NewReader(`{"origin":"`+peerOrigin+`"}`))
		r.RemoteAddr = c.from
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		w := httptest.NewRecorder()
		rs.ServeHTTP(w, r)
		if w.Code != c.want || (c.want == 404 && w.Body.Len() != 0) {
			t.Errorf("%s: %d %q, want %d", c.what, w.Code, w.Body, c.want)
		}
	}
	r := httptest.NewRequest("GET", "http://evil.test:1"+hello(a), nil)
	r.RemoteAddr = "10.0.0.2:1"
	w := httptest.NewRecorder()
	rs.ServeHTTP(w, r)
	if w.Code != 404 {
		t.Errorf("a Host not the page's: %d", w.Code)
	}
	if w := call(rs, "GET", hello(b), "10.0.0.3:1", peerOrigin, ""); w.Header().Get("Access-Control-Allow-Origin") != peerOrigin {
		t.Errorf("CORS for the peer's origin: %v", w.Header())
	}
	for range relayPerAddr - 1 {
		create(t, rs, "10.0.0.2:2000")
	}
	if w := call(rs, http.MethodPost, relayPrefix, "10.0.0.2:1", pageOrigin, `{"origin":"`+peerOrigin+`"}`); w.Code != http.StatusServiceUnavailable {
		t.Errorf("relay %d from one address: %d", relayPerAddr+1, w.Code)
	}
	create(t, rs, "10.0.0.5:1") // another address still gets one
}

// TestRelayCarries: 3 windows' worth of bytes go from one end's POSTs
// (one of them sent twice, overlapping) to the other end's GET, in order,
// once, while the window keeps the POSTs waiting for the reader.
func TestRelayCarries(t *testing.T) {
	rs := newRelays(func(*http.Request) bool { return true })
	defer rs.close()
	srv := httptest.NewServer(rs)
	defer srv.Close()
	origin := srv.URL
	post := func(path, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Origin", origin)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := post(relayPrefix, `{"origin":"`+origin+`"}`)
	var tok struct{ A, B string }
	json.NewDecoder(r.Body).Decode(&tok)
	r.Body.Close()

	want := make([]byte, 3*relayWindow+12345)
	rand.Read(want)
	const chunk = 4 << 20
	done := make(chan error, 1)
	go func() {
		for off := 0; off < len(want); off += chunk {
			from := max(0, off-1000) // each POST after the first repeats 1000 bytes
			r := post(fmt.Sprintf("%s/%s/up?off=%d", relayPrefix, tok.A, from), string(want[from:min(len(want), off+chunk)]))
			r.Body.Close()
			if h := r.Header.Get(headerHave); r.StatusCode != 200 || h != fmt.Sprint(min(len(want), off+chunk)) {
				done <- fmt.Errorf("POST at %d: %d, have %s", from, r.StatusCode, h)
				return
			}
		}
		done <- nil
	}()
	g, err := http.Get(fmt.Sprintf("%s%s/%s/down?off=0", srv.URL, relayPrefix, tok.B))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Body.Close()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(g.Body, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the bytes read differ from those posted")
	}
	// The bytes read are gone: a GET from 0 again is refused.
	g2, err := http.Get(fmt.Sprintf("%s%s/%s/down?off=0", srv.URL, relayPrefix, tok.B))
	if err != nil {
		t.Fatal(err)
	}
	g2.Body.Close()
	if g2.StatusCode != 404 {
		t.Errorf("a GET of bytes already read: %d", g2.StatusCode)
	}
}
