package signal

import (
	"context"
	"net/netip"

	"github.com/lanft/lanft/names"
)

// remoteUser is a user logged in to another node of the cluster: an entry
// of its room here, with no socket, so that user lists, updata, name
// checks and TURN permissions see the whole room. What is relayed to it
// goes through the cluster to its node.
type remoteUser struct {
	user
	srv  *Server
	node string // the node holding the user's connection
	// relayAddr is the TURN relay address of node, for its users.
	relayAddr netip.Addr
}

// newRemoteUser is the user p of another node.
func (s *Server) newRemoteUser(p Presence) *remoteUser {
	return &remoteUser{
		user: user{
			room: p.Room, addr: p.Addr, from: keyOf(p.Addr, netip.Addr{}),
			cost: userCost(p.Name, p.Meta),
			name: p.Name, key: p.Key, meta: p.Meta, rev: p.Rev,
		},
		srv: s, node: p.Node, relayAddr: p.Relay,
	}
}

// enqueueRelay hands b to u's node, which queues it for u (Deliver, with
// no per-sender share). It always reports true: this node cannot see
// whether u is busy.
func (u *remoteUser) enqueueRelay(_ addrKey, b []byte) bool {
	if err := u.srv.cfg.Cluster.Relay(u.room, u.name, b); err != nil {
		u.srv.cfg.Logger.Warn("signal: relay to another node", "to", u.name, "node", u.node, "err", err)
	}
	return true
}

// relayUnheard relays out to the user name of room on another node whose
// login this node has not heard of yet, if the shared state knows it. It
// reports whether such a user is online.
func (s *Server) relayUnheard(ctx context.Context, room, name string, out Message) bool {
	if s.cfg.Cluster == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	p, ok := s.cfg.Cluster.Lookup(ctx, room, names.Key(name))
	cancel()
	if !ok || p.Name != name {
		return false
	}
	if b, err := Encode(out); err == nil {
		s.newRemoteUser(p).enqueueRelay(addrKey{}, b)
	}
	return true
}

// supersedeLocked forgets the user of another node who holds name in room
// with a claim older than rev: the cluster gave the name to rev, so that
// user is gone, only its logout has not arrived yet.
func (s *Server) supersedeLocked(room, name string, rev uint64) {
	if other, ok := s.rooms.lookup(room, name).(*remoteUser); ok && other.rev < rev {
		s.leaveLocked(other)
	}
}

// presence is c as the cluster knows it.
func (c *conn) presence() Presence {
	return Presence{Room: c.room, Key: c.key, Name: c.name, Rev: c.rev, Meta: c.meta, Addr: c.addr}
}

// ClusterHandler is how the cluster (Config.Cluster) tells this server
// what the other nodes do: pass it to cluster.Cluster.Run.
func (s *Server) ClusterHandler() ClusterHandler { return clusterView{s} }

// clusterView keeps the users of other nodes in the server's rooms, as
// remoteUsers.
type clusterView struct{ s *Server }

func (v clusterView) Online(p Presence) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if other := s.rooms.lookup(p.Room, p.Name); other != nil {
		if other.entry().rev >= p.Rev {
			return // known already (a resync or a late event)
		}
		s.leaveLocked(other)
		if c, ok := other.(*conn); ok {
			// The others took this node's user for gone (it was cut off)
			// and the name has a new holder: this client must log in again.
			c.sendError(CodeUnavailable, "your login was lost by the service: log in again")
			c.close()
		}
	}
	u := s.newRemoteUser(p)
	r := s.rooms.join(u)
	s.broadcastLocked(r, u, Message{Type: TypeUpdata, Action: ActionLogin, Name: u.name, Meta: u.meta})
}

func (v clusterView) Offline(p Presence) { v.OfflineAll([]Presence{p}) }

// OfflineAll is Offline for many users (a dead node's) under one lock.
func (v clusterView) OfflineAll(ps []Presence) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		if other, ok := s.rooms.lookup(p.Room, p.Name).(*remoteUser); ok && other.rev == p.Rev {
			s.leaveLocked(other)
		}
	}
}

func (v clusterView) Deliver(room, to string, msg []byte) {
	s := v.s
	if a, ok := relayAskOf(msg); ok {
		s.relayAskFrom(room, a)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.rooms.lookup(room, to).(*conn); ok && c.name == to {
		c.enqueue(msg)
	}
}

// Reset closes every local client (this node lost the cluster: they log
// in again, here later or on another node) and forgets remote users.
func (v clusterView) Reset() {
	s := v.s
	s.mu.Lock()
	var remote []*remoteUser
	for _, r := range s.rooms.rooms {
		for _, m := range r.order {
			if u, ok := m.(*remoteUser); ok {
				remote = append(remote, u)
			}
		}
	}
	for _, u := range remote {
		s.rooms.leave(u)
	}
	local := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		local = append(local, c)
	}
	s.mu.Unlock()
	for _, c := range local {
		c.sendError(CodeUnavailable, "this signaling node lost touch with the rest of the service: log in again")
		c.close()
	}
}

// leaveLocked takes m out of its room and tells the room's local users.
func (s *Server) leaveLocked(m member) {
	if r := s.rooms.leave(m); r != nil {
		s.broadcastLocked(r, m, Message{Type: TypeUpdata, Action: ActionOffline, Name: m.entry().name})
	}
}
