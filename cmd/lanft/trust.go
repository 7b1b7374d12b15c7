package main

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/transfer"
)

// The events of these commands' --json output.
const (
	eventDevice  node.EventKind = "device"  // one known device
	eventHistory node.EventKind = "history" // one history entry, in "entry"
)

// The commands about known devices and what was sent: devices, trust,
// untrust and history. They read the config folder only; nothing goes on
// the network.

func devicesCommand() *cli.Command {
	return &cli.Command{
		Name:  "devices",
		Usage: "list the devices this one knows: name, device id, pinned key, trust",
		Description: `A device is known once a first contact with it was verified (its key is pinned
to its name). Trusted devices' sends to ` + "`lanft up`" + ` are accepted without asking.`,
		Flags: withGlobals(jsonFlag),
		Action: func(c *cli.Context) error {
			pins, err := pinsOf(c)
			if err != nil {
				return err
			}
			devs, err := pins.Devices()
			if err != nil {
				return err
			}
			out := newOutput(c.Bool("json"), c.App.Writer, c.App.ErrWriter)
			if out.json {
				for _, d := range devs {
					out.emit(node.Event{Kind: eventDevice}, map[string]any{"name": d.Name, "device": d.DeviceID, "key": d.Key, "first_seen": d.First, "trusted": d.Trusted})
				}
				return nil
			}
			if len(devs) == 0 {
				fmt.Fprintln(c.App.Writer, "no known devices yet")
				return nil
			}
			rows := [][]string{{"NAME", "DEVICE", "TRUSTED", "FIRST SEEN", "KEY"}}
			for _, d := range devs {
				trusted := "no"
				if d.Trusted {
					trusted = "yes"
				}
				rows = append(rows, []string{transfer.DisplayName(d.Name), d.DeviceID, trusted, d.First.Local().Format(time.DateTime), d.Key})
			}
			printTable(c.App.Writer, rows)
			return nil
		},
	}
}

func trustCommand(trust bool) *cli.Command {
	name, usage := "trust", "accept sends from the known device NAME without asking (lanft up)"
	if !trust {
		name, usage = "untrust", "ask again about sends from the device NAME"
	}
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "NAME",
		Flags:     withGlobals(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit(fmt.Sprintf("%s: name one device (`lanft devices` lists them)", name), 2)
			}
			pins, err := pinsOf(c)
			if err != nil {
				return err
			}
			set := pins.Trust
			if !trust {
				set = pins.Untrust
			}
			d, err := set(c.Args().First())
			if errors.Is(err, identity.ErrUnknownName) {
				return cli.Exit(fmt.Sprintf("%s: %v; a device is known after a verified first contact (a send, share or receive with it)", name, err), 2)
			}
			if err != nil {
				return err
			}
			if trust {
				fmt.Fprintf(c.App.ErrWriter, "trusted %s (device %s): its sends are accepted without asking; a new key under that name never is\n",
					transfer.DisplayName(d.Name), d.DeviceID)
			} else {
				fmt.Fprintf(c.App.ErrWriter, "%s (device %s) is no longer trusted: its sends are asked about\n", transfer.DisplayName(d.Name), d.DeviceID)
			}
			return nil
		},
	}
}

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "show what was sent to and received by lanft send and lanft up, with paths and SHA-256",
		Flags: withGlobals(jsonFlag),
		Action: func(c *cli.Context) error {
			dir, err := configDir(c)
			if err != nil {
				return err
			}
			entries, err := openHistory(dir).entries()
			if err != nil {
				return err
			}
			out := newOutput(c.Bool("json"), c.App.Writer, c.App.ErrWriter)
			if out.json {
				for _, e := range entries {
					out.emit(node.Event{Kind: eventHistory}, map[string]any{"entry": e})
				}
				return nil
			}
			if len(entries) == 0 {
				fmt.Fprintln(c.App.Writer, "nothing sent or received yet")
				return nil
			}
			for _, e := range entries {
				printHistoryEntry(c, e)
			}
			return nil
		},
	}
}

func printHistoryEntry(c *cli.Context, e historyEntry) {
	w := c.App.Writer
	dir := "from"
	if e.Direction == "sent" {
		dir = "to"
	}
	fmt.Fprintf(w, "%s  %s %s %s (device %s)", e.When.Local().Format(time.DateTime), e.Direction, dir, transfer.DisplayName(e.Peer), e.Device)
	if e.Trusted {
		fmt.Fprint(w, ", trusted")
	}
	fmt.Fprintln(w)
	if e.Error != "" {
		fmt.Fprintf(w, "  failed: %s\n", e.Error)
	}
	if e.Text != "" {
		fmt.Fprintln(w, "  text:")
		fmt.Fprintln(w, indent(showText(e.Text), "    "))
	}
	if e.Dir != "" {
		fmt.Fprintf(w, "  into %s\n", transfer.DisplayName(e.Dir))
	}
	width := 0
	for _, f := range e.Files {
		width = max(width, uniseg.StringWidth(transfer.DisplayName(f.Path)))
	}
	for _, f := range e.Files {
		fmt.Fprintf(w, "  %s  %10s  sha256 %s\n", padWidth(transfer.DisplayName(f.Path), width), transfer.FormatSize(f.Size), f.SHA256)
	}
}

// showText is a text from another device made safe for a terminal: a line
// with anything but printable characters is shown quoted, with escapes.
func showText(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.ContainsFunc(l, notPrintable) {
			lines[i] = fmt.Sprintf("%q", l)
		}
	}
	return strings.Join(lines, "\n")
}

func notPrintable(r rune) bool { return r == utf8.RuneError || !unicode.IsPrint(r) }

func indent(s, by string) string { return by + strings.ReplaceAll(s, "\n", "\n"+by) }

func pinsOf(c *cli.Context) (*identity.Pins, error) {
	dir, err := configDir(c)
	if err != nil {
		return nil, err
	}
	return identity.OpenPins(dir), nil
}
