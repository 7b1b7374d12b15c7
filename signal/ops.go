package signal

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// HealthPath and MetricsPath are the operator's endpoints beside Path.
const (
	HealthPath  = "/healthz"
	MetricsPath = "/metrics"
)

// Draining is the error text clients get when their node stops: they log in
// again, on another node behind the same name.
const Draining = "this signaling node is shutting down: log in again"

// Drain refuses new connections and tells every client to log in again
// elsewhere, then closes them (their names are freed first, see drop).
func (s *Server) Drain() {
	for _, c := range s.stop(&s.draining) {
		c.sendError(CodeShuttingDown, Draining)
		c.close()
	}
}

// serveHealth answers 200 "ok" while this node serves logins, else 503
// with the reason: draining, or not (yet) part of the cluster.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	s.mu.Lock()
	draining, closed := s.draining, s.closed
	s.mu.Unlock()
	switch {
	case draining || closed:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "draining")
	case s.cfg.Ready != nil && !s.cfg.Ready():
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not serving: not part of the cluster")
	default:
		fmt.Fprintln(w, "ok")
	}
}

// writeMetrics writes the server's figures in the Prometheus text format,
// then Config.Metrics' own (the cluster's).
func (s *Server) writeMetrics(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.mu.Lock()
	clients, users, remote := len(s.conns), 0, 0
	for _, rm := range s.rooms.rooms {
		for _, m := range rm.order {
			if _, ok := m.(*remoteUser); ok {
				remote++
			} else {
				users++
			}
		}
	}
	rooms := len(s.rooms.rooms)
	perSec := s.relayRate.perSecond(time.Now().Unix())
	s.mu.Unlock()
	Metric(w, "lanft_signal_clients", "gauge", "open WebSocket connections to this node", float64(clients))
	Metric(w, "lanft_signal_users", "gauge", "users logged in to this node", float64(users))
	Metric(w, "lanft_signal_remote_users", "gauge", "users of the same rooms logged in to other nodes", float64(remote))
	Metric(w, "lanft_signal_rooms", "gauge", "rooms with a user, as this node sees them", float64(rooms))
	Metric(w, "lanft_signal_relays_total", "counter", "offers, answers, candidates and leaves relayed from this node's clients (rate() is relays per second)", float64(s.relays.Load()))
	Metric(w, "lanft_signal_relays_per_second", "gauge", "relays from this node's clients per second, over the last 10 full seconds", perSec)
	Metric(w, "lanft_signal_errors_total", "counter", "error messages sent to clients", float64(s.errorsSent.Load()))
	if s.cfg.Metrics != nil {
		s.cfg.Metrics(w)
	}
}

// rateWindow counts events in the last few whole seconds.
type rateWindow struct {
	counts [11]uint64 // by second modulo 11: ten full seconds and the current one
	last   int64      // the second of the latest count
}

// advance zeroes the seconds between the last count and now.
func (r *rateWindow) advance(now int64) {
	for s := max(r.last+1, now-int64(len(r.counts))+1); s <= now; s++ {
		r.counts[s%int64(len(r.counts))] = 0
	}
	r.last = max(r.last, now)
}

func (r *rateWindow) add(now int64) {
	r.advance(now)
	r.counts[now%int64(len(r.counts))]++
}

// perSecond is the mean over the ten full seconds before now.
func (r *rateWindow) perSecond(now int64) float64 {
	r.advance(now)
	var sum uint64
	for i, c := range r.counts {
		if int64(i) != now%int64(len(r.counts)) {
			sum += c
		}
	}
	return float64(sum) / float64(len(r.counts)-1)
}

// Metric writes one sample with its HELP and TYPE lines.
func Metric(w io.Writer, name, kind, help string, v float64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", name, help, name, kind, name, v)
}
