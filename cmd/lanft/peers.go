package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rivo/uniseg"
	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/discovery"
	"github.com/lanft/lanft/internal/host"
	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/transfer"
)

// peersWait bounds how long `lanft peers` looks for a signaling host.
const peersWait = 10 * time.Second

func peersCommand() *cli.Command {
	return &cli.Command{
		Name:  "peers",
		Usage: "list who is online and what they share",
		Description: `Examples:
   lanft peers
   lanft peers --json --signal ws://10.0.0.2:7780/ws`,
		Flags: withGlobals(signalFlag, fallbackFlag, noRelayFlag, peerFlag, noProbeFlag, nameFlag, interfaceFlag, jsonFlag),
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
				out.emit(node.Event{Kind: node.EventPeers, Host: host}, map[string]any{"peers": rows})
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

// howFound says how a peer name was found: over mDNS or the unicast
// probe (on which interface,
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
			if iface, ok := strings.CutSuffix(p.Iface, discovery.ProbeSuffix); ok {
				s = "unicast probe"
				if iface != "" {
					s += " on " + iface
				}
			}
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
