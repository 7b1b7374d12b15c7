package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/transfer"
)

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
		Flags: withGlobals(signalFlag, fallbackFlag, noRelayFlag, peerFlag, noProbeFlag, nameFlag, interfaceFlag, jsonFlag, codeFlag, acceptKeyFlag, pathFlag,
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
			out.emit(node.Event{Kind: node.EventSharing, Peer: cfg.Name, Size: m.TotalSize()}, map[string]any{"files": m.Files()})
			showPage(out, cfg.Hosts)
			err = node.Share(c.Context, cfg, src)
			out.finishBar(true)
			return nameHint(err)
		},
	}
}
