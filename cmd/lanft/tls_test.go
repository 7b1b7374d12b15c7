package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
)

// writeCA makes a CA and a certificate it signs for 127.0.0.1 (or ips),
// and writes ca.pem, cert.pem and key.pem into dir.
func writeCA(t *testing.T, dir string, ips ...net.IP) (ca, cert, key string) {
	if len(ips) == 0 {
		ips = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lanft test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: ips, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(leafKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "EC PRIVATE KEY", keyDER)
}

// `lanft signal --tls-cert --tls-key` serves wss://; share and receive
// verify its certificate against the CA in SSL_CERT_FILE, and a client
// that does not trust that CA refuses to connect.
func TestWSSWithATrustedCA(t *testing.T) {
	ca, cert, key := writeCA(t, t.TempDir())
	sig := start(t, "signal", "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--new-room")
	sig.WaitLine(t, "wss://", 10*time.Second)
	url := strings.TrimSpace(sig.WaitLine(t, "wss://", 10*time.Second).Text)

	env := func(args ...string) []string {
		return append([]string{"env", "SSL_CERT_FILE=" + ca, lanftBin, "--config-dir", t.TempDir()}, args...)
	}
	src := filepath.Join(t.TempDir(), "secure.txt")
	os.WriteFile(src, []byte("over wss"), 0o644)
	share := lanfttest.Start(t, env("share", "--signal", url, "--interface", "lo", "--name", "tls-share", "--json", src)...)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	out := t.TempDir()
	_, stderr, code := lanfttest.Run(t, time.Minute, env("receive", "--signal", url, "--interface", "lo", "--from", "tls-share", "--yes", "--out", out)...)
	if code != 0 {
		t.Fatalf("receive over wss exited %d: %s", code, stderr)
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "secure.txt"))

	// Without the CA: a one-line error about the certificate.
	_, stderr, code = lanfttest.Run(t, time.Minute, "env", "SSL_CERT_FILE="+cert+".none", lanftBin, "--config-dir", t.TempDir(),
		"receive", "--signal", url, "--interface", "lo", "--yes", "--out", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "certificate") {
		t.Fatalf("receive without trusting the CA: exit %d, stderr %q; want a certificate error", code, stderr)
	}
}
