package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
)

// metricsGet fetches url with the given header and returns the status.
func metricsGet(t *testing.T, url string, header ...string) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 && strings.HasSuffix(url, "/metrics") && !strings.Contains(string(body), "lanft_signal_clients") {
		t.Errorf("GET %s: 200 without the metrics:\n%s", url, body)
	}
	return resp.StatusCode
}

// httpBase turns the printed ws://HOST:PORT/ws into http://HOST:PORT.
func httpBase(ws string) string {
	return "http://" + strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(ws), "ws://"), "/ws")
}

// `lanft signal`'s /metrics: loopback only by default, the token with
// --metrics-token (or LANFT_METRICS_TOKEN), and only on its own address
// with --metrics-listen.
func TestSignalMetricsAccess(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		base := httpBase(startSignal(t))
		if got := metricsGet(t, base+"/metrics"); got != 200 {
			t.Errorf("from loopback: %d, want 200", got)
		}
		if got := metricsGet(t, base+"/metrics", "X-Forwarded-For", "203.0.113.9"); got != 403 {
			t.Errorf("forwarded by a proxy: %d, want 403", got)
		}
	})
	t.Run("token", func(t *testing.T) {
		p := lanfttest.Start(t, "env", "LANFT_METRICS_TOKEN=tok-123", lanftBin, "--config-dir", t.TempDir(),
			"signal", "--listen", "127.0.0.1:0")
		base := httpBase(p.WaitLine(t, "ws://", 10*time.Second).Text)
		if got := metricsGet(t, base+"/metrics"); got != 401 {
			t.Errorf("without the token: %d, want 401", got)
		}
		if got := metricsGet(t, base+"/metrics", "Authorization", "Bearer tok-123"); got != 200 {
			t.Errorf("with the token: %d, want 200", got)
		}
	})
	t.Run("own listener", func(t *testing.T) {
		p := start(t, "signal", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
		base := httpBase(p.WaitLine(t, "ws://", 10*time.Second).Text)
		murl := strings.TrimSpace(p.WaitLine(t, "/metrics", 10*time.Second).Text)
		if got := metricsGet(t, murl); got != 200 {
			t.Errorf("on --metrics-listen: %d, want 200", got)
		}
		if got := metricsGet(t, base+"/metrics"); got != 404 {
			t.Errorf("on --listen beside --metrics-listen: %d, want 404", got)
		}
		if got := metricsGet(t, base+"/healthz"); got != 200 {
			t.Errorf("healthz on --listen: %d, want 200", got)
		}
	})
}
