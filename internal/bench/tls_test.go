package bench

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"time"
)

// The TLS baseline: what any verified, encrypted transfer must at least
// do. The sender copies the file into a TLS 1.3 connection with large
// reads; the receiver writes it, hashes it with SHA-256 as it arrives,
// fsyncs and closes it.

const copyBuffer = 1 << 20

func selfSigned() (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

func tlsRecv(addr, path string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 1 }
	cert, err := selfSigned()
	if err != nil {
		return fail(err)
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		return fail(err)
	}
	fmt.Println("listening", ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		return fail(err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fail(err)
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(io.MultiWriter(f, h), struct{ io.Reader }{c}, make([]byte, copyBuffer)); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	fmt.Printf("done %x\n", h.Sum(nil))
	return 0
}

func tlsSend(addr, path string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 1 }
	f, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return fail(err)
	}
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if _, err := io.CopyBuffer(c, struct{ io.Reader }{f}, make([]byte, copyBuffer)); err != nil {
		return fail(err)
	}
	if err := c.Close(); err != nil {
		return fail(err)
	}
	return 0
}
