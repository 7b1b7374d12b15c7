package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

// EmbeddedConfig configures a nats-server run inside the process. Its only
// client is this process, through Embedded.Connect: an in-process pipe,
// with a user and password made at random for this process. The server
// still has a client port, on loopback at random (nats-server starts no
// routes without one), where a CONNECT without that password is refused.
// Other servers reach it only by routes, with RouteSecret.
type EmbeddedConfig struct {
	// Name is the server's name in the cluster (required with Routes).
	Name string
	// ClusterAddr is where the other servers' routes connect (host:port);
	// empty for a server of its own.
	ClusterAddr string
	// Routes are the other servers' cluster URLs (nats://host:port).
	Routes []string
	// StoreDir is JetStream's directory (the bucket itself is in memory).
	StoreDir string
	// ClusterName names the cluster ("lanft").
	ClusterName string
	// RouteSecret is the password every server of the cluster needs to
	// route to this one (and gives to the others): a server without it
	// cannot join, read the shared state or inject events. Required with
	// ClusterAddr unless Insecure.
	RouteSecret string
	// Insecure lets a cluster run without RouteSecret: anyone who reaches
	// ClusterAddr joins it (a private lab network only).
	Insecure bool
	Logger   *slog.Logger
}

// ErrNoRouteSecret is returned by StartEmbedded for a cluster without a
// route secret (and without Insecure).
var ErrNoRouteSecret = errors.New("cluster: an embedded cluster needs a route secret, or any server that reaches its cluster port joins it")

// Embedded is a running in-process nats-server.
type Embedded struct {
	srv        *server.Server
	user, pass string // this process's credentials, made at start
}

// clientUser is the user name of this process on its embedded server.
const clientUser = "lanft-node"

// StartEmbedded starts a nats-server with JetStream and waits until it
// accepts clients (not until its cluster has elected a leader: Cluster.Run
// waits for that).
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.ClusterName == "" {
		cfg.ClusterName = "lanft"
	}
	pass, err := randomSecret()
	if err != nil {
		return nil, err
	}
	// The server keeps a hash (of a random password: no cost needed).
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("cluster: hash the client password: %w", err)
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		// This process connects in-process: the port only has to exist.
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		Username:  clientUser,
		Password:  string(hash),
		JetStream: true,
		StoreDir:  cfg.StoreDir,
		NoSigs:    true,
		NoLog:     true,
	}
	if cfg.ClusterAddr != "" {
		if cfg.RouteSecret == "" && !cfg.Insecure {
			return nil, ErrNoRouteSecret
		}
		ch, cp, err := splitHostPort(cfg.ClusterAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster: cluster address: %w", err)
		}
		if cfg.Name == "" {
			return nil, errors.New("cluster: an embedded server in a cluster needs a name")
		}
		opts.Cluster = server.ClusterOpts{Name: cfg.ClusterName, Host: ch, Port: cp}
		if cp == 0 {
			opts.Cluster.Port = server.RANDOM_PORT
		}
		if cfg.RouteSecret != "" {
			opts.Cluster.Username, opts.Cluster.Password = "lanft", cfg.RouteSecret
		}
		for _, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("cluster: route %q: %w", redact(r), err)
			}
			if cfg.RouteSecret != "" {
				u.User = url.UserPassword("lanft", cfg.RouteSecret)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: nats-server: %w", err)
	}
	if cfg.Logger != nil {
		s.SetLoggerV2(&natsLogger{cfg.Logger}, false, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("cluster: nats-server did not start within 10s")
	}
	return &Embedded{srv: s, user: clientUser, pass: pass}, nil
}

// Current reports whether this server's JetStream is current: with the
// meta leader, and every copy it holds (the bucket's) caught up, as
// nats-server's own /healthz checks it (Config.Current).
func (e *Embedded) Current() bool {
	return e.srv.Healthz(nil).StatusCode == http.StatusOK
}

// randomSecret is 32 random bytes, base64: a password only this process
// knows.
func randomSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cluster: random password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Connect opens this process's connection to the embedded server, in
// process and with its credentials, as Connect does for a URL.
func (e *Embedded) Connect(name string, extra ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{nats.InProcessServer(e.srv), nats.UserInfo(e.user, e.pass)}, extra...)
	nc, err := connect(nats.DefaultURL, name, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to the embedded nats-server: %w", err)
	}
	return nc, nil
}

// ClientAddr is the loopback address of the client port (for tests: it
// refuses whoever lacks this process's password).
func (e *Embedded) ClientAddr() net.Addr { return e.srv.Addr() }

// ClusterURL is the URL other servers' routes use, or "".
func (e *Embedded) ClusterURL() string {
	if a := e.srv.ClusterAddr(); a != nil {
		return "nats://" + a.String()
	}
	return ""
}

// Close shuts the server down and waits for it. It is idempotent.
func (e *Embedded) Close() error {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	return nil
}

// Connect opens a client connection to url for a Cluster: no echo,
// reconnecting for ever once connected. A NATS that cannot be reached, or
// refuses the credentials, is an error at once.
func Connect(url string, name string, extra ...nats.Option) (*nats.Conn, error) {
	nc, err := connect(url, name, extra...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to %s: %w", redact(url), err)
	}
	return nc, nil
}

func connect(url string, name string, extra ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{
		nats.Name(name), nats.NoEcho(), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
	}, extra...)
	return nats.Connect(url, opts...)
}

func splitHostPort(a string) (string, int, error) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	return h, n, nil
}

// natsLogger passes nats-server's log lines to slog.
type natsLogger struct{ l *slog.Logger }

func (n *natsLogger) Noticef(format string, v ...any) {
	n.l.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (n *natsLogger) Warnf(format string, v ...any) { n.l.Warn("nats: " + fmt.Sprintf(format, v...)) }
func (n *natsLogger) Fatalf(format string, v ...any) {
	n.l.Error("nats: " + fmt.Sprintf(format, v...))
}
func (n *natsLogger) Errorf(format string, v ...any) {
	n.l.Error("nats: " + fmt.Sprintf(format, v...))
}
func (n *natsLogger) Debugf(format string, v ...any) {
	n.l.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (n *natsLogger) Tracef(format string, v ...any) {}

// redact hides the passwords of a comma-separated list of NATS URLs, for
// messages and logs.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		} else {
			parts[i] = "(an unreadable URL)"
		}
	}
	return strings.Join(parts, ",")
}
