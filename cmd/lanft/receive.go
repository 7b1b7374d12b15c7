package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/internal/host"
	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/transfer"
)

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
			signalFlag, fallbackFlag, noRelayFlag, peerFlag, noProbeFlag, nameFlag, interfaceFlag, jsonFlag, codeFlag, acceptKeyFlag, pathFlag,
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
				if e.Kind == node.EventPeer {
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
				out.emit(node.Event{Kind: node.EventError, Peer: from, Text: "interrupted"}, nil)
				return cli.Exit("interrupted; run the same command again to resume (the .part files are kept)", exitInterrupted)
			}
			if err != nil {
				err = nameHint(err)
				out.emit(node.Event{Kind: node.EventError, Peer: from, Text: oneLine(err)}, nil)
				return err
			}
			abs, _ := filepath.Abs(dir)
			out.emit(node.Event{Kind: node.EventDone, Peer: from, Done: res.Bytes + res.Skipped, Size: res.Bytes + res.Skipped, Transferred: res.Bytes},
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
		out.emit(node.Event{Kind: node.EventManifest, Size: m.TotalSize()}, map[string]any{"files": m.Files(),
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
