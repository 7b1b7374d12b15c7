package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/internal/host"
	"github.com/lanft/lanft/internal/relay"
	"github.com/lanft/lanft/internal/turn"
	"github.com/lanft/lanft/signal"
)

func signalCommand() *cli.Command {
	return &cli.Command{
		Name:  "signal",
		Usage: "run a standalone signaling host, with STUN and TURN for peers behind NATs",
		Description: `Peers elsewhere then use --signal ws://ADDR/ws (or wss:// with --tls-cert),
or a room of their own, --signal ws://ADDR/ws/ROOM: users of different rooms
never see each other. --new-room prints an unguessable room to pass on.

With --public-addr, the host also answers STUN and relays (TURN, on UDP and
TCP at --turn-port) for peers whose NATs let no direct path through; a
client gets a short-lived credential for each connection attempt (none at
login), and the relay only carries traffic between clients logged in to one
room. Open TCP --listen's port,
UDP and TCP --turn-port and UDP --relay-ports.

Several nodes act as one service (a room's users on any node) through NATS:
an external one (--nats) or one embedded in each node (--cluster-listen and
--cluster-routes, with one --cluster-secret for all), with one --turn-secret
for all. GET /healthz on the --listen port; SIGTERM tells the clients to log
in again elsewhere.

GET /metrics (Prometheus text) is on the --listen port for requests from
this host's loopback only (not those a reverse proxy forwards), unless
--metrics-token asks every request for "Authorization: Bearer TOKEN"
instead, or --metrics-listen serves it on an address of its own (and no
more on --listen).

Examples:
   lanft signal --listen :7780
   lanft signal --listen 0.0.0.0:443 --public-addr 203.0.113.7 --tls-cert cert.pem --tls-key key.pem --new-room
   lanft signal --listen 127.0.0.1:7780 --trust-proxy --allow-host signal.example.org --public-addr signal.example.org
   lanft signal --listen 0.0.0.0:443 --public-addr 203.0.113.1 --turn-secret S --cluster-secret C --cluster-listen 10.0.0.1:6222 --cluster-routes nats://10.0.0.2:6222,nats://10.0.0.3:6222`,
		Flags: withGlobals(append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:7780", Usage: "listen on `ADDR` (host:port; port 0 picks a free one)"},
			&cli.StringSliceFlag{Name: "allow-host", Usage: "accept this DNS `NAME` in the Host header (IP addresses, localhost and .local always are)"},
			&cli.StringSliceFlag{Name: "allow-origin", Usage: "let web pages from this `ORIGIN` connect"},
			&cli.BoolFlag{Name: "new-room", Usage: "print the URL of a new unguessable room to give to the peers"},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve wss:// with this certificate `FILE` (PEM, chain included)"},
			&cli.StringFlag{Name: "tls-key", Usage: "the certificate's private key `FILE` (PEM)"},
			&cli.BoolFlag{Name: "trust-proxy", Usage: "take clients' addresses from X-Forwarded-For (behind a reverse proxy only; without it every client counts as the proxy's address)"},
			&cli.IntFlag{Name: "max-conns-per-address", Value: 512, Usage: "accept at most `N` connections from one address (an IPv6 /64)"},
			&cli.IntFlag{Name: "max-users-per-address", Value: 256, Usage: "log in at most `N` users from one address to one room"},
			&cli.StringFlag{Name: "public-addr", Usage: "the `HOST` (address or name) peers reach this server at: turns on STUN and TURN"},
			&cli.StringFlag{Name: "relay-addr", Usage: "bind relays to this local `IP` when --public-addr is a NAT's (default: --public-addr)"},
			&cli.IntFlag{Name: "turn-port", Value: 3478, Usage: "STUN and TURN `PORT`, UDP and TCP (0 picks a free one)"},
			&cli.StringFlag{Name: "relay-ports", Value: "49152-65535", Usage: "UDP `RANGE` (MIN-MAX) of relay ports"},
			&cli.Float64Flag{Name: "relay-rate", Value: 125, Usage: "relay at most `MB/s` per client (a call's credential) through TURN, each way, by delay (0: no limit)"},
			&cli.BoolFlag{Name: "no-turn", Usage: "answer STUN only; relay nothing"},
			&cli.StringSliceFlag{Name: "external-turn", Usage: "hand out this TURN `URL` (coturn with use-auth-secret) instead of relaying here (repeatable)"},
			&cli.StringFlag{Name: "metrics-token", EnvVars: []string{"LANFT_METRICS_TOKEN"}, Usage: "GET /metrics asks for this bearer `TOKEN` (default: none, and /metrics on --listen answers loopback only)"},
			&cli.StringFlag{Name: "metrics-listen", Usage: "serve /metrics (and /healthz) on this `ADDR` of their own, such as 127.0.0.1:9090, instead of on --listen"},
			&cli.BoolFlag{Name: "no-tcp-relay", Usage: "relay no TCP connection between two lanft CLIs (they then use TURN, if any)"},
			&cli.Float64Flag{Name: "tcp-relay-rate", Usage: "shape each TCP relay to `MB/s` each way, by delay (0: no limit)"},
			&cli.StringFlag{Name: "tcp-relay-addr", Usage: "in a service, the `HOST:PORT` where users of other nodes reach this node's TCP relay (default: --public-addr on the --listen port)"},
			&cli.IntFlag{Name: "tcp-relays", Value: 256, Usage: "relay at most `N` TCP connections at once (4 per user)"},
			&cli.StringFlag{Name: "turn-secret", EnvVars: []string{"LANFT_TURN_SECRET"}, Usage: "the shared `SECRET` of --external-turn (or a fixed one for this relay; default: random per run; the same on every node of a service)"},
		}, clusterFlags()...)...),
		Action: runSignal,
	}
}

