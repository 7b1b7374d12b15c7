package signal

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Without a token, /metrics on the public handler answers loopback only,
// and not what a proxy on loopback forwards; a token opens it to whoever
// sends it, on every handler; MetricsHandler (a listener of its own)
// needs nothing but the token when one is set.
func TestMetricsAccess(t *testing.T) {
	open, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	locked, err := NewServer(Config{MetricsToken: "s3cret-token"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		h       http.Handler
		remote  string
		header  map[string]string
		want    int
		wantSay string
	}{
		{"loopback", open.Handler(), "127.0.0.1:40000", nil, 200, "lanft_signal_clients 0"},
		{"loopback IPv6", open.Handler(), "[::1]:40000", nil, 200, "lanft_signal_clients 0"},
		{"LAN address", open.Handler(), "192.168.1.20:40000", nil, 403, "--metrics-token"},
		{"public address", open.Handler(), "203.0.113.9:40000", nil, 403, "--metrics-listen"},
		{"forwarded by a local proxy", open.Handler(), "127.0.0.1:40000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, 403, "local requests"},
		{"Forwarded header", open.Handler(), "127.0.0.1:40000", map[string]string{"Forwarded": "for=203.0.113.9"}, 403, "local requests"},
		{"own listener, any address", open.MetricsHandler(), "203.0.113.9:40000", nil, 200, "lanft_signal_users 0"},
		{"token missing, even on loopback", locked.Handler(), "127.0.0.1:40000", nil, 401, "Bearer"},
		{"token wrong", locked.Handler(), "203.0.113.9:40000", map[string]string{"Authorization": "Bearer s3cret-tokeN"}, 401, "metrics token"},
		{"token as basic auth", locked.Handler(), "203.0.113.9:40000", map[string]string{"Authorization": "Basic czNjcmV0LXRva2Vu"}, 401, "metrics token"},
		{"token right, any address", locked.Handler(), "203.0.113.9:40000", map[string]string{"Authorization": "Bearer s3cret-token"}, 200, "lanft_signal_rooms 0"},
		{"token on its own listener", locked.MetricsHandler(), "127.0.0.1:40000", nil, 401, "metrics token"},
		{"token right on its own listener", locked.MetricsHandler(), "10.0.0.9:40000", map[string]string{"Authorization": "Bearer s3cret-token"}, 200, "lanft_signal_clients 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", MetricsPath, nil)
			r.RemoteAddr = tc.remote
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, r)
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.wantSay) {
				t.Errorf("got %d %q, want %d with %q", w.Code, w.Body.String(), tc.want, tc.wantSay)
			}
		})
	}
	// Health stays open: load balancers poll it from anywhere.
	r := httptest.NewRequest("GET", HealthPath, nil)
	r.RemoteAddr = "203.0.113.9:40000"
	w := httptest.NewRecorder()
	locked.Handler().ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("healthz from afar: %d, want 200", w.Code)
	}
}

// Over a real socket from loopback (httptest's server), the metrics answer
// without a token.
func TestMetricsOverLoopback(t *testing.T) {
	ts := startServer(t, Config{})
	resp, err := ts.http.Client().Get(ts.http.URL + MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /metrics from loopback: %s, want 200", resp.Status)
	}
}
