package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/internal/cluster"
)

// clusterFlags make `lanft signal` one node of a service: through an
// external NATS (--nats) or a nats-server of its own (--cluster-listen).
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "nats", EnvVars: []string{"LANFT_NATS"}, Usage: "join the service through this NATS `URL` (nats://host:4222, comma-separated for several; needs JetStream)"},
		&cli.StringFlag{Name: "nats-creds", Usage: "NATS credentials `FILE` (.creds) for --nats"},
		&cli.StringFlag{Name: "cluster-listen", Usage: "run a nats-server in this process, its routes on `ADDR` (host:port): one node of an embedded cluster"},
		&cli.StringSliceFlag{Name: "cluster-routes", Usage: "the other nodes' --cluster-listen as nats://host:port `URL`s (comma-separated or repeated)"},
		&cli.StringFlag{Name: "cluster-secret", EnvVars: []string{"LANFT_CLUSTER_SECRET"}, Usage: "the `SECRET` every node of the embedded cluster needs to route to the others (the same on all, at least 16 characters; required with --cluster-listen)"},
		&cli.BoolFlag{Name: "cluster-insecure", Usage: "let an embedded cluster run without --cluster-secret: anyone who reaches --cluster-listen joins it and reads and forges the service's state (a private lab network only)"},
		&cli.StringFlag{Name: "cluster-name", Usage: "this node's unique `NAME` in the embedded cluster (default: the --cluster-listen address)"},
		// Gone: this process connects to its embedded nats-server
		// in-process; the client port is on loopback, at random, with a
		// per-process password. Kept to say so.
		&cli.StringFlag{Name: "nats-listen", Hidden: true},
		&cli.StringFlag{Name: "nats-store", Usage: "JetStream `DIR` of the embedded nats-server (default: a temporary one)"},
		&cli.IntFlag{Name: "nats-replicas", Usage: "copies of the shared state (`N`; default 3 with --cluster-routes, else 1)"},
		// The timings: the same on every node of a service.
		&cli.DurationFlag{Name: "cluster-heartbeat", Value: cluster.DefaultHeartbeat, Usage: "how often this node tells the others it is alive (`DURATION`); give every node of a service the same timings"},
		&cli.DurationFlag{Name: "cluster-gone-after", DefaultText: "4 heartbeats, at least 1s", Usage: "a node silent this long (`DURATION`) whose NATS connection is gone (NATS answers \"no responders\" for it) is dead: its users go offline for everyone"},
		&cli.DurationFlag{Name: "cluster-lease", Value: cluster.DefaultLeaseTTL, Usage: "a node that cannot renew its lease for this long (`DURATION`; longer than a JetStream leader election) stops serving; its clients log in elsewhere"},
		&cli.DurationFlag{Name: "cluster-dead-after", DefaultText: "--cluster-lease + 3s", Usage: "a node silent this long (`DURATION`), whatever NATS says (a pause, a partition), is dead; more than --cluster-lease, so that it has stopped serving by then"},
	}
}

// clusterNode is the running part of a node: the cluster and what it needs
// closed afterwards.
type clusterNode struct {
	cl       *cluster.Cluster
	nc       *nats.Conn
	embedded *cluster.Embedded
	tmp      string
}

