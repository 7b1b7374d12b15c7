package signal

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"
)

// TCP relay tokens (lanft's additive request; the relay is
// internal/relay, served beside this server by internal/host):
//
//	alice                              server                              bob
//	  |-- {"type":"lanft","lanft":       |                                   |
//	  |     {"relay":{"peer":"bob"}}} -->|  waits up to relayPairWindow      |
//	  |                                  |<-- {"type":"lanft","lanft":       |
//	  |                                  |     {"relay":{"peer":"alice"}}} --|
//	  |<-- {"type":"lanft","lanft":{"relay":{"peer":"bob","token":HEX,       |
//	  |     "addr":"","lan":true}}} -----|-- the same, with bob's half ----->|
//
// A pair is issued only when both users of one room asked for each other
// within relayPairWindow; a request nobody matches gets no answer (the
// client gives up after RelayWait). "addr" empty: the relay listens on the
// signaling address itself. A refusal (no relay here, the relay's limits,
// the request rate) is a reply with "message" and no token, to both users
// when they were paired. An original client never sends one.
//
// Two users on two nodes of a service are relayed by the node of the one
// whose names.Key sorts first (both nodes tell the same). The other node
// passes its user's request on to it through the cluster (relayAsk, a
// "lanft" message to the relaying node's user, which no client can send);
// the relaying node pairs it as its own, and both grants name its relay's
// public address ("addr"), where it takes plain relay connections, so that
// a user logged in through a name that several nodes answer reaches that
// one. A node without a public address for its relay (RelayAddresser)
// refuses such pairs, saying why.

// RelayIssuer mints token pairs for two users of a room: RelayGrants with
// Token and where to use it (Addr, LAN) set. Its error's text is told to
// both users.
type RelayIssuer interface {
	IssueRelay(room, a, b string) (ga, gb RelayGrant, err error)
}

// RelayAddresser is a RelayIssuer whose relay the users of other nodes
// reach at RelayAddr (host:port); empty when they cannot.
type RelayAddresser interface {
	RelayAddr() string
}

// RelayRequest is a client's ask for a relay to Peer.
type RelayRequest struct {
	Peer string `json:"peer"`
}

// RelayGrant is the answer: a token (hex, 32 bytes) for the relay at Addr
// (host:port; empty: the signaling host's address), or Message saying why
// there is none. LAN: the relay is a LAN instance (lanft's path "lan-relay").
type RelayGrant struct {
	Peer    string `json:"peer"`
	Token   string `json:"token,omitempty"`
	Addr    string `json:"addr,omitempty"`
	LAN     bool   `json:"lan,omitempty"`
	Message string `json:"message,omitempty"`
}

type relayMeta struct {
	Relay *json.RawMessage `json:"relay"`
}

// relayAsk is a user's relay request passed on to the node that relays
// for the pair (the "relayask" of a "lanft" message between nodes).
type relayAsk struct {
	From  string `json:"from"`  // the asking user, on the passing node
	Peer  string `json:"peer"`  // whom it asks for, on the relaying node
	Asked string `json:"asked"` // Peer as the asking user spelled it
}

type relayAskMeta struct {
	Ask *relayAsk `json:"relayask"`
}

const (
	// relayPairWindow is how long a request waits for the peer's.
	relayPairWindow = 5 * time.Second
	// RelayWait is how long Client.Relay waits for the answer.
	RelayWait = relayPairWindow + 2*time.Second
	// maxRelayWaits bounds the requests waiting at once.
	maxRelayWaits = 4096
)

// relayBook holds the requests waiting for their peer's (the zero value
// works).
type relayBook struct {
	mu   sync.Mutex
	wait map[relayKey]relayWait
}

type relayKey struct{ room, from, to string }

type relayWait struct {
	m    member // the asking user: a conn, or a remoteUser whose node passed the request on
	peer string // as the asking user spelled it
	at   time.Time
}

// match records from's request for peer, or returns the peer's waiting one.
func (b *relayBook) match(from, peer member, asked string) (relayWait, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.wait == nil {
		b.wait = make(map[relayKey]relayWait)
	}
	for k, w := range b.wait {
		if now.Sub(w.at) > relayPairWindow {
			delete(b.wait, k)
		}
	}
	f, p := from.entry(), peer.entry()
	back := relayKey{f.room, p.key, f.key}
	if w, ok := b.wait[back]; ok && w.m == peer {
		delete(b.wait, back)
		return w, true
	}
	if len(b.wait) < maxRelayWaits {
		b.wait[relayKey{f.room, f.key, p.key}] = relayWait{m: from, peer: asked, at: now}
	}
	return relayWait{}, false
}

