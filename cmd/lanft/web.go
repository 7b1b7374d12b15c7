package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/internal/host"
	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/web"
)

// showPage tells the user where this instance's browser page is: its URL
// and a QR code of it for a phone (a "page" event with --json). Only a
// LAN instance serves one; with --signal there is none to show.
func showPage(out *output, hosts node.Hosts) {
	lan, ok := hosts.(*host.LAN)
	if !ok {
		return
	}
	urls := lan.PageURLs()
	if len(urls) == 0 {
		return
	}
	if out.json {
		out.emit(node.Event{Kind: node.EventPage, Text: urls[0]}, map[string]any{"url": urls[0], "urls": urls})
		return
	}
	out.say("in a browser on the LAN: %s", urls[0])
	if qr, err := web.QR(urls[0]); err == nil {
		out.say("%s", qr)
	}
}

// pagePortFile, in the config folder, holds the port of the last share.
// A share tries it first, so that its page keeps its address across
// restarts: a browser keeps its device key and pins per address (origin),
// and a QR code or bookmark of it stays good.
const pagePortFile = "page-port"

// lastPagePort is the port a share tries first (0: none, or not a share).
func lastPagePort(c *cli.Context) int {
	if c.Command.Name != "share" {
		return 0
	}
	dir, err := configDir(c)
	if err != nil {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(dir, pagePortFile))
	if err != nil {
		return 0
	}
	port, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || port < 1 || port > 65535 {
		return 0
	}
	return port
}

// rememberPagePort keeps a share's port for next time (best effort).
func rememberPagePort(c *cli.Context, lan *host.LAN) {
	if c.Command.Name != "share" {
		return
	}
	if dir, err := configDir(c); err == nil && os.MkdirAll(dir, 0o700) == nil {
		_ = os.WriteFile(filepath.Join(dir, pagePortFile), []byte(strconv.Itoa(lan.Port())+"\n"), 0o600)
	}
}
