package host

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/relay"
	"github.com/lanft/lanft/signal"
)

// selfSigned is a certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// A host with a certificate serves wss:// and its page over TLS, and the
// TCP relay on the same port: as an upgrade over TLS at signal.RelayPath
// (what a wss:// ticket names) and as a plain connection beneath TLS. Two
// clients that ask for each other get a pair, are spliced (one each way
// in), and the relay shows on /metrics.
func TestRelayOnTheTLSPort(t *testing.T) {
	ln := listenLoop(t)
	h, err := New(Config{Listener: ln, Ops: true, Relay: &relay.Config{},
		TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	runHost(t, h)
	addr := ln.Addr().String()
	insecure := &tls.Config{InsecureSkipVerify: true}
	https := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: insecure, DisableKeepAlives: true}}
	resp, err := https.Get("https://" + addr + signal.HealthPath)
	if err != nil {
		t.Fatalf("health over TLS: %v", err)
	}
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	login := func(name string) *signal.Client {
		c, err := signal.Dial(ctx, signal.ClientConfig{URL: "wss://" + addr + signal.Path, Name: name, TLS: insecure})
		if err != nil {
			t.Fatalf("log in as %s: %v", name, err)
		}
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); c.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-done; c.Close() })
		return c
	}
	alice, bob := login("alice"), login("bob")
	var ta, tb signal.RelayTicket
	var ea, eb error
	var wg sync.WaitGroup
	wg.Go(func() { ta, ea = alice.Relay(ctx, "bob") })
	wg.Go(func() { tb, eb = bob.Relay(ctx, "alice") })
	wg.Wait()
	if ea != nil || eb != nil {
		t.Fatalf("relay tokens: %v, %v", ea, eb)
	}
	if ta.Addr != addr || ta.LAN || ta.URL != "wss://"+addr+signal.RelayPath {
		t.Fatalf("ticket %+v, want the signaling address %s and its wss relay URL, not a LAN relay", ta, addr)
	}
	var ca, cb net.Conn
	wg.Go(func() { ca, ea = relay.DialURL(ctx, ta.URL, ta.TLS, relay.Token(ta.Token)) })
	wg.Go(func() { cb, eb = relay.Dial(ctx, tb.Addr, relay.Token(tb.Token)) })
	wg.Wait()
	if ea != nil || eb != nil {
		t.Fatalf("relay dial: %v, %v", ea, eb)
	}
	defer ca.Close()
	defer cb.Close()
	go func() { io.WriteString(ca, "through the relay"); ca.(interface{ CloseWrite() error }).CloseWrite() }()
	if got, _ := io.ReadAll(cb); string(got) != "through the relay" {
		t.Fatalf("got %q through the relay", got)
	}
	// The counters follow the last write: read them until they settle.
	want := []string{"lanft_tcp_relays_total 1\n", "lanft_tcp_relay_bytes_total 17\n", `lanft_tcp_relay_refused_total{reason="unknown"} 0`}
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err = https.Get("https://" + addr + signal.MetricsPath)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		missing := ""
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				missing = w
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The upgrade path answers anything but an upgrade with 426, and its
// connections are refused without a token like any other.
func TestRelayUpgradeRefuses(t *testing.T) {
	ln := listenLoop(t)
	h, err := New(Config{Listener: ln, Relay: &relay.Config{HandshakeTimeout: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	runHost(t, h)
	addr := ln.Addr().String()
	if code, body, _ := fetch(t, "http://"+addr+signal.RelayPath); code != http.StatusUpgradeRequired || !strings.Contains(body, "relay") {
		t.Fatalf("GET %s: %d %q, want 426 saying it is the relay", signal.RelayPath, code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var forged relay.Token
	if _, err := relay.DialURL(ctx, "ws://"+addr+signal.RelayPath, nil, forged); !errors.Is(err, relay.ErrRefused) {
		t.Fatalf("a forged token through the upgrade: %v, want ErrRefused", err)
	}
}