// relayRequest answers a request for a relay token, and reports whether m
// was one.
func (c *conn) relayRequest(m Message) bool {
	var meta relayMeta
	if json.Unmarshal(m.Meta, &meta) != nil || meta.Relay == nil {
		return false
	}
	s := c.srv
	if c.key == "" {
		c.sendError(CodeBadMessage, fmt.Sprintf("log in before sending %q", m.Type))
		return true
	}
	var req RelayRequest
	if json.Unmarshal(*meta.Relay, &req) != nil || req.Peer == "" {
		c.sendError(CodeBadMessage, `a relay request is {"type":"lanft","lanft":{"relay":{"peer":NAME}}}`)
		return true
	}
	no := func(why string) bool {
		c.sendRelay(RelayGrant{Peer: req.Peer, Message: why})
		return true
	}
	if s.cfg.Relay == nil {
		return no("this signaling host has no TCP relay")
	}
	s.mu.Lock()
	holder := s.rooms.lookup(c.room, req.Peer)
	s.mu.Unlock()
	switch {
	case holder == nil || holder == member(c):
		return no(fmt.Sprintf("no user %q is online here", req.Peer))
	case !c.callLimit().Allow():
		return no("too many relay requests; wait a few seconds")
	}
	if u, ok := holder.(*remoteUser); ok {
		if u.key < c.key {
			s.passRelayAsk(u, relayAsk{From: c.name, Peer: u.name, Asked: req.Peer})
			return true // u's node answers
		}
		if w, ok := s.tcpRelay.match(c, u, req.Peer); ok {
			s.issueAcross(c, u, req.Peer, w.peer)
		}
		return true
	}
	peer := holder.(*conn)
	w, ok := s.tcpRelay.match(c, peer, req.Peer)
	if !ok {
		return true // answered once the peer asks too
	}
	ga, gb, err := s.cfg.Relay.IssueRelay(c.room, c.name, peer.name)
	if err != nil {
		ga, gb = RelayGrant{Message: err.Error()}, RelayGrant{Message: err.Error()}
	}
	ga.Peer, gb.Peer = req.Peer, w.peer
	s.cfg.Logger.Debug("signal: relay pair", "room", c.room, "a", c.name, "b", peer.name, "err", err)
	c.sendRelay(ga)
	peer.sendRelay(gb)
	return true
}

func (c *conn) sendRelay(g RelayGrant) {
	b, err := json.Marshal(map[string]RelayGrant{"relay": g})
	if err == nil {
		c.sendMsg(Message{Type: TypeLanft, Meta: b})
	}
}

// sendRelayRemote sends g to u through its node.
func (s *Server) sendRelayRemote(u *remoteUser, g RelayGrant) {
	b, err := json.Marshal(map[string]RelayGrant{"relay": g})
	if err != nil {
		return
	}
	if out, err := Encode(Message{Type: TypeLanft, Meta: b}); err == nil {
		u.enqueueRelay(addrKey{}, out)
	}
}

// passRelayAsk hands a local user's request for u to u's node, which
// relays for the pair.
func (s *Server) passRelayAsk(u *remoteUser, a relayAsk) {
	b, err := json.Marshal(relayAskMeta{Ask: &a})
	if err != nil {
		return
	}
	if out, err := Encode(Message{Type: TypeLanft, Meta: b}); err == nil {
		u.enqueueRelay(addrKey{}, out)
	}
}

// relayAskOf reads a request another node passed on in msg, a message it
// relayed to a user here. Clients' messages are relayed as offer, answer,
// candidate or leave only, so a "lanft" one is a node's own.
func relayAskOf(msg []byte) (relayAsk, bool) {
	if !bytes.HasPrefix(msg, []byte(`{"type":"lanft"`)) {
		return relayAsk{}, false
	}
	var m Message
	var meta relayAskMeta
	if json.Unmarshal(msg, &m) != nil || m.Type != TypeLanft || json.Unmarshal(m.Meta, &meta) != nil || meta.Ask == nil {
		return relayAsk{}, false
	}
	return *meta.Ask, true
}

// relayAskFrom pairs a request another node passed on: its user a.From
// asks for the local user a.Peer of room.
func (s *Server) relayAskFrom(room string, a relayAsk) {
	s.mu.Lock()
	from, _ := s.rooms.lookup(room, a.From).(*remoteUser)
	to, _ := s.rooms.lookup(room, a.Peer).(*conn)
	s.mu.Unlock()
	if from == nil || to == nil || from.name != a.From || to.name != a.Peer {
		return // gone meanwhile: the asking client gives up after RelayWait
	}
	if s.cfg.Relay == nil {
		s.sendRelayRemote(from, RelayGrant{Peer: a.Asked, Message: "this signaling host has no TCP relay"})
		return
	}
	if w, ok := s.tcpRelay.match(from, to, a.Asked); ok {
		s.issueAcross(to, from, w.peer, a.Asked)
	}
}

