package signal

import (
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"strings"
	"testing"
)

// wss:// works with a certificate the client trusts, and the client
// refuses one it does not.
func TestClientVerifiesTheCertificate(t *testing.T) {
	checkNoLeaks(t)
	srv, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(func() { srv.Close() })
	url := "wss://" + strings.TrimPrefix(hs.URL, "https://") + Path + "/tls"

	pool := x509.NewCertPool()
	pool.AddCert(hs.Certificate())
	c, _, _ := startClient(t, ClientConfig{URL: url, Name: "alice", TLS: &tls.Config{RootCAs: pool}})
	if got := srv.RoomUsers("tls"); len(got) != 1 || got[0] != c.Name() {
		t.Fatalf("users of room tls: %q, want alice", got)
	}

	_, err = Dial(t.Context(), ClientConfig{URL: url, Name: "mallory"})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("dial with an untrusted certificate: %v, want a certificate error", err)
	}
}
