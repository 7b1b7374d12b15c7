package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/rtc"
	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/transfer"
)

// nodeConfig builds the node configuration common to share, receive and peers.
// nodeConfig also returns the command's output and a stop function to defer.
func nodeConfig(c *cli.Context) (*output, node.Config, func(), error) {
	out := newOutput(c.Bool("json"), c.App.Writer, c.App.ErrWriter)
	cfg, stop, err := buildNodeConfig(c, out)
	return out, cfg, stop, err
}

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
	path, err := pathMode(c.String("path"))
	if err != nil {
		return node.Config{}, nil, err
	}
	name := defaultName(c, id.DeviceID())
	hosts, stop, err := hostsFor(c, log, out, name)
	if err != nil {
		return node.Config{}, nil, err
	}
	return node.Config{
		Hosts:        hosts,
		Name:         name,
		RTC:          rtc.Config{Interfaces: c.StringSlice("interface"), Logger: log},
		Logger:       log,
		Events:       out.event,
		Identity:     id,
		Pins:         identity.OpenPins(dir),
		AcceptNewKey: c.Bool("accept-new-key"),
		Code:         c.String("code"),
		Path:         path,
	}, stop, nil
}

// pathMode checks --path: auto (or empty), datachannel or relay.
func pathMode(s string) (node.Path, error) {
	switch node.Path(s) {
	case "", "auto":
		return "", nil
	case node.PathDataChannel, node.PathRelay:
		return node.Path(s), nil
	}
	return "", cli.Exit(fmt.Sprintf("--path %q: want auto, datachannel or relay", s), 2)
}

func shareCommand() *cli.Command {
	return &cli.Command{
		Name:      "share",
		Usage:     "offer files and folders to receivers on the LAN until interrupted",
		ArgsUsage: "FILE|DIR...",
		Description: `Hashes the files once, announces them, and sends them to every receiver that
asks, several at once. Stop with Ctrl-C.

Examples:
   lanft share photos/ notes.txt
   lanft share --name laptop --signal ws://10.0.0.2:7780/ws big.iso`,
		Flags: []cli.Flag{signalFlag, fallbackFlag, nameFlag, interfaceFlag, jsonFlag, codeFlag, acceptKeyFlag, pathFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.Exit("share: name at least one file or folder to share", 2)
			}
			out, cfg, stop, err := nodeConfig(c)
			if err != nil {
				return err
			}
			defer stop()
			out.say("hashing %d path(s)...", c.NArg())
			src, err := transfer.NewSource(c.Context, c.Args().Slice(), cfg.Logger)
			if err != nil {
				return err
			}
			m := src.Manifest()
			out.say("sharing %d file(s), %s, as %q; run `lanft receive` on another machine", m.Files(), transfer.FormatSize(m.TotalSize()), cfg.Name)
			if out.json {
				out.emit(map[string]any{"event": "sharing", "name": cfg.Name, "files": m.Files(), "total": m.TotalSize()})
			}
			if err := node.Share(c.Context, cfg, src); err != nil {
				return err
			}
			return nil
		},
	}
}

