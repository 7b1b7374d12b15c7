package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rivo/uniseg"
	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/internal/host"
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
	ifaces, err := checkInterfaces(c.StringSlice("interface"))
	if err != nil {
		return node.Config{}, nil, err
	}
	hosts, stop, err := hostsFor(c, log, out, name)
	if err != nil {
		return node.Config{}, nil, err
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
   lanft share --name laptop --signal ws://10.0.0.2:7780/ws big.iso
   lanft share --signal wss://signal.example.org/ws --new-room big.iso`,
		Flags: withGlobals(signalFlag, fallbackFlag, nameFlag, interfaceFlag, jsonFlag, codeFlag, acceptKeyFlag, pathFlag,
			&cli.StringSliceFlag{Name: "to", Usage: "let only the receiver named `NAME` fetch the files (repeatable); others are refused"},
			&cli.BoolFlag{Name: "ask", Usage: "ask before sending to each receiver, showing its name, device id and verification code (with --json: decisions on stdin)"},
			&cli.BoolFlag{Name: "new-room", Usage: "share in a new unguessable room of the --signal host, and print the URL receivers need"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.Exit("share: name at least one file or folder to share", 2)
			}
			if c.Bool("new-room") {
				u := c.String("signal")
				if u == "" {
					return cli.Exit("share: --new-room needs --signal URL", 2)
				}
				u, err := signalURL(u)
				if err != nil {
					return err
				}
				u = strings.TrimSuffix(u, "/") + "/" + signal.NewRoomName()
				if err := c.Set("signal", u); err != nil {
					return err
				}
				fmt.Fprintf(c.App.ErrWriter, "room: receivers run `lanft receive --signal %s`\n", u)
			}
			out, cfg, stop, err := nodeConfig(c)
			if err != nil {
				return err
			}
			defer stop()
			cfg.To = c.StringSlice("to")
			if c.Bool("ask") {
				cfg.Ask = newAsker(c, out).ask
			}
			out.say("hashing %d path(s)...", c.NArg())
			src, err := transfer.NewSource(c.Context, c.Args().Slice(), cfg.Logger)
			if err != nil {
				return err
			}
			m := src.Manifest()
			out.onOnline = func(e node.Event) string {
				who := "anyone who runs `lanft receive`"
				switch {
				case len(cfg.To) > 0:
					who = "only " + strings.Join(cfg.To, ", ") + " (--to)"
				case cfg.Ask != nil:
					who = "receivers you accept (--ask)"
				}
				return fmt.Sprintf("sharing %d file(s), %s, as %q at %s; for %s. Ctrl-C stops.",
					m.Files(), transfer.FormatSize(m.TotalSize()), cfg.Name, e.Host, who)
			}
			out.emit(node.Event{Kind: "sharing", Peer: cfg.Name, Size: m.TotalSize()}, map[string]any{"files": m.Files()})
			showPage(out, cfg.Hosts)
			err = node.Share(c.Context, cfg, src)
			out.finishBar(true)
			return nameHint(err)
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
		Flags: withGlobals(
			signalFlag, fallbackFlag, nameFlag, interfaceFlag, jsonFlag, codeFlag, acceptKeyFlag, pathFlag,
			&cli.StringFlag{Name: "from", Usage: "receive from the sharer named `NAME`"},
			&cli.StringFlag{Name: "out", Value: ".", Usage: "save into `DIR`"},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "accept without asking"},
			&cli.DurationFlag{Name: "wait", Value: 15 * time.Second, Usage: "look for the share for this `DURATION` before giving up"},
			&cli.BoolFlag{Name: "windows-names", Usage: "save names Windows cannot hold (a ':' or '?', CON.txt) under safe names, as on Windows (for a USB stick or a Windows share; the default on Windows)"},
		),
		Action: func(c *cli.Context) error {
			out, cfg, stop, err := nodeConfig(c)
			if err != nil {
				return err
			}
			defer stop()
			names := transfer.NamesNative
			if c.Bool("windows-names") {
				names = transfer.NamesWindows
			}
			dir := c.String("out")
			if err := writableDir(dir); err != nil {
				return err
			}
			var from string // the sharer, once connected
			events := cfg.Events
			cfg.Events = func(e node.Event) {
				if e.Kind == "peer" {
					from = e.Peer
				}
				events(e)
			}
			res, err := node.Receive(c.Context, cfg, node.ReceiveConfig{
				From: c.String("from"),
				Wait: c.Duration("wait"),
				Transfer: transfer.ReceiveOptions{
					Dir:    dir,
					Logger: cfg.Logger,
					Names:  names,
					Accept: func(ctx context.Context, m *transfer.Manifest) error {
						return confirm(c, out, m)
					},
				},
			})
			out.finishBar(err == nil)
			if errors.Is(err, node.ErrNoShare) && c.String("signal") == "" && noOtherInstance(cfg) {
				err = fmt.Errorf("%w; no other lanft was found on this network (`lanft doctor` checks what discovery needs)", err)
			}
			if c.Context.Err() != nil {
				out.emit(node.Event{Kind: "error", Peer: from, Text: "interrupted"}, nil)
				return cli.Exit("interrupted; run the same command again to resume (the .part files are kept)", exitInterrupted)
			}
			if err != nil {
				err = nameHint(err)
				out.emit(node.Event{Kind: "error", Peer: from, Text: oneLine(err)}, nil)
				return err
			}
			abs, _ := filepath.Abs(dir)
			out.emit(node.Event{Kind: "done", Peer: from, Done: res.Bytes + res.Skipped, Size: res.Bytes + res.Skipped, Transferred: res.Bytes},
				map[string]any{"dir": abs, "files": res.Files, "skipped": res.Skipped, "renamed": res.Renamed})
			if out.json {
				return nil
			}
			fmt.Fprintf(c.App.ErrWriter, "received %d file(s) into %s (%s transferred, %s already there)\n",
				len(res.Files), abs, transfer.FormatSize(res.Bytes), transfer.FormatSize(res.Skipped))
			for _, from := range slices.Sorted(maps.Keys(res.Renamed)) {
				to := res.Renamed[from]
				fmt.Fprintf(c.App.ErrWriter, "  %s saved as %s: %s\n", transfer.DisplayName(from), transfer.DisplayName(to), res.RenameReason(from))
			}
			return nil
		},
	}
}

