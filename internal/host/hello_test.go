package host

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lanft/lanft/discovery"
)

func TestHelloHandler(t *testing.T) {
	want := discovery.Hello{TXT: []string{"v=1", "id=abc"}}
	h := helloHandler(func() discovery.Hello { return want })
	tests := []struct {
		name, method, host, path string
		code                     int
	}{
		{"by IPv4 address", http.MethodGet, "10.0.0.5:7781", discovery.HelloPath, http.StatusOK},
		{"by IPv6 address", http.MethodGet, "[fd00::5]:7781", discovery.HelloPath, http.StatusOK},
		{"by name (DNS rebinding)", http.MethodGet, "evil.example:7781", discovery.HelloPath, http.StatusForbidden},
		{"not GET", http.MethodPost, "10.0.0.5:7781", discovery.HelloPath, http.StatusMethodNotAllowed},
		{"another path", http.MethodGet, "10.0.0.5:7781", "/lanft/hello/x", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://x"+tt.path, nil)
			r.Host = tt.host
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.code {
				t.Fatalf("got %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if tt.code != http.StatusOK {
				return
			}
			got, err := discovery.ParseHello(w.Body.Bytes())
			if err != nil || len(got.TXT) != 2 || got.TXT[1] != "id=abc" {
				t.Errorf("got %+v, %v; want %+v", got, err, want)
			}
		})
	}
	empty := helloHandler(func() discovery.Hello { return discovery.Hello{} })
	r := httptest.NewRequest(http.MethodGet, "http://10.0.0.5"+discovery.HelloPath, nil)
	w := httptest.NewRecorder()
	empty.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("before discovery runs: got %d, want 503", w.Code)
	}
}
