package signal

import (
	"net/netip"
	"slices"
)

// PeerAddrs are the addresses of a room's users, by how this server knows
// them: what a TURN relay of this host may send to, and how far to trust it.
type PeerAddrs struct {
	// Seen are the source addresses of this server's own connections
	// (the socket's peer, no header involved).
	Seen []netip.Addr
	// Told are addresses this server was told: the X-Forwarded-For entry
	// of a connection through a trusted proxy (Config.TrustProxy), and the
	// addresses of users logged in to other nodes of the cluster.
	Told []netip.Addr
	// Relays are the TURN relay addresses of the other nodes with users in
	// the room (those users are reached through them).
	Relays []netip.Addr
}

// RoomPeerAddrs returns the addresses of room's users, sorted by how this
// server knows them (turn.Directory).
func (s *Server) RoomPeerAddrs(room string) PeerAddrs {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out PeerAddrs
	r := s.rooms.rooms[room]
	if r == nil {
		return out
	}
	add := func(list *[]netip.Addr, a netip.Addr) {
		if a.IsValid() && !slices.Contains(*list, a) {
			*list = append(*list, a)
		}
	}
	for _, m := range r.order {
		switch u := m.(type) {
		case *remoteUser:
			add(&out.Told, u.addr)
			add(&out.Relays, u.relayAddr)
		case *conn:
			if u.addr == socketAddr(u.remote) {
				add(&out.Seen, u.addr)
			} else { // from X-Forwarded-For
				add(&out.Told, u.addr)
			}
		}
	}
	return out
}

// socketAddr is the address of an http.Request's RemoteAddr.
func socketAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
