package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/discovery"
	"github.com/lanft/lanft/internal/host"
	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/internal/pagehttp"
	"github.com/lanft/lanft/rtc"
	"github.com/lanft/lanft/signal"
)

// nodeConfig builds the node configuration common to share, receive and peers.
// nodeConfig also returns the command's output and a stop function to defer.
func nodeConfig(c *cli.Context) (*output, node.Config, func(), error) {
	out := newOutput(c.Bool("json"), c.App.Writer, c.App.ErrWriter)
	cfg, stop, err := buildNodeConfig(c, out)
	return out, cfg, stop, err
}

// buildNodeConfig reads the flags share, receive and peers have in common
// (and the device key) into a node configuration, starting LAN discovery
// unless --signal names the host; the returned stop ends it.
func buildNodeConfig(c *cli.Context, out *output) (node.Config, func(), error) {
	log, err := logger(c)
	if err != nil {
		return node.Config{}, nil, err
	}
	dir, err := configDir(c)
	if err != nil {
		return node.Config{}, nil, err
	}
	id, err := identity.Load(dir)
	if err != nil {
		return node.Config{}, nil, err
	}
	mode, err := node.ParseMode(c.String("path"))
	if err != nil {
		return node.Config{}, nil, cli.Exit(err.Error(), 2)
	}
	name := defaultName(c, id.DeviceID())
	ifaces, err := checkInterfaces(c.StringSlice("interface"))
	if err != nil {
		return node.Config{}, nil, err
	}
	hosts, stopHosts, err := hostsFor(c, log, out, name)
	if err != nil {
		return node.Config{}, nil, err
	}
	// One server of pages' HTTP path for the process; it listens only
	// once a verified page needs it.
	pages := pagehttp.New(pagehttp.Config{Logger: log})
	stop := func() {
		pages.Close()
		stopHosts()
	}
	return node.Config{
		Hosts:        hosts,
		Name:         name,
		RTC:          rtc.Config{Interfaces: ifaces, Logger: log},
		Logger:       log,
		Events:       out.event,
		Identity:     id,
		Pins:         identity.OpenPins(dir),
		AcceptNewKey: c.Bool("accept-new-key"),
		Code:         c.String("code"),
		Mode:         mode,
		Pages:        pages,
	}, stop, nil
}

// nameHint says what to do about a name the signaling host refused.
func nameHint(err error) error {
	if errors.Is(err, signal.ErrNameTaken) {
		return fmt.Errorf("%w; pick another with --name", err)
	}
	return err
}

// signalURL makes a --signal value usable: http(s) becomes ws(s), a bare
// HOST:PORT gets ws://, and a URL without a path gets lanft's /ws.
func signalURL(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		raw = "ws://" + raw
	}
	u, err := neturl.Parse(raw)
	if err != nil || u.Host == "" {
		return "", cli.Exit(fmt.Sprintf("--signal %q is not a URL: write ws://HOST:PORT%s", raw, signal.Path), 2)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", cli.Exit(fmt.Sprintf("--signal %q: the scheme must be ws:// or wss:// (ws://%s%s)", raw, u.Host, signal.Path), 2)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = signal.Path
	}
	return u.String(), nil
}

// checkInterfaces makes sure every --interface names an interface of this
// machine, and says which ones there are when one does not.
func checkInterfaces(names []string) ([]string, error) {
	for _, name := range names {
		if _, err := net.InterfaceByName(name); err != nil {
			var have []string
			ifaces, _ := net.Interfaces()
			for _, ifi := range ifaces {
				have = append(have, ifi.Name)
			}
			return nil, cli.Exit(fmt.Sprintf("--interface %s: this machine has no such network interface (it has: %s)", name, strings.Join(have, ", ")), 2)
		}
	}
	return names, nil
}

// hostsFor picks the signaling host: --signal (or LANFT_SIGNAL), else the
// host elected on the LAN. The returned stop ends discovery and waits for it.
func hostsFor(c *cli.Context, log *slog.Logger, out *output, name string) (node.Hosts, func(), error) {
	if raw := c.String("signal"); raw != "" {
		u, err := signalURL(raw)
		if err != nil {
			return nil, nil, err
		}
		return node.StaticHost(u), func() {}, nil
	}
	// Long-lived shares make better hosts than a receive or a listing.
	priority := 0
	switch c.Command.Name {
	case "share", "up":
		priority = 10
	case "peers":
		priority = -10
	}
	fallback := c.String("fallback-signal")
	if fallback != "" {
		var err error
		if fallback, err = signalURL(fallback); err != nil {
			return nil, nil, err
		}
	}
	unicast, err := unicastConfig(c)
	if err != nil {
		return nil, nil, err
	}
	lan, err := host.NewLAN(host.LANConfig{
		Name:       name,
		Priority:   priority,
		Interfaces: c.StringSlice("interface"),
		Port:       lastPagePort(c),
		Logger:     log,
		Fallback:   fallback,
		Notice:     func(s string) { out.event(node.Event{Kind: node.EventInfo, Text: s}) },
		NoRelay:    c.Bool("no-relay"),
		Discovery:  discovery.Config{Unicast: unicast},
	})
	if err != nil {
		return nil, nil, err
	}
	rememberPagePort(c, lan)
	log.Info("LAN discovery", "interfaces", lan.Interfaces(), "signaling_port", lan.Port(), "hello_port", lan.HelloPort(), "peers", c.StringSlice("peer"))
	ctx, cancel := context.WithCancel(c.Context)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := lan.Run(ctx); err != nil {
			log.Error("LAN discovery stopped", "err", err)
		}
	}()
	return lan, func() { cancel(); <-done }, nil
}

// knownPeersFile, in the config folder, keeps the lanft instances seen
// (address:port a line, at most 32): asked first when mDNS finds nothing.
const knownPeersFile = "known-instances"

// unicastConfig is discovery's unicast fallback as the flags say: --peer
// (resolved now), --no-probe, and the remembered instances.
func unicastConfig(c *cli.Context) (*discovery.UnicastConfig, error) {
	peers, err := discovery.ResolvePeers(c.Context, c.StringSlice("peer"))
	if err != nil {
		return nil, cli.Exit(err.Error(), 2)
	}
	uc := &discovery.UnicastConfig{Peers: peers, NoSweep: c.Bool("no-probe")}
	if dir, err := configDir(c); err == nil && os.MkdirAll(dir, 0o700) == nil {
		uc.KnownFile = filepath.Join(dir, knownPeersFile)
	}
	return uc, nil
}
