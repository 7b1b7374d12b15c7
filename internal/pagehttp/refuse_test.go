package pagehttp

import (
	"bytes"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// refused checks that a request got the one refusal: an empty 404 with no
// CORS header.
func refused(t *testing.T, what string, st int, h http.Header, b []byte) {
	t.Helper()
	if st != http.StatusNotFound || len(b) != 0 || h.Get("Access-Control-Allow-Origin") != "" || h.Get("ETag") != "" {
		t.Errorf("%s: %d with %d bytes (%q) and CORS %q; want an empty 404", what, st, len(b), b, h.Get("Access-Control-Allow-Origin"))
	}
}

// shareFixture serves a folder to peer; it returns the download and an
// upload capability.
func shareFixture(t *testing.T, cfg Config) (*Server, *Capability, *Capability, *Stream) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files{"share/a.txt": []byte("secret a"), "share/sub/b.txt": []byte("secret b")})
	src := newSource(t, filepath.Join(dir, "share"))
	s := newServer(t, cfg)
	down := download(t, s, src, nil)
	up, st, err := s.Upload(t.Context(), grant())
	if err != nil {
		t.Fatal(err)
	}
	return s, down, up, st
}

func TestRefusals(t *testing.T) {
	_, down, up, _ := shareFixture(t, Config{})
	hc, neighbour := client(t, peer), client(t, other)
	base, _ := url.Parse(down.URL)
	host := base.Host
	token := strings.Split(base.Path, "/")[2]
	guess := strings.Repeat("A", len(token))

	// The same requests succeed when nothing is wrong.
	if st, _, _ := do(t, hc, req(t, "GET", down.URL+"f/1", nil, true)); st != 200 {
		t.Fatalf("the control request got %d, want 200", st)
	}

	type tc struct {
		name   string
		c      *http.Client
		method string
		url    string
		origin string // "" for none, "page" for the bound one
		host   string // Host header; "" for the URL's
		body   string
	}
	u := func(p string) string { return "http://" + host + p }
	cases := []tc{
		{name: "rebinding host name", url: down.URL + "f/1", host: "lanft.example:" + base.Port()},
		{name: "localhost", url: down.URL + "f/1", host: "localhost:" + base.Port()},
		{name: "host without port", url: down.URL + "f/1", host: "127.0.0.1"},
		{name: "other origin", url: down.URL + "f/1", origin: "http://evil.example"},
		{name: "origin null", url: down.URL + "manifest", origin: "null"},
		{name: "other client address", c: neighbour, url: down.URL + "f/1"},
		{name: "other client address with origin", c: neighbour, url: down.URL + "manifest", origin: "page"},
		{name: "guessed token", url: u("/c/" + guess + "/f/1")},
		{name: "short token", url: u("/c/" + token[:20] + "/f/1")},
		{name: "upload on a download", method: "POST", url: down.URL + "up?off=0", origin: "page", body: "x"},
		{name: "down on a download", url: down.URL + "down?off=0", origin: "page"},
		{name: "manifest on an upload", url: up.URL + "manifest", origin: "page"},
		{name: "file on an upload", url: up.URL + "f/1", origin: "page"},
		{name: "POST without origin", method: "POST", url: up.URL + "up?off=0", body: "x"},
		{name: "down without origin", url: up.URL + "down?off=0"},
		{name: "GET up", url: up.URL + "up?off=0", origin: "page"},
		{name: "PUT file", method: "PUT", url: down.URL + "f/1", body: "x"},
		{name: "OPTIONS for a guessed token", method: "OPTIONS", url: u("/c/" + guess + "/f/1"), origin: "page"},
		{name: "OPTIONS for another method", method: "OPTIONS", url: down.URL + "f/1", origin: "page"},
		{name: "OPTIONS without origin", method: "OPTIONS", url: down.URL + "f/1"},
		{name: "root", url: u("/")},
		{name: "capability root", url: u("/c/")},
		{name: "listing", url: down.URL},
		{name: "no slash", url: u("/c/" + token)},
		{name: "dot dot", url: down.URL + "../"},
		{name: "dot dot file", url: down.URL + "f/../manifest"},
		{name: "folder entry", url: down.URL + "f/0"},
		{name: "past the end", url: down.URL + "f/99"},
		{name: "leading zero", url: down.URL + "f/01"},
		{name: "negative", url: down.URL + "f/-1"},
		{name: "sub path", url: down.URL + "f/1/x"},
		{name: "zip slash", url: down.URL + "zip/"},
		{name: "escaped name", url: down.URL + "%66/1"},
		{name: "unknown", url: down.URL + "index.html"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.method == "" {
				c.method = "GET"
			}
			if c.c == nil {
				c.c = hc
			}
			var body *strings.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			r := req(t, c.method, c.url, nil, false)
			if body != nil {
				r = req(t, c.method, c.url, body, false)
			}
			switch c.origin {
			case "page":
				r.Header.Set("Origin", origin)
			case "":
			default:
				r.Header.Set("Origin", c.origin)
			}
			if c.host != "" {
				r.Host = c.host
			}
			if c.method == "OPTIONS" {
				r.Header.Set("Access-Control-Request-Method", "DELETE")
				if c.name != "OPTIONS for another method" {
					r.Header.Set("Access-Control-Request-Method", "GET")
				}
			}
			st, h, b := do(t, c.c, r)
			refused(t, c.name, st, h, b)
		})
	}
}

