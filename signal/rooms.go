package signal

import (
	"crypto/rand"
	"encoding/base32"
	"net/netip"
	"slices"
	"strings"

	"github.com/lanft/lanft/names"
)

// DefaultRoom is the room of Path itself ("/ws"): the LAN host's only room.
const DefaultRoom = ""

// maxRoomName bounds a room name in a URL path.
const maxRoomName = 64

// RoomFromPath maps a request path to a room: Path ("/ws") is DefaultRoom
// and Path+"/NAME" is the room NAME (letters, digits, '-' and '_', at most
// 64). ok is false for any other path. Every path rule of the WebSocket
// endpoint lives here.
func RoomFromPath(p string) (room string, ok bool) {
	if p == Path {
		return DefaultRoom, true
	}
	name, found := strings.CutPrefix(p, Path+"/")
	if !found || !validRoom(name) {
		return "", false
	}
	return name, true
}

func validRoom(name string) bool {
	if name == "" || len(name) > maxRoomName {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// NewRoomName returns an unguessable room name: 130 random bits in 26
// lower-case base32 characters.
func NewRoomName() string {
	var b [17]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	return s[:26]
}

// room is one user list: its names and its login order. Users in different
// rooms never see or reach each other.
type room struct {
	users map[string]*conn // the holder of each name, by names.Key
	// alike indexes every key of every user (names.KeysOf), to find the
	// users a new name is one name with. A key has one holder but in a
	// cluster race (see conn.login), when two look-alikes got in at once.
	alike map[alikeKey][]*conn
	order []*conn // login order
	load  pool    // the user list's bytes (conn.cost), by address
}

// alikeKey is one of the names.Keys of a user: which one, and its value.
type alikeKey struct {
	n   int
	key string
}

// roomSet is the server's room and user state, under Server.mu. It is the
// one place that knows who is logged in where (federation would replace it).
type roomSet struct {
	rooms map[string]*room
}

func newRoomSet() roomSet { return roomSet{rooms: make(map[string]*room)} }

// lookup returns the user logged in to room under name, in any spelling
// with its names.Key: the holder of the name, for relays and the cluster's
// events.
func (rs roomSet) lookup(roomName, name string) *conn {
	if r := rs.rooms[roomName]; r != nil {
		return r.users[names.Key(name)]
	}
	return nil
}

// closeTo returns a user of room that name is one name with (names.Same:
// a key in common), or nil if name is free there. The holder of its Key
// comes first ("Ian" finds ian before lan).
func (rs roomSet) closeTo(roomName, name string) *conn {
	r := rs.rooms[roomName]
	if r == nil {
		return nil
	}
	for n, k := range names.KeysOf(name) {
		if held := r.alike[alikeKey{n, k}]; len(held) > 0 {
			return held[0]
		}
	}
	return nil
}

// join logs c in to its room; the caller checked that the name is free.
func (rs roomSet) join(c *conn) *room {
	r := rs.rooms[c.room]
	if r == nil {
		r = &room{users: make(map[string]*conn), alike: make(map[alikeKey][]*conn)}
		rs.rooms[c.room] = r
	}
	r.users[c.key] = c
	for n, k := range names.KeysOf(c.name) {
		if ak := (alikeKey{n, k}); !slices.Contains(r.alike[ak], c) {
			r.alike[ak] = append(r.alike[ak], c)
		}
	}
	r.order = insertByRev(r.order, c)
	if c.cost == 0 { // a user of another node
		c.cost = userCost(c.name, c.meta)
		c.from = keyOf(c.addr, netip.Addr{})
	}
	r.load.add(c.from, c.cost)
	return r
}

// leave logs c out; it reports the room c was in, or nil if c was not
// logged in. An empty room is forgotten.
func (rs roomSet) leave(c *conn) *room {
	r := rs.rooms[c.room]
	if c.key == "" || r == nil || r.users[c.key] != c {
		return nil
	}
	delete(r.users, c.key)
	r.load.remove(c.from, c.cost)
	for n, k := range names.KeysOf(c.name) {
		ak := alikeKey{n, k}
		if held := slices.DeleteFunc(r.alike[ak], func(o *conn) bool { return o == c }); len(held) > 0 {
			r.alike[ak] = held
		} else {
			delete(r.alike, ak)
		}
	}
	if i := slices.Index(r.order, c); i >= 0 {
		r.order = slices.Delete(r.order, i, i+1)
	}
	if len(r.users) == 0 {
		delete(rs.rooms, c.room)
	}
	return r
}

// names returns the users of room in login order.
func (rs roomSet) names(roomName string) []string {
	r := rs.rooms[roomName]
	if r == nil {
		return []string{}
	}
	names := make([]string, len(r.order))
	for i, c := range r.order {
		names[i] = c.name
	}
	return names
}

// addrs returns the distinct source addresses of room's users, and the
// TURN relay addresses of the other nodes that hold some of them.
func (rs roomSet) addrs(roomName string) []netip.Addr {
	r := rs.rooms[roomName]
	if r == nil {
		return nil
	}
	var out []netip.Addr
	for _, c := range r.order {
		if c.addr.IsValid() && !slices.Contains(out, c.addr) {
			out = append(out, c.addr)
		}
		if c.relayAddr.IsValid() && !slices.Contains(out, c.relayAddr) {
			out = append(out, c.relayAddr)
		}
	}
	return out
}
