package pagehttp

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanft/lanft/transfer"
)

// Loopback addresses: the server listens on local; the page is peer; a
// neighbour is other. Linux routes all of 127/8 to lo.
var (
	local = netip.MustParseAddr("127.0.0.1")
	peer  = netip.MustParseAddr("127.0.0.2")
	other = netip.MustParseAddr("127.0.0.3")
)

const origin = "http://127.0.0.9:7300"

func grant() Grant { return Grant{Local: local, Peer: peer, Origin: origin} }

// newServer returns a Server closed when the test ends.
func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s := New(cfg)
	t.Cleanup(func() { s.Close() })
	return s
}

// client returns an HTTP client whose connections come from addr.
func client(t *testing.T, addr netip.Addr) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: addr.AsSlice()}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// req builds a request; the page's fetch sends its Origin.
func req(t *testing.T, method, url string, body io.Reader, withOrigin bool) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if withOrigin {
		r.Header.Set("Origin", origin)
	}
	return r
}

// do sends r and returns the status, headers and whole body.
func do(t *testing.T, c *http.Client, r *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := c.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.Method, r.URL, err)
	}
	return resp.StatusCode, resp.Header, b
}

// randomFile writes size pseudo-random bytes at p.
func randomFile(t testing.TB, p string, size int64, seed uint64) []byte {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	rng.Read(b)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func newSource(t testing.TB, paths ...string) *transfer.Source {
	t.Helper()
	src, err := transfer.NewSource(context.Background(), paths, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func same(a, b []byte) bool { return bytes.Equal(a, b) }

// download grants src on s with grant(), reporting to report, and fails
// the test if s refuses.
func download(t *testing.T, s *Server, src *transfer.Source, report func(DownloadProgress)) *Capability {
	t.Helper()
	c, err := s.Download(t.Context(), grant(), src, report)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