func TestPreflight(t *testing.T) {
	_, down, up, _ := shareFixture(t, Config{})
	hc := client(t, peer)
	for _, c := range []struct{ url, method string }{{down.URL + "f/1", "GET"}, {up.URL + "up?off=0", "POST"}} {
		r := req(t, "OPTIONS", c.url, nil, true)
		r.Header.Set("Access-Control-Request-Method", c.method)
		r.Header.Set("Access-Control-Request-Headers", "content-type")
		st, h, b := do(t, hc, r)
		if st != http.StatusNoContent || len(b) != 0 || h.Get("Access-Control-Allow-Origin") != origin || h.Get("Access-Control-Allow-Methods") != c.method {
			t.Errorf("preflight %s %s: %d %v", c.method, c.url, st, h)
		}
	}
}

func TestRevokeAndExpiry(t *testing.T) {
	s, down, up, st := shareFixture(t, Config{Idle: 300 * time.Millisecond})
	hc := client(t, peer)
	// A fresh download capability answers; its idle expiry is not waited for
	// here: the upload's is below.
	short := download(t, s, newSource(t, writeOne(t, "x.txt", "x")), nil)
	if code, _, _ := do(t, hc, req(t, "GET", short.URL+"f/0", nil, false)); code != 200 {
		t.Fatalf("before revoke: %d", code)
	}
	short.Revoke()
	select {
	case <-short.Done():
	default:
		t.Error("Done not closed by Revoke")
	}
	code, h, b := do(t, hc, req(t, "GET", short.URL+"f/0", nil, false))
	refused(t, "after revoke", code, h, b)

	// Unused for Idle: both expire; the stream says why.
	for _, c := range []*Capability{down, up} {
		select {
		case <-c.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s capability did not expire", c.Purpose())
		}
	}
	code, h, b = do(t, hc, req(t, "GET", down.URL+"f/1", nil, false))
	refused(t, "after expiry", code, h, b)
	code, h, b = do(t, hc, req(t, "POST", up.URL+"up?off=0", strings.NewReader("x"), true))
	refused(t, "upload after expiry", code, h, b)
	if _, err := st.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "sent nothing for 300ms") {
		t.Errorf("Read after idle expiry: %v, want the idle error", err)
	}
	if _, err := st.Write([]byte("x")); err == nil {
		t.Error("Write after expiry: no error")
	}
}

func writeOne(t *testing.T, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files{name: []byte(content)})
	return filepath.Join(dir, name)
}

func TestUploadBodyTooBig(t *testing.T) {
	_, _, up, st := shareFixture(t, Config{MaxBody: 1 << 10})
	hc := client(t, peer)
	big := bytes.Repeat([]byte("x"), 2<<10)
	code, h, b := do(t, hc, req(t, "POST", up.URL+"up?off=0", bytes.NewReader(big), true))
	if code != http.StatusRequestEntityTooLarge || len(b) != 0 || h.Get(HeaderHave) != "0" {
		t.Errorf("a body over MaxBody: %d, %d bytes, have %q; want an empty 413 with nothing taken", code, len(b), h.Get(HeaderHave))
	}
	// A body of unknown length is cut at MaxBody: what came before is kept.
	r := req(t, "POST", up.URL+"up?off=0", struct{ *bytes.Reader }{bytes.NewReader(big)}, true)
	code, h, _ = do(t, hc, r)
	if code != http.StatusRequestEntityTooLarge || h.Get(HeaderHave) != strconv.Itoa(1<<10) {
		t.Errorf("a chunked body over MaxBody: %d, have %q; want 413 with %d taken", code, h.Get(HeaderHave), 1<<10)
	}
	// A gap past the window: 409 at once, saying what the CLI has.
	past := strconv.Itoa(1<<10 + maxAhead + 1)
	code, h, _ = do(t, hc, req(t, "POST", up.URL+"up?off="+past, strings.NewReader("x"), true))
	if code != http.StatusConflict || h.Get(HeaderHave) != strconv.Itoa(1<<10) {
		t.Errorf("a gap: %d, have %q; want 409 with %d", code, h.Get(HeaderHave), 1<<10)
	}
	got := make([]byte, 4<<10)
	n, err := st.Read(got)
	if err != nil || n != 1<<10 {
		t.Errorf("Read: %d bytes, %v; want %d", n, err, 1<<10)
	}
}

func TestGrantChecks(t *testing.T) {
	s := newServer(t, Config{})
	src := newSource(t, writeOne(t, "x.txt", "x"))
	for _, g := range []Grant{
		{Local: local, Peer: peer, Origin: "http://10.0.0.1:7300/"},
		{Local: local, Peer: peer, Origin: "http://u@10.0.0.1"},
		{Local: local, Peer: peer, Origin: "file://x"},
		{Local: local, Peer: peer, Origin: "null"},
		{Local: local, Origin: origin},
		{Peer: peer, Origin: origin},
	} {
		if c, err := s.Download(t.Context(), g, src, nil); err == nil {
			t.Errorf("Download with %+v: %s, want an error", g, c.URL)
		}
	}
	s.Close()
	if _, err := s.Download(t.Context(), grant(), src, nil); err == nil {
		t.Error("Download after Close: no error")
	}
}

func TestMaxAge(t *testing.T) {
	s := newServer(t, Config{MaxAge: 300 * time.Millisecond})
	c, st, err := s.Upload(t.Context(), grant())
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(c.Expires) > 300*time.Millisecond {
		t.Errorf("Expires in %v, want at most MaxAge", time.Until(c.Expires))
	}
	hc := client(t, peer)
	// Kept busy (a POST now and then), it still ends at MaxAge.
	deadline := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case <-c.Done():
			done = true
		case <-time.After(20 * time.Millisecond):
			do(t, hc, req(t, "POST", c.URL+"up?off=0", nil, true))
		case <-deadline:
			t.Fatal("not ended after MaxAge")
		}
	}
	if _, err := st.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Read after MaxAge: %v, want it to say the access expired", err)
	}
}