// issueAcross issues a relay on this node for its user c and the user u
// of another node, who asked for each other as cAsked and uAsked.
func (s *Server) issueAcross(c *conn, u *remoteUser, cAsked, uAsked string) {
	var gc, gu RelayGrant
	addr := ""
	if ra, ok := s.cfg.Relay.(RelayAddresser); ok {
		addr = ra.RelayAddr()
	}
	var err error
	if addr == "" {
		err = fmt.Errorf("%q is logged in to another node of the service, and this node's TCP relay has no public address for it (--public-addr)", u.name)
	} else if gc, gu, err = s.cfg.Relay.IssueRelay(c.room, c.name, u.name); err == nil {
		gc.Addr, gu.Addr = addr, addr
	}
	if err != nil {
		gc, gu = RelayGrant{Message: err.Error()}, RelayGrant{Message: err.Error()}
	}
	gc.Peer, gu.Peer = cAsked, uAsked
	s.cfg.Logger.Debug("signal: relay pair across nodes", "room", c.room, "local", c.name, "remote", u.name, "node", u.node, "err", err)
	c.sendRelay(gc)
	s.sendRelayRemote(u, gu)
}

// RelayPath is where a host takes relay connections as an HTTP upgrade
// (internal/relay's UpgradeHandler), under Path so that a proxy that
// passes the signaling WebSocket passes it too; never a room (RoomFromPath
// takes no dot).
const RelayPath = Path + "/.relay"

// RelayTicket is a granted relay token and where to use it: Addr
// (host:port) with a plain relay connection, or, on a wss:// host, URL
// (an upgrade at RelayPath over TLS configured by TLS).
type RelayTicket struct {
	Addr  string
	URL   string
	TLS   *tls.Config
	Token [32]byte
	LAN   bool // the relay is a LAN instance
}

// Relay asks the host for a TCP relay to peer, who must ask for one to us
// within a few seconds, and returns the ticket; an error says why there
// is none (the host's own words where it gave them). Run must be running.
func (c *Client) Relay(ctx context.Context, peer string) (RelayTicket, error) {
	reply := make(chan RelayGrant, 1)
	c.mu.Lock()
	if c.relayWaits == nil {
		c.relayWaits = make(map[string]chan RelayGrant)
	}
	c.relayWaits[peer] = reply
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.relayWaits[peer] == reply {
			delete(c.relayWaits, peer)
		}
		c.mu.Unlock()
	}()
	b, _ := json.Marshal(map[string]RelayRequest{"relay": {Peer: peer}})
	if err := c.write(Message{Type: TypeLanft, Meta: b}); err != nil {
		return RelayTicket{}, fmt.Errorf("signal: ask for a relay: %w", err)
	}
	t := time.NewTimer(RelayWait)
	defer t.Stop()
	var g RelayGrant
	select {
	case g = <-reply:
	case <-t.C:
		return RelayTicket{}, fmt.Errorf("signal: no relay to %s: the host answered nothing within %s (it may not relay, or %s did not ask)", peer, RelayWait, peer)
	case <-ctx.Done():
		return RelayTicket{}, ctx.Err()
	}
	if g.Message != "" {
		return RelayTicket{}, fmt.Errorf("signal: the host gives no relay to %s: %s", peer, g.Message)
	}
	tok, err := hex.DecodeString(g.Token)
	if err != nil || len(tok) != 32 {
		return RelayTicket{}, fmt.Errorf("signal: the host's relay token is malformed")
	}
	rt := RelayTicket{Addr: g.Addr, LAN: g.LAN}
	copy(rt.Token[:], tok)
	if rt.Addr == "" {
		if rt.Addr, err = hostPort(c.cfg.URL); err != nil {
			return RelayTicket{}, err
		}
		if u, _ := url.Parse(c.cfg.URL); u.Scheme == "wss" {
			rt.URL, rt.TLS = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: RelayPath}).String(), c.cfg.TLS
		}
	}
	return rt, nil
}

// hostPort is the host:port a ws:// or wss:// URL connects to.
func hostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("signal: the signaling URL %q has no host", raw)
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	port := "80"
	if u.Scheme == "wss" || u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// takeRelayReply hands a relay answer to its waiter and reports whether
// raw was one.
func (c *Client) takeRelayReply(raw json.RawMessage) bool {
	var meta struct {
		Relay *RelayGrant `json:"relay"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &meta) != nil || meta.Relay == nil {
		return false
	}
	c.mu.Lock()
	w := c.relayWaits[meta.Relay.Peer]
	c.mu.Unlock()
	if w != nil {
		select {
		case w <- *meta.Relay:
		default:
		}
	}
	return true
}

// RelayRefuser is a RelayIssuer that refuses every pair; Refusal says why,
// and the login reply tells every client (LoginInfo.NoRelay).
type RelayRefuser interface {
	RelayIssuer
	Refusal() string
}

func relayRefusal(r RelayIssuer) string {
	if rr, ok := r.(RelayRefuser); ok {
		return rr.Refusal()
	}
	return ""
}

// NoRelay is why the host relays nothing, when it said so at login.
func (c *Client) NoRelay() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.noRelay
}