// joinCluster connects to the service when the flags ask for it; nil
// without --nats and --cluster-listen.
func joinCluster(c *cli.Context, log *slog.Logger) (*clusterNode, error) {
	url, listen := c.String("nats"), c.String("cluster-listen")
	if url == "" && listen == "" {
		if len(c.StringSlice("cluster-routes")) > 0 {
			return nil, cli.Exit("signal: --cluster-routes needs --cluster-listen", 2)
		}
		return nil, nil
	}
	if listen != "" && len(c.StringSlice("cluster-routes")) == 0 {
		return nil, cli.Exit("signal: --cluster-listen needs --cluster-routes, the other nodes' cluster addresses (a lone node needs neither)", 2)
	}
	if url != "" && listen != "" {
		return nil, cli.Exit("signal: --nats (an external NATS) and --cluster-listen (an embedded one) exclude each other", 2)
	}
	if c.IsSet("nats-listen") {
		return nil, cli.Exit("signal: --nats-listen is gone: this process connects to its embedded nats-server in-process, and the server's client port (loopback, at random) takes only this process's password; drop the flag", 2)
	}
	if listen != "" {
		if err := checkClusterSecret(c, log); err != nil {
			return nil, err
		}
	}
	n := &clusterNode{}
	replicas := c.Int("nats-replicas")
	var opts []nats.Option
	if listen != "" {
		store := c.String("nats-store")
		if store == "" {
			dir, err := os.MkdirTemp("", "lanft-nats-")
			if err != nil {
				return nil, fmt.Errorf("signal: JetStream directory: %w", err)
			}
			store, n.tmp = dir, dir
		}
		name := c.String("cluster-name")
		if name == "" {
			name = listen
		}
		routes := c.StringSlice("cluster-routes")
		emb, err := cluster.StartEmbedded(cluster.EmbeddedConfig{
			Name: name, ClusterAddr: listen, Routes: routes, StoreDir: store, Logger: log,
			RouteSecret: c.String("cluster-secret"), Insecure: c.Bool("cluster-insecure"),
		})
		if err != nil {
			n.close()
			return nil, err
		}
		n.embedded = emb
		if replicas == 0 {
			replicas = min(len(routes)+1, 3)
		}
		fmt.Fprintf(c.App.ErrWriter, "embedded NATS %q: routes on %s; clients on %s take only this process's password\n", name, emb.ClusterURL(), emb.ClientAddr())
	} else if creds := c.String("nats-creds"); creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	var nc *nats.Conn
	var err error
	if n.embedded != nil {
		nc, err = n.embedded.Connect("lanft signal")
	} else {
		nc, err = cluster.Connect(url, "lanft signal", opts...)
	}
	if err != nil {
		n.close()
		return nil, err
	}
	n.nc = nc
	cfg := cluster.Config{Conn: nc, Logger: log, Replicas: max(replicas, 1),
		Heartbeat: c.Duration("cluster-heartbeat"), GoneAfter: c.Duration("cluster-gone-after"),
		LeaseTTL: c.Duration("cluster-lease"), DeadAfter: c.Duration("cluster-dead-after")}
	if n.embedded != nil {
		cfg.Current = n.embedded.Current
	}
	if host := c.String("public-addr"); host != "" && !c.Bool("no-turn") && len(c.StringSlice("external-turn")) == 0 {
		// The other nodes' relays may send to this one's, for a room's users.
		if cfg.RelayIP, err = resolveHost(c.Context, host); err != nil {
			n.close()
			return nil, err
		}
	}
	cl, err := cluster.New(cfg)
	if err != nil {
		n.close()
		return nil, cli.Exit(fmt.Sprintf("signal: %v (--cluster-heartbeat, --cluster-gone-after, --cluster-lease, --cluster-dead-after)", err), 2)
	}
	n.cl = cl
	fmt.Fprintf(c.App.ErrWriter, "cluster node %s: shared state in %d copies\n", cl.Node(), max(replicas, 1))
	return n, nil
}

// minClusterSecret is the shortest --cluster-secret taken: the routes'
// password must not be guessable by trying.
const minClusterSecret = 16

// checkClusterSecret refuses an embedded cluster without a secret, unless
// --cluster-insecure says the network is private; then it warns loudly.
func checkClusterSecret(c *cli.Context, log *slog.Logger) error {
	secret, insecure := c.String("cluster-secret"), c.Bool("cluster-insecure")
	switch {
	case secret != "" && insecure:
		return cli.Exit("signal: --cluster-secret and --cluster-insecure exclude each other", 2)
	case secret == "" && !insecure:
		return cli.Exit("signal: --cluster-listen needs --cluster-secret (or LANFT_CLUSTER_SECRET), the same on every node: without it, any server that reaches the cluster port joins the service, reads who is online and forges logins and messages. Make one with `openssl rand -hex 32`; --cluster-insecure runs without, on a private lab network only", 2)
	case insecure:
		fmt.Fprintln(c.App.ErrWriter, "WARNING: --cluster-insecure: the cluster routes take no password; anyone who reaches --cluster-listen joins this service, reads every user's name and address and forges logins and messages. Use it on a private lab network only.")
		log.Warn("signal: embedded cluster without a route secret (--cluster-insecure)")
	case len(secret) < minClusterSecret:
		return cli.Exit(fmt.Sprintf("signal: --cluster-secret is too short (%d characters): use at least %d, e.g. `openssl rand -hex 32`", len(secret), minClusterSecret), 2)
	}
	return nil
}

func (n *clusterNode) close() {
	if n == nil {
		return
	}
	if n.nc != nil {
		// Let the last logouts (names freed at drain) leave.
		_ = n.nc.FlushTimeout(time.Second)
		n.nc.Close()
	}
	if n.embedded != nil {
		n.embedded.Close()
	}
	if n.tmp != "" {
		os.RemoveAll(n.tmp)
	}
}
