package main

import (
	"bufio"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/netns"
)

// Two symmetric NATs: no hole punching. The data channel that verifies
// the peers goes through TURN, and the bytes through the host's TCP relay,
// with TLS 1.3 end to end; the relay's counters show they went there.
func TestNATSymmetricUsesTheTCPRelay(t *testing.T) {
	inet := netns.NewInternet(t, netns.SymmetricNAT, netns.SymmetricNAT)
	url := startInternetSignal(t, inet, "--metrics-token", "relaytest")
	const size = 16 << 20
	path, took := transferAcross(t, inet, url, size)
	if path != "tcp-relay" {
		t.Fatalf("path %q, want tcp-relay", path)
	}
	m := serverMetrics(t, inet, url, "relaytest")
	if m["lanft_tcp_relays_total"] != 1 || m["lanft_tcp_relay_bytes_total"] < size {
		t.Fatalf("relay metrics %v, want one relay that moved at least %d bytes", m, size)
	}
	t.Logf("%d MiB over the TCP relay between two symmetric NATs: %.1f MB/s (unshaped veths)", size>>20, float64(size)/took.Seconds()/1e6)
}

// serverMetrics reads the signaling host's /metrics from inside its
// namespace, with its bearer token: the plain lines, by name.
func serverMetrics(t *testing.T, inet *netns.Internet, wsURL, token string) map[string]float64 {
	t.Helper()
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	var conn net.Conn
	// The connection is made inside the namespace (on this thread).
	if err := netns.DoIn(inet.Server(), func() (err error) { conn, err = net.Dial("tcp", u.Host); return err }); err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	err = func() error {
		req, _ := http.NewRequest("GET", "http://"+u.Host+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Close = true
		if err := req.Write(conn); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
				v, _ := strconv.ParseFloat(f[1], 64)
				out[f[0]] = v
			}
		}
		return sc.Err()
	}()
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return out
}
