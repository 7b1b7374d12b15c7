package signal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lanft/lanft/names"
)

func (c *conn) login(ctx context.Context, m Message) {
	s := c.srv
	fail := func(e *ServerError) {
		c.sendMsg(Message{Type: TypeLogin, Success: boolPtr(false), Message: e.Message, Meta: errorMeta(e.Code)})
		c.sendError(e.Code, "login failed: "+e.Message)
	}
	if c.key != "" {
		c.sendError(CodeBadMessage, fmt.Sprintf("already logged in as %q", c.name))
		return
	}
	if err := CheckName(m.Name); err != nil {
		fail(&ServerError{CodeNameInvalid, err.Error()})
		return
	}
	if len(m.Meta) > MaxMetaSize || len(m.Meta) > 0 && !isJSONObject(m.Meta) {
		code := CodeBadMessage
		if len(m.Meta) > MaxMetaSize {
			code = CodeTooLarge
		}
		fail(&ServerError{code, fmt.Sprintf("the \"lanft\" field must be a JSON object of at most %d bytes", MaxMetaSize)})
		return
	}
	key := names.Key(m.Name)
	taken := func(holder string) {
		if holder == m.Name {
			fail(&ServerError{CodeNameTaken, fmt.Sprintf("name %q is taken", m.Name)})
		} else {
			fail(&ServerError{CodeNameTaken, fmt.Sprintf("name %q is too close to %q, who is online", m.Name, holder)})
		}
	}
	// A name is free when it is one name (names.Same) with nobody in the
	// room. In a cluster the claim is atomic for its names.Key only; the
	// other keys are checked against the room as this node knows it (its
	// own users and the other nodes' users it has heard of), so two
	// look-alikes with different Keys (bob, ВОВ) logging in on two nodes
	// within the time a login takes to reach the other node both get in.
	var rev uint64
	if s.cfg.Cluster != nil {
		s.mu.Lock()
		other := s.rooms.closeTo(c.room, m.Name)
		refused := s.admitLoginLocked(c, userCost(m.Name, m.Meta))
		s.mu.Unlock()
		if other != nil {
			taken(other.entry().name)
			return
		}
		if refused != nil {
			fail(refused) // before claiming the name across the cluster
			return
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
		var err error
		rev, err = s.cfg.Cluster.Claim(cctx, Presence{Room: c.room, Key: key, Name: m.Name, Meta: m.Meta, Addr: c.addr})
		cancel()
		var te *TakenError
		if errors.As(err, &te) {
			taken(te.Holder)
			return
		}
		if err != nil && ctx.Err() != nil {
			return // c is closing (or the server): nobody waits for the answer
		}
		if err != nil {
			s.cfg.Logger.Warn("signal: claim a name in the cluster", "name", m.Name, "err", err)
			fail(&ServerError{CodeUnavailable, "this signaling node cannot reach the rest of the service now: try again"})
			return
		}
	}
	cost := userCost(m.Name, m.Meta)
	s.mu.Lock()
	if refused := s.admitLoginLocked(c, cost); refused != nil {
		s.mu.Unlock()
		if rev != 0 {
			s.release(ctx, Presence{Room: c.room, Key: key, Name: m.Name, Rev: rev})
		}
		s.cfg.Logger.Debug("signal: login refused", "name", m.Name, "room", c.room, "remote", c.remote, "why", refused.Message)
		fail(refused)
		return
	}
	s.supersedeLocked(c.room, m.Name, rev)
	if other := s.rooms.closeTo(c.room, m.Name); other != nil {
		s.mu.Unlock()
		if rev != 0 {
			s.release(ctx, Presence{Room: c.room, Key: key, Name: m.Name, Rev: rev})
		}
		taken(other.entry().name)
		return
	}
	c.name, c.key, c.meta, c.rev, c.cost = m.Name, key, m.Meta, rev, cost
	r := s.rooms.join(c)
	users := make([]string, len(r.order))
	peers := make([]PeerInfo, len(r.order))
	for i, o := range r.order {
		u := o.entry()
		users[i] = u.name
		peers[i] = PeerInfo{Name: u.name, Meta: u.meta}
	}
	// Queue the reply and the list before anyone else can relay to c, so
	// that c always hears "login" first.
	c.sendMsg(Message{Type: TypeLogin, Success: boolPtr(true), Meta: s.loginInfo(c.room)})
	c.sendMsg(Message{Type: TypeUserlist, Users: users, Peers: peers})
	s.broadcastLocked(r, c, Message{Type: TypeUpdata, Action: ActionLogin, Name: c.name, Meta: c.meta})
	s.mu.Unlock()
	_ = c.ws.SetReadDeadline(time.Now().Add(2*s.cfg.PingInterval + s.cfg.WriteTimeout))
	s.cfg.Logger.Info("signal: user online", "name", c.name, "room", c.room, "remote", c.remote)
}
