package pagehttp

import (
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openDown opens a GET down, which stays open, and returns its response.
func openDown(t *testing.T, hc *http.Client, c *Capability) *http.Response {
	t.Helper()
	resp, err := hc.Do(req(t, "GET", c.URL+"down?off=0", nil, true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestRequestBounds(t *testing.T) {
	s := newServer(t, Config{})
	hc := client(t, peer)
	var caps []*Capability
	for range 3 {
		c, _, err := s.Upload(t.Context(), grant())
		if err != nil {
			t.Fatal(err)
		}
		caps = append(caps, c)
	}
	for range MaxRequestsPerCapability {
		if resp := openDown(t, hc, caps[0]); resp.StatusCode != 200 {
			t.Fatalf("GET down within the bound: %d", resp.StatusCode)
		}
	}
	if resp := openDown(t, hc, caps[0]); resp.StatusCode != http.StatusNotFound {
		t.Errorf("request %d on one capability: %d, want 404", MaxRequestsPerCapability+1, resp.StatusCode)
	}
	for range MaxRequestsPerAddress - MaxRequestsPerCapability {
		if resp := openDown(t, hc, caps[1]); resp.StatusCode != 200 {
			t.Fatalf("GET down within the address's bound: %d", resp.StatusCode)
		}
	}
	if resp := openDown(t, hc, caps[2]); resp.StatusCode != http.StatusNotFound {
		t.Errorf("request %d from one address: %d, want 404", MaxRequestsPerAddress+1, resp.StatusCode)
	}
}

func TestCapabilityBound(t *testing.T) {
	s := newServer(t, Config{})
	for range MaxCapabilities {
		if _, _, err := s.Upload(t.Context(), grant()); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Upload(t.Context(), grant()); !errors.Is(err, ErrTooMany) {
		t.Errorf("capability %d: %v, want ErrTooMany", MaxCapabilities+1, err)
	}
}

// TestDownloadKeepsAlive: a download slower than Idle is not cut, and the
// capability expires once it is over.
func TestDownloadKeepsAlive(t *testing.T) {
	dir := t.TempDir()
	want := randomFile(t, filepath.Join(dir, "big.bin"), 32<<20, 8)
	const idle = 200 * time.Millisecond
	s := newServer(t, Config{Idle: idle})
	c := download(t, s, newSource(t, filepath.Join(dir, "big.bin")), nil)
	resp, err := client(t, peer).Do(req(t, "GET", c.URL+"f/0", nil, false))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
		t.Fatal("the capability expired during a download")
	case <-time.After(5 * idle): // the property under test: time passing
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !same(append(got, rest...), want) {
		t.Fatalf("a slow download: %d bytes, %v; want the file", len(got)+len(rest), err)
	}
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the capability did not expire after the download")
	}
}

func TestServerClose(t *testing.T) {
	dir := t.TempDir()
	randomFile(t, filepath.Join(dir, "big.bin"), 32<<20, 9)
	s := New(Config{})
	c := download(t, s, newSource(t, filepath.Join(dir, "big.bin")), nil)
	up, st, err := s.Upload(t.Context(), grant())
	if err != nil {
		t.Fatal(err)
	}
	hc := client(t, peer)
	resp, err := hc.Do(req(t, "GET", c.URL+"f/0", nil, false))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	down := openDown(t, hc, up)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err == nil {
		t.Error("a download went on after Close")
	}
	if _, err := io.Copy(io.Discard, down.Body); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Logf("GET down at Close: %v", err)
	}
	if _, err := st.Read(make([]byte, 1)); err == nil {
		t.Error("Read after Close: no error")
	}
	for _, c := range []*Capability{c, up} {
		select {
		case <-c.Done():
		default:
			t.Error("a capability lives on after Close")
		}
	}
	s.Close()
}

// TestEndCutsDownloads: a download in flight stops when its capability is
// revoked, or reaches MaxAge.
func TestEndCutsDownloads(t *testing.T) {
	dir := t.TempDir()
	randomFile(t, filepath.Join(dir, "big.bin"), 32<<20, 10)
	src := newSource(t, filepath.Join(dir, "big.bin"))
	for _, c := range []struct {
		name string
		cfg  Config
		end  func(*Capability)
	}{
		{"revoked", Config{}, (*Capability).Revoke},
		{"MaxAge", Config{MaxAge: 300 * time.Millisecond}, func(*Capability) {}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, c.cfg)
			ev := make(events, 64)
			cp := download(t, s, src, ev.report)
			for _, name := range []string{"f/0", "zip"} {
				resp, err := client(t, peer).Do(req(t, "GET", cp.URL+name, nil, false))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				defer resp.Body.Close()
				if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
					t.Fatal(err)
				}
			}
			c.end(cp)
			select {
			case <-cp.Done():
			case <-time.After(10 * time.Second): // well before the client's own timeout
				t.Fatal("the capability did not end")
			}
			for file, p := range ev.waitEnds(t, 0, -1) {
				if p.Complete() || p.Err == nil {
					t.Errorf("file %d after the end: %+v, want cut", file, p)
				}
			}
		})
	}
}

func TestConnBound(t *testing.T) {
	s := newServer(t, Config{})
	c, _, err := s.Upload(t.Context(), grant())
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(strings.Split(c.URL, "/c/")[0], "http://")
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: peer.AsSlice()}}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range MaxConnsPerAddress + 1 {
		conn, err := d.DialContext(t.Context(), "tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	// The server takes connections in order; the last one is closed unread.
	last := conns[len(conns)-1]
	last.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := last.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("connection %d from one address: read %d, %v; want it closed", len(conns), n, err)
	}
	// One closed makes room again.
	conns[0].Close()
	hc := client(t, peer)
	for deadline := time.Now().Add(10 * time.Second); ; {
		// Until the server has seen that close, a new connection is refused.
		resp, err := hc.Do(req(t, "GET", c.URL+"hello", nil, true))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("hello: %d", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a connection closed: %v", err)
		}
	}
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "reset") }
