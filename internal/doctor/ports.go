package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// ListenPorts checks that lanft can listen on ifi's IPv4 addresses: TCP for
// signaling (one port for all of them, as lanft does) and UDP for WebRTC.
// Both ports are picked at run time, so the check binds port 0.
func ListenPorts(ifi *net.Interface) Result {
	r := Result{Check: "ports on " + ifi.Name, Status: Fail}
	ips := ipv4Addrs(ifi)
	if len(ips) == 0 {
		r.Detail = "no IPv4 address to listen on"
		r.Fix = "wait for DHCP or give " + ifi.Name + " an address"
		return r
	}
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	port := 0
	for _, ip := range ips {
		ln, err := net.Listen("tcp4", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		if err != nil {
			r.Detail = "cannot listen for signaling on TCP " + ip.String() + ": " + oneLine(unwrapOp(err))
			r.Fix = "a security policy forbids listening; allow lanft to accept TCP connections"
			return r
		}
		closers = append(closers, ln.Close)
		port = ln.Addr().(*net.TCPAddr).Port
	}
	udp, err := net.ListenPacket("udp4", net.JoinHostPort(ips[0].String(), "0"))
	if err != nil {
		r.Detail = "cannot open a UDP port for WebRTC on " + ips[0].String() + ": " + oneLine(unwrapOp(err))
		r.Fix = "a security policy forbids UDP sockets; allow lanft to use UDP"
		return r
	}
	closers = append(closers, udp.Close)
	r.Status = OK
	r.Detail = fmt.Sprintf("can listen on TCP %s (signaling) and UDP %s (WebRTC), ports picked at run time",
		net.JoinHostPort(ips[0].String(), strconv.Itoa(port)), udp.LocalAddr())
	return r
}

// Signal checks that a remote signaling host answers at rawURL with a
// WebSocket handshake. It closes the connection at once, without logging
// in.
func Signal(ctx context.Context, rawURL string, timeout time.Duration) Result {
	r := Result{Check: "signal " + rawURL, Status: Fail}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		r.Detail = "not a ws:// or wss:// URL"
		r.Fix = "use the URL `lanft signal` prints, like ws://192.168.1.20:7780/ws"
		return r
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"ws": "80", "wss": "443"}[u.Scheme]
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := websocket.Dialer{HandshakeTimeout: timeout, Proxy: http.ProxyFromEnvironment}
	start := time.Now()
	c, resp, err := d.DialContext(ctx, rawURL, nil)
	if err == nil {
		took := time.Since(start)
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.Close()
		r.Status = OK
		r.Detail = fmt.Sprintf("answered the WebSocket handshake in %s", took.Round(time.Millisecond))
		return r
	}
	r.Detail, r.Fix = diagnoseDial(err, resp, host, port, u.Path)
	return r
}

// diagnoseDial turns a failed WebSocket dial into a detail and a fix.
func diagnoseDial(err error, resp *http.Response, host, port, path string) (detail, fix string) {
	var dnsErr *net.DNSError
	hostPort := net.JoinHostPort(host, port)
	switch {
	case resp != nil && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusMisdirectedRequest):
		return fmt.Sprintf("%s refused the handshake (HTTP %d)", hostPort, resp.StatusCode),
			"the host accepts only names it knows: use its IP address, or start it with --allow-host " + host
	case resp != nil && resp.StatusCode == http.StatusNotFound:
		return fmt.Sprintf("%s answered HTTP 404: no WebSocket at %q", hostPort, path),
			"use the URL `lanft signal` prints, ending in /ws"
	case resp != nil && resp.StatusCode == http.StatusServiceUnavailable:
		return fmt.Sprintf("%s is up but full (HTTP 503, too many clients)", hostPort),
			"try again later, or run your own `lanft signal` host"
	case resp != nil:
		return fmt.Sprintf("%s answered HTTP %d, not a WebSocket handshake", hostPort, resp.StatusCode),
			"check that `lanft signal` runs there and the URL is the one it prints"
	case errors.As(err, &dnsErr):
		return "cannot resolve " + host + ": " + oneLine(dnsErr),
			"check the host name, or use the host's IP address"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens on " + hostPort + " (connection refused)",
			"start `lanft signal --listen ADDR:" + port + "` there, or fix the port"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "no answer from " + hostPort + " in time",
			"check the address, and that a firewall on the way allows TCP port " + port
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return "cannot reach " + hostPort + ": " + oneLine(unwrapOp(err)),
			"check that this machine is on the same network as the host"
	case strings.Contains(err.Error(), "tls"):
		return "TLS handshake with " + hostPort + " failed: " + oneLine(err),
			"use ws:// for a plain `lanft signal` host; wss:// needs a TLS proxy in front of it"
	default:
		return "handshake with " + hostPort + " failed: " + oneLine(unwrapOp(err)),
			"check the URL, and that `lanft signal` runs there"
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