func receiveCommand() *cli.Command {
	return &cli.Command{
		Name:  "receive",
		Usage: "receive the files someone shares",
		Description: `Finds the share (the only one online, or the one named with --from), shows what
it holds and asks before accepting. Files land in --out (default: the current
folder); a name that exists already is never overwritten. An interrupted
receive resumes where it stopped when run again.

Examples:
   lanft receive
   lanft receive --from laptop --out ~/Downloads --yes`,
		Flags: []cli.Flag{
			signalFlag, fallbackFlag, nameFlag, interfaceFlag, jsonFlag, codeFlag, acceptKeyFlag, pathFlag,
			&cli.StringFlag{Name: "from", Usage: "receive from the sharer named `NAME`"},
			&cli.StringFlag{Name: "out", Value: ".", Usage: "save into `DIR`"},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "accept without asking"},
			&cli.DurationFlag{Name: "wait", Value: 15 * time.Second, Usage: "how long to look for a share before giving up"},
		},
		Action: func(c *cli.Context) error {
			out, cfg, stop, err := nodeConfig(c)
			if err != nil {
				return err
			}
			defer stop()
			dir := c.String("out")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("receive: create %s: %w", dir, err)
			}
			res, err := node.Receive(c.Context, cfg, node.ReceiveConfig{
				From: c.String("from"),
				Wait: c.Duration("wait"),
				Transfer: transfer.ReceiveOptions{
					Dir:    dir,
					Logger: cfg.Logger,
					Accept: func(ctx context.Context, m *transfer.Manifest) error {
						return confirm(c, out, m)
					},
				},
			})
			out.finishBar()
			if errors.Is(err, node.ErrNoShare) && c.String("signal") == "" {
				err = fmt.Errorf("%w (is the sharer on this network? `lanft doctor` checks what discovery needs)", err)
			}
			if err != nil {
				if out.json {
					out.emit(map[string]any{"event": "error", "message": err.Error()})
				}
				return err
			}
			abs, _ := filepath.Abs(dir)
			if out.json {
				out.emit(map[string]any{"event": "done", "dir": abs, "files": res.Files, "received": res.Bytes, "skipped": res.Skipped, "renamed": res.Renamed})
				return nil
			}
			fmt.Fprintf(c.App.ErrWriter, "received %d file(s) into %s (%s transferred, %s already there)\n",
				len(res.Files), abs, transfer.FormatSize(res.Bytes), transfer.FormatSize(res.Skipped))
			for from, to := range res.Renamed {
				fmt.Fprintf(c.App.ErrWriter, "  %s existed: saved as %s\n", transfer.DisplayName(from), transfer.DisplayName(to))
			}
			return nil
		},
	}
}

// confirm shows the manifest and asks, unless --yes.
func confirm(c *cli.Context, out *output, m *transfer.Manifest) error {
	if out.json {
		// Scripts get the entries, up to a line size any reader copes with.
		const maxListed = 1000
		entries := m.Entries[:min(len(m.Entries), maxListed)]
		out.emit(map[string]any{"event": "manifest", "files": m.Files(), "total": m.TotalSize(),
			"entries": entries, "entries_omitted": len(m.Entries) - len(entries)})
	} else {
		fmt.Fprintf(c.App.ErrWriter, "%d file(s), %s in total:\n", m.Files(), transfer.FormatSize(m.TotalSize()))
		shown := 0
		for _, e := range m.Entries {
			if shown == 20 {
				fmt.Fprintf(c.App.ErrWriter, "  ... and %d more\n", len(m.Entries)-shown)
				break
			}
			if e.Kind == transfer.KindDir {
				fmt.Fprintf(c.App.ErrWriter, "  %s/\n", transfer.DisplayName(e.Path))
			} else {
				fmt.Fprintf(c.App.ErrWriter, "  %-50s %10s\n", transfer.DisplayName(e.Path), transfer.FormatSize(e.Size))
			}
			shown++
		}
	}
	if c.Bool("yes") {
		return nil
	}
	fmt.Fprint(c.App.ErrWriter, "Accept? [y/N] ")
	line, err := bufio.NewReader(c.App.Reader).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(c.App.ErrWriter)
		return errors.New("no answer on standard input; pass --yes to accept without asking")
	}
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return errors.New("declined")
	}
	return nil
}

