// Package host is lanft's signaling host, assembled in one place: the
// signal server, the browser page (web) in front of it with its bridge,
// the operator's endpoints (/healthz, /metrics), and what may run beside
// it, a STUN/TURN relay (internal/turn) and a cluster node
// (internal/cluster). `lanft signal` runs a Host on the listener it was
// given; every LAN instance runs one (LAN) on listeners that follow the
// LAN's addresses, with discovery electing which instance the others log
// in to.
//
//	listener(s) ──▶ mux ── /healthz, /metrics ─▶ signal.Server (Ops only)
//	                 └──── /, /ws ─────────────▶ web page ── WebSocket ─▶ signal.Server
//	                                                └── bridge (LAN) ─▶ elected host
//	beside it: turn.Server (TURN), cluster.Cluster (Cluster), discovery (LAN)
//
// The peer client (internal/node) does not import this package: a LAN is
// one of its node.Hosts, handed to it by cmd/lanft.
package host

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lanft/lanft/discovery"
	"github.com/lanft/lanft/internal/cluster"
	"github.com/lanft/lanft/internal/relay"
	"github.com/lanft/lanft/internal/turn"
	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/web"
)

// Config is what a Host is made of. The host takes over the listeners and
// TURN's sockets: Run and Close close them, and so does New when it fails.
type Config struct {
	// Listener serves the page, the signaling WebSocket and, with Ops,
	// the operator's endpoints. Required.
	Listener net.Listener
	// Signal configures the signaling server. New sets its Logger (when
	// nil) and, with TURN or Cluster, what those provide (ICE; Cluster,
	// Ready and Metrics).
	Signal signal.Config
	// Upstream, when set, is where a browser's WebSocket is bridged (the
	// LAN's elected host); nil: it is this host's signaling server's.
	Upstream web.Upstream
	// Ops serves the operator's endpoints beside the page on Listener:
	// /healthz, and /metrics unless MetricsListener is set (signal's
	// access rules apply: loopback or a bearer token). A LAN instance
	// serves neither.
	Ops bool
	// MetricsListener, when set, serves /metrics and /healthz on an
	// address of their own (then /metrics is not on Listener).
	MetricsListener net.Listener
	// TURN, when set, is this host's own STUN/TURN relay, run beside it:
	// New points its Directory at the signaling server and makes it the
	// server's ICE provider (so Signal.ICE must be nil).
	TURN *turn.Config
	// Cluster, when set, makes this host one node of a service: the
	// server's names, relays, health and metrics go through it, and Run
	// runs it. The caller connects it and closes its connection after
	// Run returns.
	Cluster *cluster.Cluster
	// Relay, when set, runs a TCP relay for lanft peers (internal/relay)
	// on Listener's port and hands its tokens out through the signaling
	// server (relay.go); RelayLAN says it is a LAN instance's. NoRelay,
	// when set instead, is why this host relays nothing, told to peers
	// that ask.
	Relay    *relay.Config
	RelayLAN bool
	NoRelay  string
	// RelayAddr (host:port) is where users of other nodes reach Relay, on
	// a node of a service: with it, the node relays for one of its users
	// and one of another node (signal.RelayAddresser).
	RelayAddr string
	// TLS, when set, serves Listener with TLS (wss://); the relay's
	// connections on the same port come before TLS.
	TLS *tls.Config
	// Hello, when set, answers discovery's unicast probes at
	// discovery.HelloPath on Listener (a LAN instance's; hello.go).
	Hello http.Handler
	// Dial, when set, opens the bridge's connections to the Upstream
	// (a LAN instance's stay on its interface: LAN.DialContext).
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger *slog.Logger
}

// Host is a running signaling host. New validates and assembles; Run
// serves.
type Host struct {
	cfg   Config
	srv   *signal.Server
	page  *web.Web
	relay *turn.Server  // nil without TURN
	tcp   *relay.Server // nil without a TCP relay
	ln    net.Listener  // Listener, sniffed for the relay and with TLS
	h     http.Handler  // the mux on Listener
	once  sync.Once
}

// New checks cfg and assembles the host; it serves nothing until Run.
func New(cfg Config) (*Host, error) {
	h, err := assemble(cfg)
	if err != nil {
		closeAll(cfg)
		return nil, err
	}
	return h, nil
}

