package signal

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"
)

// Who may read the metrics (one place for the decision):
//   - with Config.MetricsToken, whoever sends it as a bearer token, on any
//     listener;
//   - without one, on Handler (the public port) only a request from a
//     loopback address that carries no proxy header: a reverse proxy on
//     the same host connects from loopback too, for anyone;
//   - without one, on MetricsHandler (a listener the operator bound for
//     it, such as 127.0.0.1:9090) anyone who reaches it.

// serveMetrics is /metrics on Handler.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metricsAllowed(w, r, true) {
		s.writeMetrics(w)
	}
}

// MetricsHandler serves the metrics on a listener of their own (lanft
// signal --metrics-listen): only the token, if one is set, is asked for.
func (s *Server) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.metricsAllowed(w, r, false) {
			s.writeMetrics(w)
		}
	})
}

// metricsAllowed answers a request that may not read the metrics (401 or
// 403, with what to do) and reports whether it may.
func (s *Server) metricsAllowed(w http.ResponseWriter, r *http.Request, public bool) bool {
	if tok := s.cfg.MetricsToken; tok != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// Compared as hashes: in constant time whatever the lengths.
		a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(tok))
		if ok && subtle.ConstantTimeCompare(a[:], b[:]) == 1 {
			return true
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="lanft metrics"`)
		http.Error(w, "signal: /metrics needs the metrics token: send Authorization: Bearer TOKEN", http.StatusUnauthorized)
		return false
	}
	if !public || directFromLoopback(r) {
		return true
	}
	http.Error(w, "signal: /metrics answers only local requests here: "+
		"set a metrics token (--metrics-token) or a metrics listener (--metrics-listen)", http.StatusForbidden)
	return false
}

// directFromLoopback reports whether r comes from a loopback address and
// was not forwarded by a proxy.
func directFromLoopback(r *http.Request) bool {
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}
