package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
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
   lanft send --to phone --text "the wifi password is ..."
   tar c photos/ | lanft send --to desk --as photos.tar -`,
		Flags: withGlobals(signalFlag, fallbackFlag, noRelayFlag, peerFlag, noProbeFlag, nameFlag, interfaceFlag, jsonFlag, codeFlag, acceptKeyFlag, pathFlag,
			&cli.StringFlag{Name: "to", Usage: "send to the device named `NAME`", Required: true},
			&cli.StringFlag{Name: "text", Usage: "send this `TEXT` (at most 32 KiB) instead of files"},
			&cli.StringFlag{Name: "as", Value: "stdin", Usage: "with -: the device saves standard input under this file `NAME`"},
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
			stdin := c.NArg() == 1 && c.Args().First() == "-"
			counted := newHashingReader(c.App.Reader) // for the history of a stdin send
			if !stdin && slices.Contains(c.Args().Slice(), "-") {
				return cli.Exit("send: - (standard input) is sent alone, without files", 2)
			}
			out, cfg, stop, err := nodeConfig(c)
			if err != nil {
				return err
			}
			defer stop()
			out.outbound = true
			dir, err := configDir(c)
			if err != nil {
				return err
			}
			var src *transfer.Source
			switch {
			case stdin:
				if src, err = transfer.NewStreamSource(c.String("as"), counted); err != nil {
					return cli.Exit(fmt.Sprintf("send: --as: %v", err), 2)
				}
			case text == "":
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
			entry := sentEntry(res.Peer, res.Device, src, text, nil)
			if stdin && len(entry.Files) == 1 {
				entry.Files[0].Size, entry.Files[0].SHA256 = counted.sum()
			}
			if herr := openHistory(dir).add(entry); herr != nil {
				out.say("%v", herr)
			}
			out.emit(node.Event{Kind: node.EventDone, Peer: res.Peer, Device: res.Device, Done: res.Total, Size: res.Total, Transferred: res.Bytes, Path: res.Path}, nil)
			switch {
			case text != "":
				out.say("%s accepted the text", transfer.DisplayName(res.Peer))
			case stdin:
				out.say("sent standard input, %s, to %s as %s", transfer.FormatSize(res.Bytes), transfer.DisplayName(res.Peer), transfer.DisplayName(c.String("as")))
			default:
				m := src.Manifest()
				moved := fmt.Sprintf("%s transferred", transfer.FormatSize(res.Bytes))
				if res.Bytes == 0 && m.TotalSize() > 0 {
					moved = "it had them already"
				}
				out.say("sent %d file(s), %s, to %s (%s)", m.Files(), transfer.FormatSize(m.TotalSize()),
					transfer.DisplayName(res.Peer), moved)
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

// hashingReader counts and hashes what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashingReader(r io.Reader) *hashingReader { return &hashingReader{r: r, h: sha256.New()} }

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// sum is the size and lowercase hex SHA-256 of what was read.
func (h *hashingReader) sum() (int64, string) { return h.n, hex.EncodeToString(h.h.Sum(nil)) }
