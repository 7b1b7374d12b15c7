package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/transfer"
)

// The exit codes of lanft send, one for each way a send fails that a
// script may want to tell apart (others exit 1, bad usage 2).
const (
	exitNotOnline = 3 // no device of that name takes sends
	exitDeclined  = 4 // the person at the device said no
	exitTimedOut  = 5 // nobody answered in time
	exitRefused   = 6 // refused unasked: not trusted, or a changed key
	exitBusy      = 7 // the device takes no more sends right now
)

func sendCommand() *cli.Command {
	return &cli.Command{
		Name:      "send",
		Usage:     "send files, a folder or a text to a device that is up (lanft up, or a page)",
		ArgsUsage: "FILE|DIR...",
		Description: `Finds the device named with --to among those that take sends, offers it the
files (or the --text) and sends them once it accepts. The device asks its user,
unless it trusts this one. Exit codes: 3 not online, 4 declined, 5 no answer in
time, 6 refused (not trusted, or a changed key), 7 busy.

Examples:
   lanft send --to laptop photos/ notes.txt
   lanft send --to phone --text "the wifi password is ..."`,
		Flags: withGlobals(signalFlag, fallbackFlag, nameFlag, interfaceFlag, jsonFlag, codeFlag, acceptKeyFlag, pathFlag,
			&cli.StringFlag{Name: "to", Usage: "send to the device named `NAME`", Required: true},
			&cli.StringFlag{Name: "text", Usage: "send this `TEXT` (at most 32 KiB) instead of files"},
			&cli.DurationFlag{Name: "wait", Value: 10 * time.Second, Usage: "wait this `DURATION` for the device to come online"},
		),
		Action: func(c *cli.Context) error {
			text := c.String("text")
			switch {
			case text != "" && c.NArg() > 0:
				return cli.Exit("send: give files or --text, not both", 2)
			case text == "" && c.NArg() == 0:
				return cli.Exit("send: name the files or folders to send, or give --text", 2)
			case len(text) > node.MaxPushText:
				return cli.Exit(fmt.Sprintf("send: the text has %d bytes; a text is at most %d (send a file instead)", len(text), node.MaxPushText), 2)
			}
			for _, a := range c.Args().Slice() {
				if a == "-" {
					return cli.Exit("send: sending standard input (-) is not supported yet; save it to a file and send that", 2)
				}
			}
			out, cfg, stop, err := nodeConfig(c)
			if err != nil {
				return err
			}
			defer stop()
			dir, err := configDir(c)
			if err != nil {
				return err
			}
			var src *transfer.Source
			if text == "" {
				out.say("hashing %d path(s)...", c.NArg())
				if src, err = transfer.NewSource(c.Context, c.Args().Slice(), cfg.Logger); err != nil {
					return err
				}
			}
			to := c.String("to")
			res, err := node.Send(c.Context, cfg, node.SendConfig{To: to, Wait: c.Duration("wait"), Source: src, Text: text})
			out.finishBar(err == nil)
			if c.Context.Err() != nil {
				out.emit(node.Event{Kind: node.EventError, Peer: to, Text: "interrupted"}, nil)
				return cli.Exit("interrupted", exitInterrupted)
			}
			if err != nil {
				err = nameHint(err)
				reason, code := sendFailure(err)
				out.emit(node.Event{Kind: node.EventError, Peer: to, Text: oneLine(err)}, map[string]any{"reason": reason})
				return cli.Exit(oneLine(err), code)
			}
			if herr := openHistory(dir).add(sentEntry(res.Peer, res.Device, src, text, nil)); herr != nil {
				out.say("%v", herr)
			}
			out.emit(node.Event{Kind: node.EventDone, Peer: res.Peer, Device: res.Device, Done: res.Total, Size: res.Total, Transferred: res.Bytes, Path: res.Path}, nil)
			if text != "" {
				out.say("%s accepted the text", transfer.DisplayName(res.Peer))
			} else {
				m := src.Manifest()
				out.say("sent %d file(s), %s, to %s (%s transferred)", m.Files(), transfer.FormatSize(m.TotalSize()),
					transfer.DisplayName(res.Peer), transfer.FormatSize(res.Bytes))
			}
			return nil
		},
	}
}

// sendFailure is the reason word and exit code of a failed send.
func sendFailure(err error) (reason string, code int) {
	switch {
	case errors.Is(err, node.ErrNotOnline):
		return "not-online", exitNotOnline
	case errors.Is(err, node.ErrDeclined):
		return node.ReasonDeclined, exitDeclined
	case errors.Is(err, node.ErrTimedOut):
		return node.ReasonTimeout, exitTimedOut
	case errors.Is(err, node.ErrPushRefused), errors.Is(err, identity.ErrKeyChanged):
		return node.ReasonRefused, exitRefused
	case errors.Is(err, node.ErrBusy):
		return node.ReasonBusy, exitBusy
	}
	return "error", 1
}
