package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// A relay connection can also arrive as an HTTP upgrade on the signaling
// server's own scheme, so that it crosses whatever the signaling does
// (TLS on a wss:// host, a reverse proxy that passes WebSocket upgrades):
//
//	GET /ws/.relay HTTP/1.1            (UpgradeHandler, mounted by the host)
//	Upgrade: lanft-relay
//	Connection: Upgrade
//	                                   ◀── HTTP/1.1 101 Switching Protocols
//	then Magic + token and the status byte, as on a plain connection.

// UpgradeProtocol is the Upgrade header's token.
const UpgradeProtocol = "lanft-relay"

// UpgradeHandler takes over an upgrade request's connection and serves
// it as a relay connection.
func (s *Server) UpgradeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Upgrade"), UpgradeProtocol) {
			w.Header().Set("Upgrade", UpgradeProtocol)
			http.Error(w, "this is lanft's TCP relay: it answers only an upgrade to "+UpgradeProtocol, http.StatusUpgradeRequired)
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "the connection cannot be taken over", http.StatusInternalServerError)
			return
		}
		c, rw, err := hj.Hijack()
		if err != nil {
			return
		}
		c.SetDeadline(time.Time{})
		if rw.Reader.Buffered() > 0 { // the client spoke before the answer
			s.refused[RefusedNoToken].Add(1)
			c.Close()
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "+UpgradeProtocol+"\r\nConnection: Upgrade\r\n\r\n"); err != nil {
			c.Close()
			return
		}
		s.ServeConn(c, nil)
	})
}

// DialURL is Dial through an upgrade at u (ws://HOST:PORT/PATH, or wss://
// with TLS configured by tc; nil: the system's roots).
func DialURL(ctx context.Context, u string, tc *tls.Config, tok Token) (net.Conn, error) {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return nil, fmt.Errorf("relay: bad relay URL %q", u)
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", pu.Host)
	if err != nil {
		return nil, fmt.Errorf("relay: connect to %s: %w", pu.Host, err)
	}
	c := raw
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Now()) })
	defer stop()
	if pu.Scheme == "wss" || pu.Scheme == "https" {
		cfg := tc.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = pu.Hostname()
		}
		tlc := tls.Client(raw, cfg)
		if err := tlc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("relay: TLS to %s: %w", pu.Host, err)
		}
		c = tlc
	}
	if err := upgrade(c, pu); err != nil {
		c.Close()
		return nil, err
	}
	return handshakeClient(ctx, c, pu.Host, tok, stop)
}

// upgrade asks for the relay protocol at pu and reads the 101, not a byte
// more.
func upgrade(c net.Conn, pu *url.URL) error {
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", pu.RequestURI(), pu.Host, UpgradeProtocol)
	if _, err := io.WriteString(c, req); err != nil {
		return fmt.Errorf("relay: ask %s for the relay: %w", pu.Host, err)
	}
	br := bufio.NewReaderSize(c, 1)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("relay: %s answered no upgrade: %w", pu.Host, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols || br.Buffered() > 0 {
		return fmt.Errorf("relay: %s answered HTTP %s, not the relay (an older lanft, or a proxy that does not pass upgrades)", pu.Host, resp.Status)
	}
	return nil
}
