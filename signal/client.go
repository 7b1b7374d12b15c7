package signal

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Client errors that callers branch on.
var (
	// ErrLoginRefused: the server answered login with success false.
	ErrLoginRefused = errors.New("login refused")
	// ErrNameTaken: the login was refused because the name is in use (it
	// wraps ErrLoginRefused). A client that just logged out may still hold
	// it for a moment.
	ErrNameTaken = fmt.Errorf("%w: name in use", ErrLoginRefused)
	// ErrConnectionLost: the WebSocket to the server ended.
	ErrConnectionLost = errors.New("connection to the signaling host lost")
)

// maxServerMessage bounds a message from the server. It is larger than
// MaxMessageSize because a userlist carries every user's meta (up to
// MaxMetaSize each).
const maxServerMessage = MaxMessageSize * 64

// ClientConfig says where and as whom to log in.
type ClientConfig struct {
	URL  string // ws://host:port/ws
	Name string
	// Meta is the additive "lanft" object sent with login (see Message).
	Meta   json.RawMessage
	Header http.Header
	Logger *slog.Logger
	// PingInterval is how often the client pings the server (5s); a server
	// silent for three intervals is taken as gone.
	PingInterval time.Duration
	// TLS configures a wss:// connection; nil verifies the server's
	// certificate against the system's roots (SSL_CERT_FILE and
	// SSL_CERT_DIR add others on Linux).
	TLS *tls.Config
	// NetDialContext opens the TCP connection (nil: a net.Dialer's), for
	// a client that picks its source address.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client is a logged-in connection to a signaling server. It keeps the
// online-user list from userlist and updata, and hands every other message
// (offer, answer, candidate, leave, error) to Messages.
type Client struct {
	cfg  ClientConfig
	ws   *websocket.Conn
	name string

	writeMu sync.Mutex

	mu    sync.Mutex
	peers []PeerInfo // online users, login order, self included
	ice   []ICEServer
	// calls: the host mints ICE servers per call (CallICEServers).
	calls     bool
	callSeq   uint64
	callWaits map[uint64]chan LoginInfo
	// relayWaits: Relay's waiters, by the peer asked for (relay.go).
	relayWaits map[string]chan RelayGrant
	noRelay    string // LoginInfo.NoRelay

	messages chan Message
	changes  chan struct{}
}

// Dial connects to cfg.URL and logs in. It returns once the server has
// accepted the login and sent the user list; a refused login returns an
// error wrapping ErrLoginRefused and a *ServerError with the server's
// reason and code; so does a refused upgrade (HTTP 429, or any status
// with a CodeHeader).
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = 5 * time.Second
	}
	if err := CheckName(cfg.Name); err != nil {
		return nil, fmt.Errorf("signal: %w", err)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 8192, WriteBufferSize: 8192,
		TLSClientConfig: cfg.TLS, Proxy: http.ProxyFromEnvironment, NetDialContext: cfg.NetDialContext}
	ws, resp, err := d.DialContext(ctx, cfg.URL, cfg.Header)
	if err != nil {
		switch {
		case resp != nil && (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound):
			return nil, fmt.Errorf("signal: %s answered HTTP %s: it is not a lanft signaling endpoint (lanft's is ws://HOST:PORT%s)",
				cfg.URL, resp.Status, Path)
		case resp != nil && resp.StatusCode == http.StatusTooManyRequests:
			refused := &ServerError{Code: resp.Header.Get(CodeHeader), Message: refusalText(resp)}
			return nil, fmt.Errorf("signal: %s refused the connection: %w (HTTP %s)", cfg.URL, refused, resp.Status)
		case resp != nil && resp.Header.Get(CodeHeader) != "":
			refused := &ServerError{Code: resp.Header.Get(CodeHeader), Message: bodyLine(resp)}
			return nil, fmt.Errorf("signal: %s refused the connection (HTTP %s): %w", cfg.URL, resp.Status, refused)
		case resp != nil:
			return nil, fmt.Errorf("signal: %s refused the connection (HTTP %s)", cfg.URL, resp.Status)
		}
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			err = opErr.Err // "connection refused", not the addresses again
			var sysErr *os.SyscallError
			if errors.As(err, &sysErr) {
				err = sysErr.Err
			}
		}
		return nil, fmt.Errorf("signal: cannot reach the signaling host %s: %w", cfg.URL, err)
	}
	ws.SetReadLimit(maxServerMessage)
	c := &Client{
		cfg:      cfg,
		ws:       ws,
		name:     cfg.Name,
		messages: make(chan Message, 256),
		changes:  make(chan struct{}, 1),
	}
	if err := c.login(ctx); err != nil {
		ws.Close()
		return nil, err
	}
	return c, nil
}

// refusalText is the first line of a refused upgrade's body (the server's
// reason, see admitConnLocked), without its "signal: " prefix.
func refusalText(resp *http.Response) string {
	if line := bodyLine(resp); line != "" {
		return line
	}
	return "too many connections from this address"
}

