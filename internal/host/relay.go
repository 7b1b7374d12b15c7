package host

import (
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/lanft/lanft/internal/relay"
	"github.com/lanft/lanft/signal"
)

// A host's TCP relay (internal/relay) shares the signaling port: the
// listener is sniffed before TLS (a relay connection starts with a NUL
// byte, never an HTTP request or a TLS record), so that peers that reach
// the signaling host reach the relay too. The peers' own TLS 1.3 runs end
// to end over the spliced connection; a relay connection carries only the
// token in the clear, which is bound to the two users and works once.

// relayListener wraps the host's listener with the relay's sniffer, then
// TLS when the host has a certificate.
func relayListener(ln net.Listener, rs *relay.Server, tc *tls.Config) net.Listener {
	if rs != nil {
		ln = rs.Sniff(ln)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return ln
}

// relayIssuer hands out the relay's token pairs to the signaling server.
type relayIssuer struct {
	srv    *relay.Server
	lan    bool
	public string // where other nodes' users reach srv
}

func (r relayIssuer) RelayAddr() string { return r.public }

func (r relayIssuer) IssueRelay(room, a, b string) (signal.RelayGrant, signal.RelayGrant, error) {
	ta, tb, err := r.srv.Issue(room, a, b)
	if errors.Is(err, relay.ErrBusy) {
		return signal.RelayGrant{}, signal.RelayGrant{}, errors.New("the host's TCP relay is at its limits (relays at once, or per user); try again later")
	}
	if err != nil {
		return signal.RelayGrant{}, signal.RelayGrant{}, err
	}
	return signal.RelayGrant{Token: hex.EncodeToString(ta[:]), LAN: r.lan}, signal.RelayGrant{Token: hex.EncodeToString(tb[:]), LAN: r.lan}, nil
}

// refusingIssuer is a host that does not relay (--no-relay): both peers
// are told why.
type refusingIssuer struct{ why string }

func (r refusingIssuer) Refusal() string { return r.why }

func (r refusingIssuer) IssueRelay(string, string, string) (signal.RelayGrant, signal.RelayGrant, error) {
	return signal.RelayGrant{}, signal.RelayGrant{}, errors.New(r.why)
}

// relayMetrics writes the relay's counters after prev's lines.
func relayMetrics(rs *relay.Server, prev func(io.Writer)) func(io.Writer) {
	return func(w io.Writer) {
		if prev != nil {
			prev(w)
		}
		st := rs.Stats()
		signal.Metric(w, "lanft_tcp_relays_total", "counter", "TCP relays started (two peers spliced)", float64(st.Relays))
		signal.Metric(w, "lanft_tcp_relays_active", "gauge", "TCP relays running now", float64(st.Active))
		signal.Metric(w, "lanft_tcp_relay_bytes_total", "counter", "bytes relayed by the TCP relay, both ways", float64(st.Bytes))
		for _, r := range []string{relay.RefusedNoToken, relay.RefusedUnknown, relay.RefusedSpent, relay.RefusedExpired,
			relay.RefusedBusy, relay.RefusedNoPartner, relay.RefusedFull} {
			fmt.Fprintf(w, "lanft_tcp_relay_refused_total{reason=%q} %d\n", r, st.Refused[r])
		}
	}
}

// relayRoutes serves the relay's upgrade at signal.RelayPath, the rest
// with next.
func relayRoutes(rs *relay.Server, next http.Handler) http.Handler {
	up := rs.UpgradeHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == signal.RelayPath {
			up.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
