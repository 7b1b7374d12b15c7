package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/transfer"
)

func upCommand() *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "stay online as a device others can send files and texts to",
		Description: `Stays online (on the LAN, or at --signal) as a device that takes sends from
` + "`lanft send`" + ` and from pages. Each send is asked about: the sender's name, device id,
verification code and what it sends; y/N, declined after --ask-timeout. Sends from
trusted devices (` + "`lanft trust NAME`" + `) are accepted at once, always verified; a changed
key is refused. Files land in --out (default: lanft in your Downloads folder); a name
that exists already is never overwritten. Texts are shown in full. Everything is kept
in ` + "`lanft history`" + `.

Examples:
   lanft up
   lanft up --out ~/inbox --only-trusted`,
		Flags: withGlobals(
			signalFlag, fallbackFlag, noRelayFlag, peerFlag, noProbeFlag, nameFlag, interfaceFlag, jsonFlag, codeFlag, acceptKeyFlag, pathFlag,
			&cli.StringFlag{Name: "out", Usage: "save into `DIR` (default: lanft in your Downloads folder)"},
			&cli.BoolFlag{Name: "only-trusted", Usage: "refuse sends from devices that are not trusted, without asking"},
			&cli.DurationFlag{Name: "ask-timeout", Value: askTimeout, Usage: "decline a send nobody answered within this `DURATION`"},
			&cli.BoolFlag{Name: "windows-names", Usage: "save names Windows cannot hold under safe names, as on Windows"},
		),
		Action: func(c *cli.Context) error {
			dir := c.String("out")
			if dir == "" {
				dir = filepath.Join(downloadsDir(), "lanft")
			}
			if err := writableDir(dir); err != nil {
				return err
			}
			abs, _ := filepath.Abs(dir)
			out, cfg, stop, err := nodeConfig(c)
			if err != nil {
				return err
			}
			defer stop()
			cdir, err := configDir(c)
			if err != nil {
				return err
			}
			hist := openHistory(cdir)
			ask := newAsker(c, out)
			ask.timeout = c.Duration("ask-timeout")
			names := transfer.NamesNative
			if c.Bool("windows-names") {
				names = transfer.NamesWindows
			}
			cfg.Events = upEvents(out, ask.wait())
			out.inbound = true
			out.onOnline = func(e node.Event) string {
				return fmt.Sprintf("up as %q at %s; sends are saved into %s. Ctrl-C stops.", cfg.Name, e.Host, abs)
			}
			showPage(out, cfg.Hosts)
			err = node.Up(c.Context, cfg, node.UpConfig{
				Dir:         dir,
				Names:       names,
				OnlyTrusted: c.Bool("only-trusted"),
				Decide: func(ctx context.Context, r node.PushRequest) node.Decision {
					return askPush(ctx, ask, r)
				},
				Received: func(r node.Received) {
					if err := hist.add(receivedEntry(r, abs)); err != nil {
						out.event(node.Event{Kind: node.EventError, Text: err.Error()})
					}
				},
			})
			out.finishBar(true)
			return nameHint(err)
		},
	}
}

// askPush puts a send to the person at lanft up.
func askPush(ctx context.Context, a *asker, r node.PushRequest) node.Decision {
	who := transfer.DisplayName(r.Peer)
	seen := "seen before"
	if r.First {
		seen = "first contact"
	}
	text := fmt.Sprintf("%s (device %s, %s) wants to send %s; verification code %s (it must match on %s's screen)",
		who, r.Device, seen, r.Offer.Describe(), r.Code, who)
	extra := map[string]any{"files": r.Offer.Files, "total": r.Offer.Bytes, "title": r.Offer.Title, "first": r.First, "stream": r.Offer.Stream}
	if r.Offer.IsText() {
		extra["text_length"] = len(r.Offer.Text)
	}
	accept, timedOut := a.question(ctx, node.Event{Kind: node.EventAsk, Peer: r.Peer, Device: r.Device, Code: r.Code, Text: text}, extra,
		fmt.Sprintf("Accept from %s? [y/N] ", who))
	return node.Decision{Accept: accept, TimedOut: timedOut}
}

// upEvents is lanft up's event callback: the output's, with words for a
// decline, a timeout, a trusted send and a text.
func upEvents(out *output, wait time.Duration) func(node.Event) {
	return func(e node.Event) {
		if !out.json {
			who := transfer.DisplayName(e.Peer)
			switch {
			case e.Kind == node.EventText:
				out.say("%s sent a text:\n%s", who, indent(showText(e.Text), "  "))
				return
			case e.Kind == node.EventPush:
				out.say("%s", e.Text)
				return
			case e.Kind == node.EventRefused && e.Text == node.ReasonTimeout:
				e.Text = fmt.Sprintf("no answer within %s: declined", wait)
			case e.Kind == node.EventRefused && e.Text == node.ReasonRefused:
				e.Text = "not a trusted device (--only-trusted)"
			}
		}
		out.event(e)
	}
}

// downloadsDir is the user's Downloads folder: xdg-user-dir's DOWNLOAD
// where it is set up, else ~/Downloads.
func downloadsDir() string {
	if b, err := exec.Command("xdg-user-dir", "DOWNLOAD").Output(); err == nil {
		if d := strings.TrimSpace(string(b)); d != "" && filepath.IsAbs(d) {
			return d
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "."
	}
	return filepath.Join(home, "Downloads")
}
