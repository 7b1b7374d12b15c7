package signal

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Admission: who may take a share of a bounded resource. Two resources
// are bounded by address: the server's connections (Config.MaxClients,
// Config.MaxConnsPerAddr) and each room's user list (Config.MaxRoomBytes,
// Config.MaxUsersPerAddr), whose size is what every user pays for at
// login, in the userlist. One address cannot fill either: past its own
// cap it is refused; when the resource is half used, the address holding
// the most of it is refused first; past three quarters, only addresses
// holding fewer than fewPerAddr entries are admitted, so that a new
// address always has room for a few users until the resource is full.
//
// The same idea guards each client's outbound queue, by sender (see
// queue.go): a sender over its share of a receiver's queue is refused,
// and the receiver is not dropped for it.

// fewPerAddr is what an address may always hold of a resource that is not
// full: the few users of a real person or a small household.
const fewPerAddr = 4

// addrKey is what the per-address limits count by: an IPv4 address; for
// IPv6, the /64 a remote host is given (one host can use all of it), or
// the address itself on the server's own /64 (a LAN's hosts share one).
type addrKey = netip.Prefix

// keyOf is the addrKey of a client at addr reaching the server at local
// (invalid when unknown). An unknown addr is a key of its own.
func keyOf(addr, local netip.Addr) addrKey {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return addrKey{}
	}
	if addr.Is6() && addr.IsGlobalUnicast() && !addr.IsPrivate() {
		p := netip.PrefixFrom(addr, 64).Masked()
		if !p.Contains(local.Unmap()) {
			return p
		}
	}
	return netip.PrefixFrom(addr, addr.BitLen())
}

// showKey is k as a refusal names it: the address, or the IPv6 /64.
func showKey(k addrKey) string {
	switch {
	case !k.IsValid():
		return "unknown"
	case k.IsSingleIP():
		return k.Addr().String()
	}
	return k.String()
}

// holding is what one address holds of a pool: entries (connections,
// users) and the units they weigh (one each, or user-list bytes).
type holding struct{ n, units int }

// pool accounts a bounded resource by address. The zero value is empty.
type pool struct {
	total int // units
	by    map[addrKey]holding
}

// limit is a pool's bound in units and its cap on entries per address.
type limit struct{ bound, perAddr int }

// refusal is which rule refused an entry; refuseNone admits it.
type refusal int

const (
	refuseNone    refusal = iota
	refusePerAddr         // the address holds limit.perAddr entries
	refuseFull            // the entry does not fit the bound
	refuseReserve         // past 3/4: the rest is for addresses holding few
	refuseTop             // past 1/2: the address holding the most waits
)

// admit says whether k may add an entry of cost units under l. It is the
// one place the fairness rules are decided.
func (p *pool) admit(l limit, k addrKey, cost int) refusal {
	mine := p.by[k]
	after := p.total + cost
	switch {
	case mine.n >= l.perAddr:
		return refusePerAddr
	case after > l.bound:
		return refuseFull
	case mine.n < fewPerAddr:
		return refuseNone
	case after > l.bound-l.bound/4:
		return refuseReserve
	case after > l.bound/2 && p.holdsMost(k):
		return refuseTop
	}
	return refuseNone
}

// holdsMost reports whether k holds more units than any other address:
// addresses tied for the most may step ahead in turn, so that a room
// fills evenly among them.
func (p *pool) holdsMost(k addrKey) bool {
	mine := p.by[k].units
	for o, h := range p.by {
		if o != k && h.units >= mine {
			return false
		}
	}
	return true
}

func (p *pool) add(k addrKey, cost int) {
	if p.by == nil {
		p.by = make(map[addrKey]holding)
	}
	h := p.by[k]
	p.by[k] = holding{h.n + 1, h.units + cost}
	p.total += cost
}

func (p *pool) remove(k addrKey, cost int) {
	h, ok := p.by[k]
	if !ok {
		return
	}
	p.total -= cost
	if h.n <= 1 {
		delete(p.by, k)
		return
	}
	p.by[k] = holding{h.n - 1, h.units - cost}
}

// held is what k holds of p.
func (p *pool) held(k addrKey) holding { return p.by[k] }

// userCost is what a user weighs in its room's user list: its entries in
// the userlist's "users" and "peers", as encoded (JSON escaping included).
func userCost(name string, meta json.RawMessage) int {
	n, err := json.Marshal(name)
	if err != nil {
		return MaxMessageSize
	}
	p, err := json.Marshal(PeerInfo{Name: name, Meta: meta})
	if err != nil {
		return MaxMessageSize
	}
	return len(n) + len(p) + 2 // two commas
}