func runSignal(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if (c.String("nats") != "" || c.String("cluster-listen") != "") && c.String("public-addr") != "" &&
		!c.Bool("no-turn") && c.String("turn-secret") == "" {
		return cli.Exit("signal: every node of a service needs the same --turn-secret (or LANFT_TURN_SECRET), so that TURN credentials from one node work on all", 2)
	}
	for _, f := range []string{"max-conns-per-address", "max-users-per-address"} {
		if c.Int(f) < 1 {
			return cli.Exit(fmt.Sprintf("signal: --%s must be at least 1", f), 2)
		}
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("signal: listen on %s: %w", c.String("listen"), err)
	}
	scheme := "ws"
	var tlsCfg *tls.Config
	if cert, key := c.String("tls-cert"), c.String("tls-key"); cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			ln.Close()
			return fmt.Errorf("signal: TLS certificate: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		scheme = "wss"
	}
	ice, relay, err := iceFor(c)
	if err != nil {
		ln.Close()
		return err
	}
	member, err := joinCluster(c, log)
	if err != nil {
		ln.Close()
		closeTURN(relay)
		return err
	}
	defer member.close()
	metricsLn, err := metricsListener(c)
	if err != nil {
		ln.Close()
		closeTURN(relay)
		return err
	}
	cfg := host.Config{
		Listener:        ln,
		MetricsListener: metricsLn,
		Ops:             true,
		TURN:            relay,
		TLS:             tlsCfg,
		Logger:          log,
		Signal: signal.Config{
			Logger:          log,
			AllowedHosts:    c.StringSlice("allow-host"),
			AllowedOrigins:  c.StringSlice("allow-origin"),
			TrustProxy:      c.Bool("trust-proxy"),
			ICE:             ice,
			MaxConnsPerAddr: c.Int("max-conns-per-address"),
			MaxUsersPerAddr: c.Int("max-users-per-address"),
			MetricsToken:    c.String("metrics-token"),
		},
	}
	if member != nil {
		cfg.Cluster = member.cl
	}
	if err := tcpRelay(c, &cfg, ln); err != nil {
		ln.Close()
		closeTURN(relay)
		return err
	}
	h, err := host.New(cfg) // closes the listeners when it fails
	if err != nil {
		return err
	}
	if relay != nil {
		sayTURN(c, relay)
	}
	// The URLs others can use, one per address; with --new-room, then the
	// same URLs with a new room.
	urls := host.ListenURLs(scheme, signal.Path, ln.Addr().(*net.TCPAddr))
	for _, u := range urls {
		fmt.Fprintln(c.App.Writer, u)
	}
	if c.Bool("new-room") {
		room := signal.NewRoomName()
		for _, u := range urls {
			fmt.Fprintf(c.App.Writer, "%s/%s\n", u, room)
		}
	}
	if metricsLn != nil {
		fmt.Fprintf(c.App.Writer, "http://%s%s\n", metricsLn.Addr(), signal.MetricsPath)
	}
	return h.Run(c.Context)
}

// metricsListener opens --metrics-listen, or returns nil without it.
func metricsListener(c *cli.Context) (net.Listener, error) {
	addr := c.String("metrics-listen")
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("signal: metrics listener on %s: %w", addr, err)
	}
	return ln, nil
}

