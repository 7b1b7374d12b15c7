// Package web is lanft's browser page: a small app, embedded in the binary,
// that every lanft instance serves on the port of its signaling WebSocket.
// A person opens http://LAN-ADDRESS:PORT/ (or scans its QR code) and trades
// files with any lanft or any other browser on the LAN, peer to peer.
//
// The page is a client of the seed protocol like the CLI (login, userlist,
// updata, offer/answer/candidate) with the CLI's additive "lanft" objects
// (share announcements, identity proofs), and speaks lanft's data-channel
// format: the preamble of internal/node (with the --code exchange), then
// the transfer package's frames. Identity proofs, the verification code,
// CPace and the manifest checks are lanft's Go code compiled to
// WebAssembly (web/wasm): a page served over plain http on a LAN address
// is not a secure context and has no crypto.subtle. SHA-256 is plain
// JavaScript (static/sha256.js, tested against Go's), which Chromium runs
// faster than Go's compiled to WebAssembly.
//
// Files (web/static): index.html, app.js (signaling, peers, identity
// checks, UI), proto.js (the data-channel byte stream, preamble and
// transfer frames), sha256.js, lanft.wasm and Go's wasm_exec.js, both
// made by `go generate ./web` and committed (TestWasmUpToDate).
//
//	browser ── GET / ──────────────▶ this instance (static files, CSP)
//	browser ── WebSocket /ws ──────▶ this instance ══ bridge ══▶ elected host
//	browser ◀═══════ WebRTC data channel ═══════▶ lanft CLI or another browser
//
// The page trusts the instance whose URL was opened: that instance bridges
// the page's WebSocket to whichever instance is the elected signaling host
// at the time, so the URL keeps working when the election changes.
package web

//go:generate go run ./internal/genwasm -o static

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	qrcode "github.com/skip2/go-qrcode"
)

//go:embed static
var static embed.FS

// MaxReceive is the most a page takes in one share over the data
// channel: it keeps what it receives there in Blobs (which Chromium pages
// out to disk) until the person saves them. The page refuses a bigger
// share with a message that names this limit. Over the HTTP path (from a
// lanft CLI on the LAN) the browser's download manager saves the bytes
// and no limit applies.
const MaxReceive = 2 << 30

// CSP is the page's Content Security Policy: its own scripts only, no
// inline code, no eval (WebAssembly compilation excepted), WebSockets to
// its own origin only; fetches to its own origin and to plain http (the
// HTTP path of a lanft CLI on the LAN, whose address the page learns only
// over a verified data channel: web/static/httppath.js).
const CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' http:; " +
	"img-src 'self'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Upstream says where the page's WebSocket goes: the elected host.
// *host.LAN implements it.
type Upstream interface {
	Host(ctx context.Context) (url string, stale <-chan struct{}, err error)
}

// Config is what the handler needs.
type Config struct {
	// Signal serves WebSocket upgrades (the signaling server's handler).
	Signal http.Handler
	// Upstream, when set, is where a browser's WebSocket on "/" or "/ws"
	// is bridged; nil serves it with Signal.
	Upstream Upstream
	// Admits applies the Host and Origin checks of the signaling server
	// (signal.Server.Admits).
	Admits func(*http.Request) bool
	// Dial opens the bridge's connections to the host (nil: net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// PingInterval is how often the bridge pings a page (2s); a page
	// silent for two intervals is disconnected.
	PingInterval time.Duration
	// MaxPages bounds the pages bridged at once (256).
	MaxPages int
	Logger   *slog.Logger
}

// Web serves the page and dispatches WebSocket upgrades: a browser's (it
// sends an Origin) on "/" or "/ws" to the bridge, any other to Signal, "/"
// as "/ws" (the original tool's clients connect at the root).
type Web struct {
	h      http.Handler
	bridge *bridge
	relays *relays
}

// ServeHTTP implements http.Handler.
func (web *Web) ServeHTTP(w http.ResponseWriter, r *http.Request) { web.h.ServeHTTP(w, r) }

// Close ends every bridged WebSocket and waits for them. It is idempotent;
// bridges asked for afterwards are refused.
func (web *Web) Close() error {
	web.bridge.close()
	web.relays.close()
	return nil
}

// New checks cfg and returns the handler.
func New(cfg Config) (*Web, error) {
	if cfg.Signal == nil || cfg.Admits == nil {
		return nil, errors.New("web: Signal and Admits are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 2 * time.Second
	}
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = 256
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(sub)
	b := newBridge(cfg)
	rs := newRelays(cfg.Admits)
	return &Web{bridge: b, relays: rs, h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == relayPrefix || strings.HasPrefix(r.URL.Path, relayPrefix+"/") {
			rs.ServeHTTP(w, r) // the relay between two pages (relay.go)
			return
		}
		if isUpgrade(r) {
			root := r.URL.Path == "/" || r.URL.Path == "/ws"
			switch {
			case root && cfg.Upstream != nil && r.Header.Get("Origin") != "":
				if !cfg.Admits(r) {
					http.Error(w, "web: origin or host not accepted", http.StatusForbidden)
					return
				}
				b.serve(w, r)
			case r.URL.Path == "/":
				r2 := r.Clone(r.Context())
				r2.URL.Path = "/ws"
				cfg.Signal.ServeHTTP(w, r2)
			default:
				cfg.Signal.ServeHTTP(w, r)
			}
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if !cfg.Admits(r) {
			http.Error(w, "web: host name not accepted", http.StatusMisdirectedRequest)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "web: method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == "/lanft.wasm" && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			gz, err := wasmGzip()
			if err != nil {
				http.Error(w, "web: compress lanft.wasm", http.StatusInternalServerError)
				return
			}
			h.Set("Content-Type", "application/wasm")
			h.Set("Content-Encoding", "gzip")
			h.Set("Vary", "Accept-Encoding")
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(gz))
			return
		}
		if r.URL.Path == "/qr.png" {
			png, err := qrcode.Encode("http://"+r.Host+"/", qrcode.Medium, 256)
			if err != nil {
				http.Error(w, "web: QR code", http.StatusInternalServerError)
				return
			}
			h.Set("Content-Type", "image/png")
			w.Write(png)
			return
		}
		files.ServeHTTP(w, r)
	})}, nil
}

// wasmGzip is lanft.wasm compressed, once: 4.7 MB is a lot for a phone
// on Wi-Fi, gzip makes it about a quarter.
var wasmGzip = sync.OnceValues(func() ([]byte, error) {
	raw, err := static.ReadFile("static/lanft.wasm")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
})

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// QR renders url as a QR code for a terminal (two modules per character
// cell, dark on light).
func QR(url string) (string, error) {
	q, err := qrcode.New(url, qrcode.Low)
	if err != nil {
		return "", err
	}
	return q.ToSmallString(false), nil
}

const bridgeDialTimeout = 10 * time.Second
