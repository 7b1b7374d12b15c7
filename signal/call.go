package signal

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// ICE servers per call (lanft's additive request, see doc.go):
//
//	client                                   server
//	  |-- login ------------------------------->|
//	  |<-- login {"lanft":{"iceServers":[STUN],  |  nothing that can allocate
//	  |           "calls":true}} ---------------|
//	  |   ... later, about to connect to a peer:
//	  |-- {"type":"lanft","lanft":{"call":7}} -->|  rate-limited per connection
//	  |<-- {"type":"lanft","lanft":{"call":7,    |  a fresh short-lived TURN
//	  |     "iceServers":[STUN, TURN+cred]}} ---|  credential, small quota
//
// A refused request (past the rate) is answered with the login's servers
// and a "message" saying why: that call gets no relay. An original client
// never sends a "lanft" message, so it is never answered one.

// CallICEProvider is an ICEProvider that mints TURN credentials per call:
// its ICEServers (the login reply's) can allocate nothing, CallICEServers
// hands out a fresh credential. turn.Server and turn.External are ones.
type CallICEProvider interface {
	ICEProvider
	CallICEServers(room string) []ICEServer
}

// CallRequest is the "lanft" object of a TypeLanft message from a client:
// Call numbers the request, and the reply (a LoginInfo) repeats it.
type CallRequest struct {
	Call uint64 `json:"call"`
}

// Defaults of Config.CallRate and CallBurst: ten calls at once, then one
// every six seconds, per connection.
const (
	DefaultCallRate  = 1.0 / 6
	DefaultCallBurst = 10
)

// refreshes reports whether the login's ICE servers carry credentials that
// expire (a provider that does not mint per call): then they are sent
// again every ICERefresh.
func refreshes(p ICEProvider) bool {
	_, perCall := p.(CallICEProvider)
	return p != nil && !perCall
}

// loginInfo is the additive "lanft" object of a login reply, or nil
// without an ICE provider.
func (s *Server) loginInfo(room string) json.RawMessage {
	why := relayRefusal(s.cfg.Relay)
	if s.cfg.ICE == nil && why == "" {
		return nil
	}
	info := LoginInfo{NoRelay: why}
	if s.cfg.ICE != nil {
		_, info.Calls = s.cfg.ICE.(CallICEProvider)
		info.ICEServers = s.cfg.ICE.ICEServers(room)
	}
	b, err := json.Marshal(info)
	if err != nil {
		return nil
	}
	return b
}

// callICE answers a client's request for one call's ICE servers.
func (c *conn) callICE(m Message) {
	s := c.srv
	if c.key == "" {
		c.sendError(CodeBadMessage, fmt.Sprintf("log in before sending %q", m.Type))
		return
	}
	var req CallRequest
	if json.Unmarshal(m.Meta, &req) != nil || req.Call == 0 {
		c.sendError(CodeBadMessage, `a "lanft" message from a client asks for ICE servers: {"type":"lanft","lanft":{"call":N}} with N > 0`)
		return
	}
	info := LoginInfo{Call: req.Call}
	p, perCall := s.cfg.ICE.(CallICEProvider)
	switch {
	case s.cfg.ICE == nil:
	case !perCall:
		info.ICEServers = s.cfg.ICE.ICEServers(c.room)
	case !c.callLimit().Allow():
		info.ICEServers = p.ICEServers(c.room)
		info.Message = "too many connection attempts: this one gets no relay (TURN); wait a few seconds"
		s.cfg.Logger.Info("signal: call credentials rate-limited", "name", c.name, "remote", c.remote)
	default:
		info.ICEServers = p.CallICEServers(c.room)
		s.cfg.Logger.Debug("signal: call credentials", "name", c.name, "room", c.room)
	}
	b, err := json.Marshal(info)
	if err != nil {
		return
	}
	c.sendMsg(Message{Type: TypeLanft, Meta: b})
}

// callLimit is the connection's limiter of call credentials, made at its
// first request (only the connection's reader calls it).
func (c *conn) callLimit() *rate.Limiter {
	if c.calls == nil {
		r, b := c.srv.cfg.CallRate, c.srv.cfg.CallBurst
		if r == 0 {
			r = DefaultCallRate
		}
		if b == 0 {
			b = DefaultCallBurst
		}
		c.calls = rate.NewLimiter(rate.Limit(r), b)
	}
	return c.calls
}

// callWait is how long CallICEServers waits for the reply.
const callWait = 5 * time.Second

// CallICEServers returns ICE servers for one connection attempt: from a
// host that mints them per call (LoginInfo.Calls), fresh ones it asks for
// now; else, or if no reply comes within a few seconds, the login's. Run
// must be running (it reads the reply).
func (c *Client) CallICEServers(ctx context.Context) []ICEServer {
	c.mu.Lock()
	if !c.calls {
		c.mu.Unlock()
		return c.ICEServers()
	}
	c.callSeq++
	id := c.callSeq
	reply := make(chan LoginInfo, 1)
	if c.callWaits == nil {
		c.callWaits = make(map[uint64]chan LoginInfo)
	}
	c.callWaits[id] = reply
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.callWaits, id)
		c.mu.Unlock()
	}()
	b, _ := json.Marshal(CallRequest{Call: id})
	if err := c.write(Message{Type: TypeLanft, Meta: b}); err != nil {
		return c.ICEServers()
	}
	t := time.NewTimer(callWait)
	defer t.Stop()
	select {
	case info := <-reply:
		if info.Message != "" {
			c.cfg.Logger.Warn("signal: the host gave no relay for this connection", "reason", info.Message)
		}
		return info.ICEServers
	case <-t.C:
		c.cfg.Logger.Debug("signal: no reply to a request for ICE servers")
	case <-ctx.Done():
	}
	return c.ICEServers()
}

// takeCallReply hands a reply to its waiter and reports whether raw was
// one (a LoginInfo with Call set).
func (c *Client) takeCallReply(raw json.RawMessage) bool {
	var info LoginInfo
	if len(raw) == 0 || json.Unmarshal(raw, &info) != nil || info.Call == 0 {
		return false
	}
	c.mu.Lock()
	w := c.callWaits[info.Call]
	c.mu.Unlock()
	if w != nil {
		select {
		case w <- info:
		default:
		}
	}
	return true
}