// nameHint says what to do about a name the signaling host refused.
func nameHint(err error) error {
	if errors.Is(err, signal.ErrNameTaken) {
		return fmt.Errorf("%w; pick another with --name", err)
	}
	return err
}

// writableDir makes sure dir is a folder this user can write into, creating
// it if needed, before anything is asked of the network: a transfer must
// not be accepted only to fail on the first write.
func writableDir(dir string) error {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return cli.Exit(fmt.Sprintf("receive: --out %s is not a folder", dir), 2)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("receive: cannot create the folder %s: %w", dir, unwrapPath(err))
	}
	f, err := os.CreateTemp(dir, ".lanft-write-check-*")
	if err != nil {
		return fmt.Errorf("receive: cannot write into %s: %w", dir, unwrapPath(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// unwrapPath drops the *PathError's repetition of the path and operation:
// "permission denied" rather than "open /x/.lanft-...: permission denied".
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// noOtherInstance reports whether LAN discovery saw no other lanft, the
// case where `lanft doctor` can help.
func noOtherInstance(cfg node.Config) bool {
	lan, ok := cfg.Hosts.(*host.LAN)
	if !ok {
		return false
	}
	for _, p := range lan.State().Peers {
		if !p.Self {
			return false
		}
	}
	return true
}

// confirm shows the manifest and asks, unless --yes.
func confirm(c *cli.Context, out *output, m *transfer.Manifest) error {
	if out.json {
		// Scripts get the entries, up to a line size any reader copes with.
		const maxListed = 1000
		entries := m.Entries[:min(len(m.Entries), maxListed)]
		out.emit(node.Event{Kind: "manifest", Size: m.TotalSize()}, map[string]any{"files": m.Files(),
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
				fmt.Fprintf(c.App.ErrWriter, "  %s %10s\n", padWidth(transfer.DisplayName(e.Path), 50), transfer.FormatSize(e.Size))
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

// peersWait bounds how long `lanft peers` looks for a signaling host.
const peersWait = 10 * time.Second

func peersCommand() *cli.Command {
	return &cli.Command{
		Name:  "peers",
		Usage: "list who is online and what they share",
		Description: `Examples:
   lanft peers
   lanft peers --json --signal ws://10.0.0.2:7780/ws`,
		Flags: withGlobals(signalFlag, fallbackFlag, nameFlag, interfaceFlag, jsonFlag),
		Action: func(c *cli.Context) error {
			out, cfg, stop, err := nodeConfig(c)
			if err != nil {
				return err
			}
			defer stop()
			cfg.Events = nil
			ctx, cancel := context.WithTimeout(c.Context, peersWait)
			defer cancel()
			peers, host, err := node.ListPeers(ctx, cfg)
			if errors.Is(err, context.DeadlineExceeded) && c.Context.Err() == nil {
				return fmt.Errorf("no signaling host answered within %s (`lanft doctor` checks what discovery needs)", peersWait)
			}
			if err != nil {
				return err
			}
			found := howFound(cfg)
			if out.json {
				rows := make([]map[string]any, 0, len(peers))
				for _, p := range peers {
					rows = append(rows, map[string]any{"name": p.Name, "lanft": p.Meta, "found": found(p.Name)})
				}
				out.emit(node.Event{Kind: "peers", Host: host}, map[string]any{"peers": rows})
				return nil
			}
			fmt.Fprintf(c.App.Writer, "signaling host: %s\n", host)
			if len(peers) == 0 {
				fmt.Fprintln(c.App.Writer, "nobody else is online")
				return nil
			}
			rows := [][]string{{"NAME", "ROLE", "SHARES", "FOUND"}}
			for _, p := range peers {
				role, shares := "other client", ""
				if p.Meta != nil {
					role = p.Meta.Role
					if p.Sharing() {
						shares = fmt.Sprintf("%s (%d file(s), %s)", transfer.DisplayName(p.Meta.Title), p.Meta.Files, transfer.FormatSize(p.Meta.Bytes))
					}
				}
				rows = append(rows, []string{transfer.DisplayName(p.Name), role, shares, found(p.Name)})
			}
			printTable(c.App.Writer, rows)
			return nil
		},
	}
}

// howFound says how a peer name was found: over mDNS (on which interface,
// at which address, and whether it is the elected host) or only through
// the signaling host.
func howFound(cfg node.Config) func(name string) string {
	lan, ok := cfg.Hosts.(*host.LAN)
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

// printTable writes rows as columns lined up by display width (names may
// hold wide characters).
func printTable(w io.Writer, rows [][]string) {
	var widths []int
	for _, r := range rows {
		for i, cell := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], uniseg.StringWidth(cell))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, cell := range r {
			if i == len(r)-1 {
				b.WriteString(cell)
			} else {
				b.WriteString(padWidth(cell, widths[i]+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
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
	case "share":
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
	lan, err := host.NewLAN(host.LANConfig{
		Name:       name,
		Priority:   priority,
		Interfaces: c.StringSlice("interface"),
		Port:       lastPagePort(c),
		Logger:     log,
		Fallback:   fallback,
		Notice:     func(s string) { out.event(node.Event{Kind: "info", Text: s}) },
	})
	if err != nil {
		return nil, nil, err
	}
	rememberPagePort(c, lan)
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
