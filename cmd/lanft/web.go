package main

import (
	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/web"
)

// showPage tells the user where this instance's browser page is: its URL
// and a QR code of it for a phone (a "page" event with --json). Only a
// LAN instance serves one; with --signal there is none to show.
func showPage(out *output, hosts node.Hosts) {
	lan, ok := hosts.(*node.LAN)
	if !ok {
		return
	}
	urls := lan.PageURLs()
	if len(urls) == 0 {
		return
	}
	if out.json {
		out.emit(map[string]any{"event": "page", "url": urls[0], "urls": urls})
		return
	}
	out.say("in a browser on the LAN: %s", urls[0])
	if qr, err := web.QR(urls[0]); err == nil {
		out.say("%s", qr)
	}
}