// iceFor sets up what the host hands clients as ICE servers: an external
// TURN server (an ICE provider), its own STUN and TURN (the relay's
// config, its sockets open), or nothing.
func iceFor(c *cli.Context) (signal.ICEProvider, *turn.Config, error) {
	secret := []byte(c.String("turn-secret"))
	if urls := c.StringSlice("external-turn"); len(urls) > 0 {
		if len(secret) == 0 {
			return nil, nil, cli.Exit("signal: --external-turn needs --turn-secret, the TURN server's shared secret", 2)
		}
		fmt.Fprintf(c.App.ErrWriter, "handing out credentials for %s\n", strings.Join(urls, ", "))
		return turn.External{URLs: urls, Secret: secret}, nil, nil
	}
	host := c.String("public-addr")
	if host == "" {
		fmt.Fprintln(c.App.ErrWriter, "STUN and TURN off: pass --public-addr HOST for peers behind NATs")
		return nil, nil, nil
	}
	public, err := resolveHost(c.Context, host)
	if err != nil {
		return nil, nil, err
	}
	relayIP := public
	if a := c.String("relay-addr"); a != "" {
		if relayIP, err = netip.ParseAddr(a); err != nil {
			return nil, nil, cli.Exit(fmt.Sprintf("signal: --relay-addr %q: %v", a, err), 2)
		}
	}
	minPort, maxPort, err := portRange(c.String("relay-ports"))
	if err != nil {
		return nil, nil, err
	}
	bind := netip.AddrPortFrom(relayIP, uint16(c.Int("turn-port"))).String()
	pc, err := net.ListenPacket("udp", bind)
	if err != nil {
		return nil, nil, fmt.Errorf("signal: STUN/TURN on UDP: %w", err)
	}
	var tl net.Listener
	if !c.Bool("no-turn") {
		tcpBind := netip.AddrPortFrom(relayIP, uint16(portOf(pc.LocalAddr()))).String()
		if c.Int("turn-port") == 0 {
			tcpBind = netip.AddrPortFrom(relayIP, 0).String()
		}
		if tl, err = net.Listen("tcp", tcpBind); err != nil {
			pc.Close()
			return nil, nil, fmt.Errorf("signal: TURN on TCP: %w", err)
		}
	}
	rate := int(c.Float64("relay-rate") * 1e6)
	if rate == 0 {
		rate = -1
	}
	return nil, &turn.Config{
		PacketConn: pc, Listener: tl, PublicIP: public, PublicHost: host, RelayIP: relayIP,
		MinPort: minPort, MaxPort: maxPort, Secret: secret, Rate: rate,
		STUNOnly: c.Bool("no-turn"),
	}, nil
}

// sayTURN tells the operator where the relay answers.
func sayTURN(c *cli.Context, tc *turn.Config) {
	if tc.Listener == nil {
		fmt.Fprintf(c.App.ErrWriter, "STUN on udp %s; TURN off\n", tc.PacketConn.LocalAddr())
		return
	}
	fmt.Fprintf(c.App.ErrWriter, "STUN and TURN on udp %s, TURN on tcp %s; relays at %s ports %d-%d\n",
		tc.PacketConn.LocalAddr(), tc.Listener.Addr(), tc.PublicIP, tc.MinPort, tc.MaxPort)
}

// closeTURN closes the sockets iceFor opened, when no host takes them.
func closeTURN(tc *turn.Config) {
	if tc == nil {
		return
	}
	tc.PacketConn.Close()
	if tc.Listener != nil {
		tc.Listener.Close()
	}
}

func portOf(a net.Addr) int {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.Port
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return 0
}

func resolveHost(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("signal: --public-addr %q: %v", host, err)
	}
	return addrs[0].Unmap(), nil
}

func portRange(s string) (uint16, uint16, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if !ok || errors.Join(err1, err2) != nil || a == 0 || a > b {
		return 0, 0, cli.Exit(fmt.Sprintf("signal: --relay-ports %q: want MIN-MAX, such as 49152-65535", s), 2)
	}
	return uint16(a), uint16(b), nil
}

// tcpRelay gives the host its TCP relay for lanft peers, on the signaling
// port ln, unless --no-tcp-relay. A node of a service also relays for a
// user of its own and one of another node: those reach it at
// --tcp-relay-addr, or --public-addr on ln's port.
func tcpRelay(c *cli.Context, cfg *host.Config, ln net.Listener) error {
	if c.Bool("no-tcp-relay") {
		cfg.NoRelay = "this signaling host relays no TCP connection (it runs with --no-tcp-relay)"
		return nil
	}
	cfg.Relay = &relay.Config{Rate: c.Float64("tcp-relay-rate") * 1e6, MaxRelays: c.Int("tcp-relays")}
	if cfg.Cluster == nil {
		return nil
	}
	if a := c.String("tcp-relay-addr"); a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return cli.Exit(fmt.Sprintf("signal: --tcp-relay-addr %q: want HOST:PORT", a), 2)
		}
		cfg.RelayAddr = a
		return nil
	}
	if h := c.String("public-addr"); h != "" {
		ip, err := resolveHost(c.Context, h)
		if err != nil {
			return err
		}
		cfg.RelayAddr = netip.AddrPortFrom(ip, uint16(portOf(ln.Addr()))).String()
	}
	return nil
}