func peersCommand() *cli.Command {
	return &cli.Command{
		Name:  "peers",
		Usage: "list who is online and what they share",
		Description: `Examples:
   lanft peers
   lanft peers --json --signal ws://10.0.0.2:7780/ws`,
		Flags: []cli.Flag{signalFlag, fallbackFlag, nameFlag, interfaceFlag, jsonFlag},
		Action: func(c *cli.Context) error {
			out, cfg, stop, err := nodeConfig(c)
			if err != nil {
				return err
			}
			defer stop()
			cfg.Events = nil
			peers, host, err := node.ListPeers(c.Context, cfg)
			if err != nil {
				return err
			}
			found := howFound(cfg)
			if out.json {
				rows := make([]map[string]any, 0, len(peers))
				for _, p := range peers {
					rows = append(rows, map[string]any{"name": p.Name, "lanft": p.Meta, "found": found(p.Name)})
				}
				out.emit(map[string]any{"event": "peers", "host": host, "peers": rows})
				return nil
			}
			fmt.Fprintf(c.App.Writer, "signaling host: %s\n", host)
			if len(peers) == 0 {
				fmt.Fprintln(c.App.Writer, "nobody else is online")
				return nil
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tROLE\tSHARES\tFOUND")
			for _, p := range peers {
				role, shares := "other client", ""
				if p.Meta != nil {
					role = p.Meta.Role
					if p.Sharing() {
						shares = fmt.Sprintf("%s (%d file(s), %s)", transfer.DisplayName(p.Meta.Title), p.Meta.Files, transfer.FormatSize(p.Meta.Bytes))
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", transfer.DisplayName(p.Name), role, shares, found(p.Name))
			}
			return w.Flush()
		},
	}
}

// howFound says how a peer name was found: over mDNS (on which interface,
// at which address, and whether it is the elected host) or only through
// the signaling host.
func howFound(cfg node.Config) func(name string) string {
	lan, ok := cfg.Hosts.(*node.LAN)
	if !ok {
		return func(string) string { return "signaling host" }
	}
	state := lan.State()
	return func(name string) string {
		for _, p := range state.Peers {
			if p.Name != name || p.Self {
				continue
			}
			s := "mdns on " + p.Iface
			if len(p.Addrs) > 0 {
				s += " (" + p.Addrs[0].String() + ")"
			}
			if state.HasHost && state.Host.ID == p.ID {
				s += ", elected host"
			}
			return s
		}
		return "signaling host only"
	}
}

func signalCommand() *cli.Command {
	return &cli.Command{
		Name:  "signal",
		Usage: "run a standalone signaling host (for when there is no LAN to discover peers on)",
		Description: `Peers elsewhere then use --signal ws://ADDR/ws.

Examples:
   lanft signal --listen :7780
   lanft signal --listen 0.0.0.0:7780 --allow-host signal.example.org`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:7780", Usage: "listen on `ADDR` (host:port; port 0 picks a free one)"},
			&cli.StringSliceFlag{Name: "allow-host", Usage: "accept this DNS `NAME` in the Host header (IP addresses, localhost and .local always are)"},
			&cli.StringSliceFlag{Name: "allow-origin", Usage: "let web pages from this `ORIGIN` connect"},
		},
		Action: func(c *cli.Context) error {
			log, err := logger(c)
			if err != nil {
				return err
			}
			srv, err := signal.NewServer(signal.Config{
				Logger:         log,
				AllowedHosts:   c.StringSlice("allow-host"),
				AllowedOrigins: c.StringSlice("allow-origin"),
			})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", c.String("listen"))
			if err != nil {
				return fmt.Errorf("signal: listen: %w", err)
			}
			fmt.Fprintf(c.App.Writer, "ws://%s%s\n", ln.Addr(), signal.Path)
			return srv.Serve(c.Context, ln)
		},
	}
}

// hostsFor picks the signaling host: --signal (or LANFT_SIGNAL), else the
// host elected on the LAN. The returned stop ends discovery and waits for it.
func hostsFor(c *cli.Context, log *slog.Logger, out *output, name string) (node.Hosts, func(), error) {
	if u := c.String("signal"); u != "" {
		return node.StaticHost(u), func() {}, nil
	}
	// Long-lived shares make better hosts than a receive or a listing.
	priority := 0
	switch c.Command.Name {
	case "share":
		priority = 10
	case "peers":
		priority = -10
	}
	lan, err := node.NewLAN(node.LANConfig{
		Name:       name,
		Priority:   priority,
		Interfaces: c.StringSlice("interface"),
		Logger:     log,
		Fallback:   c.String("fallback-signal"),
		Notice:     func(s string) { out.event(node.Event{Kind: "info", Text: s}) },
	})
	if err != nil {
		return nil, nil, err
	}
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
