package host

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/lanft/lanft/discovery"
)

// The hello: a LAN instance's answer to discovery's unicast probes
// (discovery/unicast.go has the wire format), served here only, by
// helloHandler: on the signaling port (so a page's URL given as --peer
// works) and on the hello port (discovery.DefaultHelloPort), which a
// subnet sweep asks. The hello port is listened on where the signaling
// port is (listen.go: the LAN's addresses and loopback, bound to their
// interfaces); when another program (or another lanft on this machine)
// holds it, this instance goes without, and is found through the one that
// has it (its answer lists the instances it sees) or over mDNS.

// helloHandler answers GET discovery.HelloPath with hello's result. The
// Host header must be an IP address (probes ask by address): a name is
// refused, so that a page of another site rebound to a LAN address (DNS
// rebinding) reads nothing.
func helloHandler(hello func() discovery.Hello) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != discovery.HelloPath {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "hello: only GET", http.StatusMethodNotAllowed)
			return
		}
		if !ipHost(r.Host) {
			http.Error(w, "hello: ask by IP address", http.StatusForbidden)
			return
		}
		h := hello()
		if len(h.TXT) == 0 {
			http.Error(w, "hello: discovery is not running yet", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_ = json.NewEncoder(w).Encode(h)
	})
}

// ipHost reports whether a Host header names an IP address (with or
// without a port).
func ipHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

// openHello listens on the hello port at want, or returns nil (logged)
// when it cannot be had there.
func openHello(want []serveAddr, port int, lns *listenSet) *listenSet {
	if err := lns.openPort(want, port); err != nil {
		lns.log.Info("node: the hello port is taken (another lanft on this machine?); this instance is found through it or over mDNS",
			"port", port, "err", err)
		return nil
	}
	return lns
}

// serveHello answers hellos on lns until ctx ends. A nil lns serves
// nothing.
func serveHello(ctx context.Context, lns *listenSet, h http.Handler) error {
	if lns == nil {
		return nil
	}
	defer lns.Close()
	lns.serve()
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second,
		WriteTimeout: 5 * time.Second, MaxHeaderBytes: 8 << 10}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(lns) }()
	select {
	case err := <-errc:
		if errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	hs.Close()
	<-errc
	return nil
}

// helloOf is l's hello handler (the same as on its signaling port).
func helloOf(l *LAN) http.Handler {
	return helloHandler(func() discovery.Hello { return l.disc.Hello() })
}