func assemble(cfg Config) (*Host, error) {
	if cfg.Listener == nil {
		return nil, errors.New("host: no listener")
	}
	if cfg.MetricsListener != nil && !cfg.Ops {
		return nil, errors.New("host: a metrics listener without the operator's endpoints (Ops)")
	}
	if cfg.TURN != nil && cfg.Signal.ICE != nil {
		return nil, errors.New("host: both an own TURN relay and another ICE provider")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Signal.Logger == nil {
		cfg.Signal.Logger = cfg.Logger
	}
	h := &Host{cfg: cfg}
	if cfg.TURN != nil {
		tc := *cfg.TURN
		// The relay sends only to a room's users; the server knows them.
		tc.Directory = roomDirectory(func(room string) signal.PeerAddrs { return h.srv.RoomPeerAddrs(room) })
		if tc.Logger == nil {
			tc.Logger = cfg.Logger
		}
		relay, err := turn.New(tc)
		if err != nil {
			return nil, err
		}
		h.relay = relay
		cfg.Signal.ICE = relay
	}
	if cfg.Cluster != nil {
		wireCluster(&cfg.Signal, cfg.Cluster)
	}
	switch {
	case cfg.Relay != nil:
		rc := *cfg.Relay
		if rc.Logger == nil {
			rc.Logger = cfg.Logger
		}
		rs, err := relay.New(rc)
		if err != nil {
			return nil, err
		}
		h.tcp = rs
		cfg.Signal.Relay = relayIssuer{srv: rs, lan: cfg.RelayLAN, public: cfg.RelayAddr}
		cfg.Signal.Metrics = relayMetrics(rs, cfg.Signal.Metrics)
	case cfg.NoRelay != "":
		cfg.Signal.Relay = refusingIssuer{why: cfg.NoRelay}
	}
	h.ln = relayListener(cfg.Listener, h.tcp, cfg.TLS)
	srv, err := signal.NewServer(cfg.Signal)
	if err != nil {
		return nil, err
	}
	h.srv = srv
	// The browser page is served on the same port; its WebSocket at / or
	// /ws is the signaling server's, or bridged to the Upstream.
	page, err := web.New(web.Config{Signal: srv.Handler(), Upstream: cfg.Upstream, Admits: srv.Admits, Dial: cfg.Dial, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	h.page = page
	h.h = page
	if cfg.Ops {
		// The operator's endpoints are the server's own.
		mux := http.NewServeMux()
		mux.Handle(signal.HealthPath, srv.Handler())
		mux.Handle("/", page)
		if cfg.MetricsListener == nil {
			mux.Handle(signal.MetricsPath, srv.Handler())
		}
		h.h = mux
	}
	if cfg.Hello != nil {
		mux := http.NewServeMux()
		mux.Handle(discovery.HelloPath, cfg.Hello)
		mux.Handle("/", h.h)
		h.h = mux
	}
	if h.tcp != nil {
		h.h = relayRoutes(h.tcp, h.h)
	}
	h.cfg = cfg
	return h, nil
}

// Server is the host's signaling server.
func (h *Host) Server() *signal.Server { return h.srv }

// Run serves until ctx is cancelled or a part fails, then drains the
// signaling server (its clients are told to log in again, as on SIGTERM),
// closes every connection and listener, and returns nil on a clean
// cancel.
func (h *Host) Run(ctx context.Context) error {
	defer h.Close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return h.srv.ServeWith(ctx, h.ln, h.h) })
	if h.tcp != nil {
		g.Go(func() error { return h.tcp.Run(ctx) })
	}
	g.Go(func() error {
		// Bridged pages are hijacked connections, which the server's
		// shutdown does not wait for: end them here.
		<-ctx.Done()
		return h.page.Close()
	})
	if ln := h.cfg.MetricsListener; ln != nil {
		g.Go(func() error { return serveMetrics(ctx, ln, h.srv) })
	}
	if h.relay != nil {
		g.Go(func() error { return h.relay.Run(ctx) })
	}
	if cl := h.cfg.Cluster; cl != nil {
		g.Go(func() error { return cl.Run(ctx, h.srv.ClusterHandler()) })
	}
	return g.Wait()
}

// Close stops the host without draining: every connection and listener is
// closed. It is idempotent; Run calls it on its way out, and a host that
// never runs needs it to release what New was given.
func (h *Host) Close() error {
	h.once.Do(func() {
		h.page.Close()
		h.srv.Close()
		h.ln.Close()
		closeAll(h.cfg)
		if h.tcp != nil {
			h.tcp.Close()
		}
	})
	return nil
}

// closeAll closes the listeners and sockets cfg hands over. Closing one
// twice (after Run closed it) does no harm.
func closeAll(cfg Config) {
	for _, c := range []io.Closer{cfg.Listener, cfg.MetricsListener} {
		if c != nil {
			c.Close()
		}
	}
	if cfg.TURN != nil {
		if cfg.TURN.PacketConn != nil {
			cfg.TURN.PacketConn.Close()
		}
		if cfg.TURN.Listener != nil {
			cfg.TURN.Listener.Close()
		}
	}
}

// serveMetrics answers /metrics and /healthz on ln until ctx ends.
func serveMetrics(ctx context.Context, ln net.Listener, srv *signal.Server) error {
	mux := http.NewServeMux()
	mux.Handle(signal.MetricsPath, srv.MetricsHandler())
	mux.Handle(signal.HealthPath, srv.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("host: metrics listener: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutdownCtx)
	<-errc
	return nil
}

// roomDirectory adapts the signaling server to turn.Directory.
type roomDirectory func(room string) signal.PeerAddrs

func (d roomDirectory) RoomPeerAddrs(room string) signal.PeerAddrs { return d(room) }

// wireCluster makes cfg use the cluster: names, relays, health and metrics.
func wireCluster(cfg *signal.Config, cl *cluster.Cluster) {
	cfg.Cluster = cl
	cfg.Ready = cl.Ready
	cfg.Metrics = func(w io.Writer) {
		st := cl.Stats()
		ready := 0.0
		if cl.Ready() {
			ready = 1
		}
		signal.Metric(w, "lanft_cluster_ready", "gauge", "1 while this node holds its lease and serves logins", ready)
		signal.Metric(w, "lanft_cluster_broker_lag_seconds", "gauge", "round trip of the last lease renewal through JetStream", st.LastLag.Seconds())
		signal.Metric(w, "lanft_cluster_events_published_total", "counter", "logins, logouts, relays and heartbeats sent to other nodes", float64(st.Published))
		signal.Metric(w, "lanft_cluster_events_received_total", "counter", "events received from other nodes", float64(st.Received))
		signal.Metric(w, "lanft_cluster_events_ignored_total", "counter", "events from nodes that hold no lease (forged, or a dead node's), ignored", float64(st.Ignored))
		signal.Metric(w, "lanft_cluster_errors_total", "counter", "failed broker operations", float64(st.Errors))
		signal.Metric(w, "lanft_cluster_dead_nodes_total", "counter", "nodes this node declared dead", float64(st.DeadNodes))
	}
}
