package signal

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
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

// user is a name logged in to a room, as the room's user list, name
// checks, admission and TURN permissions know it, wherever its
// connection is.
type user struct {
	room string     // for a client, from the URL path, fixed before it runs
	addr netip.Addr // where the client connects from (see clientAddr)
	from addrKey    // what the per-address limits count addr as
	// cost is what the user weighs in its room's user list (userCost),
	// set at login.
	cost int

	// name, key, meta and rev are set once at login, under Server.mu.
	name string
	key  string
	meta json.RawMessage
	rev  uint64 // the cluster's claim revision (0 without a cluster)
}

func (u *user) entry() *user { return u }

// member is one user of a room: a client of this server (*conn) or a user
// logged in to another node of the cluster (*remoteUser, see remote.go).
type member interface {
	entry() *user
	// enqueueRelay passes b, relayed from a client at address from, on to
	// the user. It reports false when the user is busy (see queue.go).
	enqueueRelay(from addrKey, b []byte) bool
}

// room is one user list: its names and its login order. Users in different
// rooms never see or reach each other.
type room struct {
	users map[string]member // the holder of each name, by names.Key
	// alike indexes every key of every user (names.KeysOf), to find the
	// users a new name is one name with. A key has one holder but in a
	// cluster race (see conn.login), when two look-alikes got in at once.
	alike map[alikeKey][]member
	order []member // login order
	load  pool     // the user list's bytes (user.cost), by address
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
func (rs roomSet) lookup(roomName, name string) member {
	if r := rs.rooms[roomName]; r != nil {
		return r.users[names.Key(name)]
	}
	return nil
}

// closeTo returns a user of room that name is one name with (names.Same:
// a key in common), or nil if name is free there. The holder of its Key
// comes first ("Ian" finds ian before lan).
func (rs roomSet) closeTo(roomName, name string) member {
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

// join logs m in to its room; the caller checked that the name is free.
func (rs roomSet) join(m member) *room {
	u := m.entry()
	r := rs.rooms[u.room]
	if r == nil {
		r = &room{users: make(map[string]member), alike: make(map[alikeKey][]member)}
		rs.rooms[u.room] = r
	}
	r.users[u.key] = m
	for n, k := range names.KeysOf(u.name) {
		if ak := (alikeKey{n, k}); !slices.Contains(r.alike[ak], m) {
			r.alike[ak] = append(r.alike[ak], m)
		}
	}
	r.order = insertByRev(r.order, m)
	r.load.add(u.from, u.cost)
	return r
}

// leave logs m out; it reports the room m was in, or nil if m was not
// logged in. An empty room is forgotten.
func (rs roomSet) leave(m member) *room {
	u := m.entry()
	r := rs.rooms[u.room]
	if u.key == "" || r == nil || r.users[u.key] != m {
		return nil
	}
	delete(r.users, u.key)
	r.load.remove(u.from, u.cost)
	for n, k := range names.KeysOf(u.name) {
		ak := alikeKey{n, k}
		if held := slices.DeleteFunc(r.alike[ak], func(o member) bool { return o == m }); len(held) > 0 {
			r.alike[ak] = held
		} else {
			delete(r.alike, ak)
		}
	}
	if i := slices.Index(r.order, m); i >= 0 {
		r.order = slices.Delete(r.order, i, i+1)
	}
	if len(r.users) == 0 {
		delete(rs.rooms, u.room)
	}
	return r
}

// insertByRev places m in order by claim revision: the service-wide login
// order, the same on every node.
func insertByRev(order []member, m member) []member {
	rev := m.entry().rev
	if rev == 0 {
		return append(order, m)
	}
	i := len(order)
	for i > 0 && order[i-1].entry().rev > rev {
		i--
	}
	return slices.Insert(order, i, m)
}

// names returns the users of room in login order.
func (rs roomSet) names(roomName string) []string {
	r := rs.rooms[roomName]
	if r == nil {
		return []string{}
	}
	names := make([]string, len(r.order))
	for i, m := range r.order {
		names[i] = m.entry().name
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
	add := func(a netip.Addr) {
		if a.IsValid() && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, m := range r.order {
		add(m.entry().addr)
		if ru, ok := m.(*remoteUser); ok {
			add(ru.relayAddr)
		}
	}
	return out
}
