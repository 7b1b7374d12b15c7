package signal

import (
	"slices"
)

// presence is c as the cluster knows it.
func (c *conn) presence() Presence {
	return Presence{Room: c.room, Key: c.key, Name: c.name, Node: c.node, Rev: c.rev, Meta: c.meta, Addr: c.addr}
}

// ClusterHandler is how the cluster (Config.Cluster) tells this server
// what the other nodes do: pass it to cluster.Cluster.Run.
func (s *Server) ClusterHandler() ClusterHandler { return clusterView{s} }

// clusterView keeps the users of other nodes in the server's rooms, as
// conns without a socket (conn.node set), so that user lists, updata,
// name checks and TURN permissions see the whole room.
type clusterView struct{ s *Server }

func (v clusterView) Online(p Presence) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if other := s.rooms.lookup(p.Room, p.Name); other != nil {
		if other.rev >= p.Rev {
			return // known already (a resync or a late event)
		}
		s.leaveLocked(other)
		if other.node == "" {
			// The others took this node's user for gone (it was cut off)
			// and the name has a new holder: this client must log in again.
			other.sendError(CodeUnavailable, "your login was lost by the service: log in again")
			other.close()
		}
	}
	c := &conn{srv: s, room: p.Room, addr: p.Addr, relayAddr: p.Relay, name: p.Name, key: p.Key, meta: p.Meta, rev: p.Rev, node: p.Node, done: make(chan struct{})}
	r := s.rooms.join(c)
	s.broadcastLocked(r, c, Message{Type: TypeUpdata, Action: ActionLogin, Name: c.name, Meta: c.meta})
}

func (v clusterView) Offline(p Presence) { v.OfflineAll([]Presence{p}) }

// OfflineAll is Offline for many users (a dead node's) under one lock.
func (v clusterView) OfflineAll(ps []Presence) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		if other := s.rooms.lookup(p.Room, p.Name); other != nil && other.node != "" && other.rev == p.Rev {
			s.leaveLocked(other)
		}
	}
}

func (v clusterView) Deliver(room, to string, msg []byte) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.rooms.lookup(room, to); c != nil && c.node == "" && c.name == to {
		c.enqueue(msg)
	}
}

// Reset closes every local client (this node lost the cluster: they log
// in again, here later or on another node) and forgets remote users.
func (v clusterView) Reset() {
	s := v.s
	s.mu.Lock()
	var remote []*conn
	for _, r := range s.rooms.rooms {
		for _, c := range r.order {
			if c.node != "" {
				remote = append(remote, c)
			}
		}
	}
	for _, c := range remote {
		s.rooms.leave(c)
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

// leaveLocked takes c out of its room and tells the room's local users.
func (s *Server) leaveLocked(c *conn) {
	if r := s.rooms.leave(c); r != nil {
		s.broadcastLocked(r, c, Message{Type: TypeUpdata, Action: ActionOffline, Name: c.name})
	}
}

// insertByRev places c in order by claim revision: the service-wide login
// order, the same on every node.
func insertByRev(order []*conn, c *conn) []*conn {
	if c.rev == 0 {
		return append(order, c)
	}
	i := len(order)
	for i > 0 && order[i-1].rev > c.rev {
		i--
	}
	return slices.Insert(order, i, c)
}