// admitConnLocked says why a new connection from k is refused (nil if it
// is not), under the server's lock. The server-wide bound (MaxClients)
// is checked before, with its own answer.
func (s *Server) admitConnLocked(k addrKey) *ServerError {
	l := limit{bound: s.cfg.MaxClients, perAddr: s.cfg.MaxConnsPerAddr}
	mine := s.addrs.held(k)
	switch s.addrs.admit(l, k, 1) {
	case refusePerAddr:
		return &ServerError{CodeAddressLimit, fmt.Sprintf("signal: too many connections from your address (%s): %d are open, the most one address may have; close some and try again",
			showKey(k), mine.n)}
	case refuseFull:
		return &ServerError{CodeServerFull, "signal: too many clients"}
	case refuseReserve:
		return &ServerError{CodeAddressLimit, fmt.Sprintf("signal: this host is nearly full and keeps the rest for addresses with few connections; yours (%s) has %d: close some and try again",
			showKey(k), mine.n)}
	case refuseTop:
		return &ServerError{CodeAddressLimit, fmt.Sprintf("signal: this host is busy and your address (%s) holds the most connections to it (%d): close some and try again",
			showKey(k), mine.n)}
	}
	return nil
}

// admitLoginLocked says why c may not log in to its room with a user
// list entry of cost bytes (nil if it may), under the server's lock.
func (s *Server) admitLoginLocked(c *conn, cost int) *ServerError {
	r := s.rooms.rooms[c.room]
	if r == nil {
		r = &room{}
	}
	l := limit{bound: s.cfg.MaxRoomBytes, perAddr: s.cfg.MaxUsersPerAddr}
	mine := r.load.held(c.from)
	switch r.load.admit(l, c.from, cost) {
	case refusePerAddr:
		return &ServerError{CodeAddressLimit, fmt.Sprintf("this room has %d users from your address (%s), the most one address may have: log out one of them first",
			mine.n, showKey(c.from))}
	case refuseFull:
		return &ServerError{CodeRoomFull, fmt.Sprintf("this room is full (its user list holds %d of %d bytes): try again when someone leaves",
			r.load.total, s.cfg.MaxRoomBytes)}
	case refuseReserve:
		return &ServerError{CodeAddressLimit, fmt.Sprintf("this room is nearly full and keeps the rest for addresses with few users; yours (%s) has %d: try again when someone leaves",
			showKey(c.from), mine.n)}
	case refuseTop:
		return &ServerError{CodeAddressLimit, fmt.Sprintf("this room is half full and your address (%s) holds the most of it (%d users): try again when some of them leave",
			showKey(c.from), mine.n)}
	}
	return nil
}

// localAddr is the server's address a request came in on, if known.
func localAddr(r *http.Request) netip.Addr {
	a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// checkRoomBytes: a full room's user list must fit half a client's queue,
// so that a new user's list never makes it a slow reader, and one message
// a client reads (maxServerMessage; the web bridge's is the same).
func (c Config) checkRoomBytes() error {
	if limit := min(c.QueueBytes/2, maxServerMessage-MaxMessageSize); c.MaxRoomBytes > limit {
		return fmt.Errorf("signal: MaxRoomBytes %d is over %d: a room's user list must fit in half of QueueBytes (%d) and in one message a client reads (%d bytes)",
			c.MaxRoomBytes, limit, c.QueueBytes, maxServerMessage)
	}
	return nil
}

// Admits reports whether r passes the Host and Origin checks of the
// WebSocket, for handlers in front of the server.
func (s *Server) Admits(r *http.Request) bool { return s.checkHost(r.Host) && s.checkOrigin(r) }

// checkOrigin admits non-browser clients (no Origin header), same-host
// pages and configured origins. A page on another site must not log in.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// checkHost guards against DNS rebinding: a name that resolves to this host
// by an attacker's DNS is not one of ours.
func (s *Server) checkHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil || strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".local") {
		return true
	}
	for _, h := range s.cfg.AllowedHosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// clientAddr is the address a client connects from: the connection's, or
// with TrustProxy the last X-Forwarded-For entry (the one the proxy added).
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	if s.cfg.TrustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if a, err := netip.ParseAddr(strings.TrimSpace(parts[len(parts)-1])); err == nil {
				return a.Unmap()
			}
		}
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