// bodyLine is the first line of resp's body without its "signal: "
// prefix, or "" when it is no text to show.
func bodyLine(resp *http.Response) string {
	var b []byte
	if resp.Body != nil {
		b, _ = io.ReadAll(io.LimitReader(resp.Body, 1024))
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimPrefix(strings.TrimSpace(line), "signal: ")
	if !utf8.ValidString(line) || strings.ContainsFunc(line, unicode.IsControl) {
		return ""
	}
	return line
}

func (c *Client) login(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = c.ws.SetReadDeadline(time.Now()) })
	defer stop()
	if err := c.write(Message{Type: TypeLogin, Name: c.name, Meta: c.cfg.Meta}); err != nil {
		return err
	}
	loggedIn := false
	for {
		m, err := c.read()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("signal: log in to %s: %w", c.cfg.URL, ctx.Err())
			}
			return fmt.Errorf("signal: log in to %s: %w", c.cfg.URL, err)
		}
		switch {
		case m.Type == TypeLogin && m.Success != nil && !*m.Success:
			refused := m.Refusal()
			if refused.Message == "" {
				refused.Message = "no reason given"
			}
			sentinel := ErrLoginRefused
			if nameTaken(refused) {
				sentinel = ErrNameTaken
			}
			return fmt.Errorf("signal: log in as %q: %w: %w", c.name, sentinel, refused)
		case m.Type == TypeLogin:
			loggedIn = true
			c.setInfo(m.Meta)
		case m.Type == TypeUserlist && loggedIn:
			c.setUserlist(m)
			return nil
		case m.Type == TypeError:
			c.cfg.Logger.Debug("signal: error during login", "message", m.Message)
		default:
			// Anything else before the list is kept for the caller.
			c.track(m)
		}
	}
}

// nameTaken reports whether a refused login says the name is in use: by
// its code, or from a server that sends none (an older lanft), its words.
func nameTaken(e *ServerError) bool {
	if e.Code != "" {
		return e.Code == CodeNameTaken
	}
	return strings.Contains(e.Message, "is taken") || strings.Contains(e.Message, "too close to")
}

func (c *Client) read() (Message, error) {
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return Message{}, err
	}
	return decode(data, maxServerMessage)
}

func (c *Client) write(m Message) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("signal: send %s: %w", m.Type, err)
	}
	return nil
}

// Name is the name this client logged in under.
func (c *Client) Name() string { return c.name }

// Run reads from the server until ctx is cancelled (it then logs out and
// returns nil) or the connection ends (an error wrapping ErrConnectionLost).
func (c *Client) Run(ctx context.Context) error {
	alive := 3 * c.cfg.PingInterval
	_ = c.ws.SetReadDeadline(time.Now().Add(alive))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(alive)) })
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	wg.Go(func() {
		t := time.NewTicker(c.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				c.writeMu.Lock()
				_ = c.ws.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
				c.writeMu.Unlock()
				_ = c.ws.SetReadDeadline(time.Now())
				return
			case <-t.C:
				if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.cfg.PingInterval)); err != nil {
					_ = c.ws.SetReadDeadline(time.Now())
					return
				}
			}
		}
	})
	for {
		m, err := c.read()
		if err != nil {
			if errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) {
				c.cfg.Logger.Warn("signal: bad message from server", "err", err)
				continue
			}
			c.ws.Close()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("signal: %w: %v", ErrConnectionLost, err)
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(alive))
		if !c.track(m) {
			continue
		}
		select {
		case c.messages <- m:
		case <-ctx.Done():
		}
	}
}

// track applies userlist and updata to the user list. It reports whether m
// is for the caller instead.
func (c *Client) track(m Message) bool {
	switch m.Type {
	case TypeUserlist:
		c.setUserlist(m)
	case TypeLanft:
		if !c.takeRelayReply(m.Meta) && !c.takeCallReply(m.Meta) {
			c.setInfo(m.Meta)
		}
	case TypeUpdata:
		c.mu.Lock()
		i := slices.IndexFunc(c.peers, func(p PeerInfo) bool { return p.Name == m.Name })
		switch {
		case m.Action == ActionLogin && i < 0:
			c.peers = append(c.peers, PeerInfo{Name: m.Name, Meta: m.Meta})
		case m.Action == ActionLogin:
			c.peers[i].Meta = m.Meta
		case m.Action == ActionOffline && i >= 0:
			c.peers = slices.Delete(c.peers, i, i+1)
		}
		c.mu.Unlock()
		c.notify()
	default:
		return true
	}
	return false
}

func (c *Client) setUserlist(m Message) {
	peers := make([]PeerInfo, 0, len(m.Users))
	for i, name := range m.Users {
		p := PeerInfo{Name: name}
		// peers is additive: use its meta when it lines up with users.
		if i < len(m.Peers) && m.Peers[i].Name == name {
			p.Meta = m.Peers[i].Meta
		}
		peers = append(peers, p)
	}
	c.mu.Lock()
	c.peers = peers
	c.mu.Unlock()
	c.notify()
}

// setInfo keeps the ICE servers of a login reply or a refresh.
func (c *Client) setInfo(raw json.RawMessage) {
	var info LoginInfo
	if len(raw) == 0 || json.Unmarshal(raw, &info) != nil {
		return
	}
	c.mu.Lock()
	c.ice = info.ICEServers
	c.calls = c.calls || info.Calls
	c.noRelay = info.NoRelay
	c.mu.Unlock()
}

// ICEServers returns the ICE servers the host offers (the latest ones it
// sent), or nil.
func (c *Client) ICEServers() []ICEServer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ice)
}

func (c *Client) notify() {
	select {
	case c.changes <- struct{}{}:
	default:
	}
}

// Peers returns the users online now, in login order, this client included.
func (c *Client) Peers() []PeerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.peers)
}

// Changes receives a value whenever the user list has changed since it was
// last read.
func (c *Client) Changes() <-chan struct{} { return c.changes }

// Messages receives relayed offers, answers, candidates, leaves and errors
// while Run runs. An error's Refusal holds its code.
func (c *Client) Messages() <-chan Message { return c.messages }

// Send sends m under this client's name.
func (c *Client) Send(m Message) error {
	m.Name = c.name
	return c.write(m)
}

// Close ends the connection at once.
func (c *Client) Close() error {
	return c.ws.Close()
}
