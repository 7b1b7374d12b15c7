package signal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// conn is one client connection, and once logged in the user of its room
// it is. Only its own goroutines touch ws: the handler goroutine reads,
// the writer goroutine writes.
type conn struct {
	user
	srv     *Server
	ws      *websocket.Conn
	limiter *rate.Limiter

	qmu    sync.Mutex
	queue  [][]byte // outbound messages, oldest first
	qbytes int
	wake   chan struct{} // capacity 1: the queue has something
	remote string
	// senders holds the relayed messages in queue by sender (under qmu).
	senders map[addrKey]holding
	// calls limits the call credentials handed to this client (callICE).
	calls *rate.Limiter

	closeOnce   sync.Once
	done        chan struct{}
	lastLimited time.Time
}

func (c *conn) close() {
	c.closeOnce.Do(func() { close(c.done) })
}

// run serves c until it ends. ctx ends with the request (and with
// ServeWith's ctx); the calls c makes end with c, too (see Server.Close).
func (c *conn) run(ctx context.Context) {
	ctx, cancel := stopContext(ctx, c.done)
	defer cancel()
	cfg := c.srv.cfg
	var wg sync.WaitGroup
	wg.Go(c.writeLoop)
	defer wg.Wait()
	defer c.close()

	c.ws.SetReadLimit(MaxMessageSize)
	_ = c.ws.SetReadDeadline(time.Now().Add(cfg.LoginTimeout))
	alive := 3 * cfg.PingInterval
	// A client's own pings prove it alive too (lanft clients ping every
	// few seconds, so a vanished client is noticed quickly).
	c.ws.SetPingHandler(func(data string) error {
		if c.key != "" {
			_ = c.ws.SetReadDeadline(time.Now().Add(alive))
		}
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(cfg.WriteTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	c.ws.SetPongHandler(func(string) error {
		if c.key != "" {
			return c.ws.SetReadDeadline(time.Now().Add(alive))
		}
		return nil
	})
	// Unblock the read when the connection is closed from elsewhere.
	stop := make(chan struct{})
	defer close(stop)
	wg.Go(func() {
		select {
		case <-c.done:
			_ = c.ws.SetReadDeadline(time.Now())
		case <-stop:
		}
	})

	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				cfg.Logger.Debug("signal: read", "name", c.name, "remote", c.remote, "err", err)
			}
			return
		}
		if !c.limiter.Allow() {
			if time.Since(c.lastLimited) > time.Second {
				c.lastLimited = time.Now()
				c.sendError(CodeRateLimited, "rate limit exceeded: message dropped")
			}
			continue
		}
		if c.key != "" {
			_ = c.ws.SetReadDeadline(time.Now().Add(alive))
		}
		if kind != websocket.TextMessage {
			c.sendError(CodeBadMessage, "binary frames are not part of the protocol: send JSON text frames")
			continue
		}
		m, err := Decode(data)
		if err != nil {
			code := CodeBadMessage
			if errors.Is(err, ErrTooLarge) {
				code = CodeTooLarge
			}
			c.sendError(code, err.Error())
			continue
		}
		c.handle(ctx, m)
	}
}

func (c *conn) writeLoop() {
	cfg := c.srv.cfg
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	// Fresh ICE credentials before the old ones expire, for a client that
	// stays logged in for hours (a share).
	var refresh <-chan time.Time
	if refreshes(cfg.ICE) {
		t := time.NewTicker(cfg.ICERefresh)
		defer t.Stop()
		refresh = t.C
	}
	defer c.ws.Close()
	for {
		select {
		case <-refresh:
			c.srv.mu.Lock()
			loggedIn := c.key != ""
			c.srv.mu.Unlock()
			if loggedIn {
				c.sendMsg(Message{Type: TypeLanft, Meta: c.srv.loginInfo(c.room)})
			}
		case <-c.wake:
			for _, b := range c.takeQueue() {
				_ = c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
				if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
					c.close()
					return
				}
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
				c.close()
				return
			}
		case <-c.done:
			// Flush what is queued (a final error or login reply), briefly.
			deadline := time.Now().Add(time.Second)
			for _, b := range c.takeQueue() {
				_ = c.ws.SetWriteDeadline(deadline)
				if c.ws.WriteMessage(websocket.TextMessage, b) != nil {
					return
				}
			}
			_ = c.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
			return
		}
	}
}

func (c *conn) sendMsg(m Message) {
	b, err := Encode(m)
	if err != nil {
		c.srv.cfg.Logger.Error("signal: encode reply", "err", err)
		return
	}
	c.enqueue(b)
}

// sendError sends an error message: text for people, code for programs.
func (c *conn) sendError(code, text string) {
	c.srv.errorsSent.Add(1)
	c.sendMsg(Message{Type: TypeError, Message: text, Meta: errorMeta(code)})
}

func (c *conn) handle(ctx context.Context, m Message) {
	switch m.Type {
	case TypeLogin:
		c.login(ctx, m)
	case TypeOffer, TypeAnswer, TypeCandidate, TypeLeave:
		c.relay(ctx, m)
	case TypeLanft:
		if !c.relayRequest(m) {
			c.callICE(m)
		}
	default:
		c.sendError(CodeBadMessage, fmt.Sprintf("unknown message type %q", m.Type))
	}
}

// relay forwards offer, answer, candidate and leave to othername, stamped
// with the sender's logged-in name whatever name the message claims.
func (c *conn) relay(ctx context.Context, m Message) {
	if c.key == "" {
		c.sendError(CodeBadMessage, fmt.Sprintf("log in before sending %q", m.Type))
		return
	}
	if m.OtherName == "" {
		c.sendError(CodeBadMessage, fmt.Sprintf("%q needs \"othername\"", m.Type))
		return
	}
	out := Message{Type: m.Type, Name: c.name}
	var payload json.RawMessage
	switch m.Type {
	case TypeOffer:
		payload, out.Offer = m.Offer, m.Offer
	case TypeAnswer:
		payload, out.Answer = m.Answer, m.Answer
	case TypeCandidate:
		payload, out.Candidate = m.Candidate, m.Candidate
	}
	// The additive "lanft" object of an offer or answer (lanft's proof of
	// identity) or of a leave (a signed refusal) travels with it untouched.
	if m.Type != TypeCandidate && len(m.Meta) <= MaxMetaSize && isJSONObject(m.Meta) {
		out.Meta = m.Meta
	}
	if m.Type != TypeLeave && !isJSONObject(payload) {
		c.sendError(CodeBadMessage, fmt.Sprintf("%q needs an object in %q", m.Type, m.Type))
		return
	}
	s := c.srv
	s.relays.Add(1)
	s.mu.Lock()
	s.relayRate.add(time.Now().Unix())
	to := s.rooms.lookup(c.room, m.OtherName)
	if to != nil && to.entry().name == m.OtherName {
		b, err := Encode(out)
		if err == nil && !to.enqueueRelay(c.from, b) {
			s.mu.Unlock()
			c.sendError(CodeReceiverBusy, fmt.Sprintf("cannot send %q to %q now: %q is busy reading what you sent before; try again in a moment",
				m.Type, m.OtherName, m.OtherName))
			return
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if to == nil && s.relayUnheard(ctx, c.room, m.OtherName, out) {
		return
	}
	c.sendError(CodeNoUser, fmt.Sprintf("cannot send %q: no user %q is online", m.Type, m.OtherName))
}
