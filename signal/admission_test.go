package signal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestPoolAdmit(t *testing.T) {
	a, b, c := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32"), netip.MustParsePrefix("192.0.2.3/32")
	l := limit{bound: 100, perAddr: 10}
	tests := []struct {
		name string
		held map[addrKey]holding
		k    addrKey
		cost int
		want refusal
	}{
		{"empty", nil, a, 1, refuseNone},
		{"at the per-address cap", map[addrKey]holding{a: {10, 10}}, a, 1, refusePerAddr},
		{"another address at the cap", map[addrKey]holding{a: {10, 10}}, b, 1, refuseNone},
		{"over the bound, even for a new address", map[addrKey]holding{a: {9, 99}}, b, 2, refuseFull},
		{"up to the bound for a new address", map[addrKey]holding{a: {9, 98}}, b, 2, refuseNone},
		{"a new address has room past 3/4", map[addrKey]holding{a: {8, 80}, b: {3, 3}}, b, 1, refuseNone},
		{"past 3/4, an address with a few is refused", map[addrKey]holding{a: {4, 70}, b: {4, 4}}, b, 2, refuseReserve},
		{"past 1/2, the one holding most is refused", map[addrKey]holding{a: {6, 40}, b: {4, 10}}, a, 1, refuseTop},
		{"past 1/2, one holding less may go on", map[addrKey]holding{a: {6, 40}, b: {4, 10}}, b, 1, refuseNone},
		{"past 1/2, a tie may step ahead", map[addrKey]holding{a: {5, 26}, b: {5, 26}}, a, 1, refuseNone},
		{"past 1/2, a lone address holds the most", map[addrKey]holding{a: {6, 60}}, a, 1, refuseTop},
		{"below 1/2, the one holding most may go on", map[addrKey]holding{a: {6, 40}, b: {4, 5}}, a, 1, refuseNone},
		{"a third address holding less", map[addrKey]holding{a: {6, 30}, b: {6, 30}, c: {4, 4}}, c, 1, refuseNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pool{by: map[addrKey]holding{}}
			for k, h := range tt.held {
				p.by[k] = h
				p.total += h.units
			}
			if got := p.admit(l, tt.k, tt.cost); got != tt.want {
				t.Errorf("admit(%v, %d) with %v = %d, want %d", tt.k, tt.cost, tt.held, got, tt.want)
			}
		})
	}
}

func TestPoolAddRemove(t *testing.T) {
	a := netip.MustParsePrefix("192.0.2.1/32")
	var p pool
	p.add(a, 5)
	p.add(a, 7)
	if got := p.held(a); got != (holding{2, 12}) || p.total != 12 {
		t.Fatalf("after two adds: %v total %d, want {2 12} total 12", got, p.total)
	}
	p.remove(a, 5)
	p.remove(a, 7)
	if len(p.by) != 0 || p.total != 0 {
		t.Fatalf("after removing both: %v total %d, want empty", p.by, p.total)
	}
	p.remove(a, 3) // not held: nothing happens
	if p.total != 0 {
		t.Fatalf("removing what is not held changed the total to %d", p.total)
	}
}

func TestKeyOf(t *testing.T) {
	tests := []struct {
		name, addr, local, want string
	}{
		{"IPv4", "203.0.113.5", "198.51.100.1", "203.0.113.5/32"},
		{"IPv4-mapped", "::ffff:203.0.113.5", "198.51.100.1", "203.0.113.5/32"},
		{"remote IPv6 host: its /64", "2001:db8:1:2:aaaa::1", "2001:db8:9::1", "2001:db8:1:2::/64"},
		{"IPv6 on our own /64 (the LAN): the address", "2001:db8:1:2:aaaa::1", "2001:db8:1:2::1", "2001:db8:1:2:aaaa::1/128"},
		{"link-local: the address", "fe80::1", "fe80::2", "fe80::1/128"},
		{"unique local: the address", "fd00::1", "2001:db8::1", "fd00::1/128"},
		{"loopback", "127.0.0.2", "127.0.0.1", "127.0.0.2/32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := keyOf(netip.MustParseAddr(tt.addr), netip.MustParseAddr(tt.local))
			if got.String() != tt.want {
				t.Errorf("keyOf(%s, %s) = %s, want %s", tt.addr, tt.local, got, tt.want)
			}
		})
	}
	if k := keyOf(netip.Addr{}, netip.Addr{}); k.IsValid() {
		t.Errorf("keyOf(unknown) = %s, want the invalid key", k)
	}
}

func TestUserCostIsTheUserlistEntry(t *testing.T) {
	meta := json.RawMessage(`{"v":1,"title":"<b>&</b>"}`)
	one, err := Encode(Message{Type: TypeUserlist, Users: []string{"a"}, Peers: []PeerInfo{{Name: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	two, err := Encode(Message{Type: TypeUserlist, Users: []string{"a", "ünï"}, Peers: []PeerInfo{{Name: "a"}, {Name: "ünï", Meta: meta}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := userCost("ünï", meta), len(two)-len(one); got != want {
		t.Errorf("userCost = %d, want %d (what the user adds to the encoded userlist)", got, want)
	}
}

func TestConfigLimitsValidated(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"defaults", Config{}, ""},
		{"negative per-address cap", Config{MaxConnsPerAddr: -1}, "negative"},
		{"negative users per address", Config{MaxUsersPerAddr: -1}, "negative"},
		{"room list over half the queue", Config{QueueBytes: 1 << 20, MaxRoomBytes: 1<<19 + 1}, "MaxRoomBytes"},
		{"room list over what a client reads", Config{QueueBytes: 64 << 20, MaxRoomBytes: 8 << 20}, "MaxRoomBytes"},
		{"small queue, default room list", Config{QueueBytes: 64 << 10}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewServer(tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("NewServer: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("NewServer error %v, want one about %s", err, tt.want)
			case err == nil && s.cfg.MaxRoomBytes > s.cfg.QueueBytes/2:
				t.Fatalf("default MaxRoomBytes %d over half of QueueBytes %d", s.cfg.MaxRoomBytes, s.cfg.QueueBytes)
			}
		})
	}
}

// pad4K is a login meta of MaxMetaSize bytes.
func pad4K() json.RawMessage {
	head := `{"pad":"`
	return json.RawMessage(head + strings.Repeat("x", MaxMetaSize-len(head)-2) + `"}`)
}

// loginDraining logs in as name with meta and reports whether the server
// accepted, or why not (checking that the refusal is the login reply with
// success false and its "message", then the matching error). A client
// logged in reads, and discards, everything from then on, so that a
// flood's clients are never slow readers.
func (c *rawConn) loginDraining(name string, meta json.RawMessage) (ok bool, why string) {
	c.t.Helper()
	c.send(Message{Type: TypeLogin, Name: name, Meta: meta})
	m := c.expect("login")
	if m["success"] == true {
		go func() {
			for {
				if _, _, err := c.ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		return true, ""
	}
	msg, _ := m["message"].(string)
	if e := c.expectError(); e != "login failed: "+msg {
		c.t.Fatalf("refused login: error %q, want %q", e, "login failed: "+msg)
	}
	return false, msg
}

// A flood from several addresses fills no more of a room than the rules
// allow: one address with small metas stops at its cap (MaxUsersPerAddr),
// one with 4 KiB metas at half the room (it holds the most), the next
// ones at three quarters but for a few users each; then two users from
// new addresses still log in and reach each other.
func TestRoomFloodLeavesRoomForNewAddresses(t *testing.T) {
	needLoopbackAddrs(t)
	const perAddr, bound = 40, 256 << 10
	ts := startServer(t, Config{MaxUsersPerAddr: perAddr, MaxRoomBytes: bound})
	floods := []struct {
		ip   string
		meta json.RawMessage
		want string // the refusal that stops it
	}{
		{"127.0.0.10", json.RawMessage(`{"v":1}`), "the most one address may have"},
		{"127.0.0.11", pad4K(), "holds the most of it"},
		{"127.0.0.12", pad4K(), "keeps the rest for addresses with few users"},
		{"127.0.0.13", pad4K(), "keeps the rest for addresses with few users"},
	}
	in := map[string]int{}
	for i, f := range floods {
		why := ""
		for n := 0; why == "" && n <= perAddr; n++ {
			c := dialRawFrom(t, ts.next(), f.ip)
			var ok bool
			if ok, why = c.loginDraining(fmt.Sprintf("flood-%d-%d", i, n), f.meta); ok {
				in[f.ip]++
			} else {
				c.ws.Close()
			}
		}
		if !strings.Contains(why, f.want) || !strings.Contains(why, f.ip) {
			t.Fatalf("flood from %s stopped after %d users by %q, want a refusal saying %q and naming the address",
				f.ip, in[f.ip], why, f.want)
		}
		t.Logf("flood from %s: %d users, then %q", f.ip, in[f.ip], why)
	}
	cost := userCost("flood-1-00", pad4K())
	if got := in["127.0.0.11"] * cost; got > bound/2 {
		t.Errorf("the first big flood holds %d bytes of the list, over half of %d", got, bound)
	}
	if got := in["127.0.0.13"]; got != fewPerAddr {
		t.Errorf("the last flood address got %d users in past three quarters, want the few (%d) every address may have", got, fewPerAddr)
	}

	alice := dialRawFrom(t, ts.next(), "127.0.0.50")
	if ok, why := alice.loginDraining("alice", pad4K()); !ok {
		t.Fatalf("alice, from a new address, refused: %s", why)
	}
	bob := dialRawFrom(t, ts.next(), "127.0.0.51")
	bob.send(Message{Type: TypeLogin, Name: "bob", Meta: pad4K()})
	if users := bob.expectLoggedIn(); !sameSetContains(users, "alice", "bob") {
		t.Fatalf("bob's list lacks alice or bob")
	}
	alice.send(`{"type":"offer","name":"alice","othername":"bob","offer":{"sdp":"x"}}`)
	for {
		m := bob.next()
		if m["type"] == "offer" {
			if m["name"] != "alice" {
				t.Fatalf("bob got %s, want alice's offer", show(m))
			}
			break
		}
	}
}

func sameSetContains(got []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

// Past MaxConnsPerAddr an address's upgrade is refused with 429 and a
// reason the client shows; other addresses still connect.
func TestConnectionsPerAddress(t *testing.T) {
	needLoopbackAddrs(t)
	const perAddr = 5
	ts := startServer(t, Config{MaxConnsPerAddr: perAddr})
	for range perAddr {
		dialRawFrom(t, ts.url, "127.0.0.2")
	}
	d := *websocket.DefaultDialer
	d.NetDialContext = fromAddr("127.0.0.2")
	_, resp, err := dialRawWith(t, &d, ts.url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("connection %d from one address: err %v, response %v; want 429", perAddr+1, err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "too many connections from your address (127.0.0.2)") {
		t.Errorf("429 body %q, want the reason with the address", body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err = Dial(ctx, ClientConfig{URL: ts.url, Name: "extra", NetDialContext: fromAddr("127.0.0.2")})
	if err == nil || !strings.Contains(err.Error(), "too many connections from your address (127.0.0.2)") {
		t.Errorf("Dial from the full address: %v, want the server's reason", err)
	}

	other := dialRawFrom(t, ts.url, "127.0.0.3")
	other.login("other")
}

// A burst of large offers from one sender to a receiver that reads slowly
// for a while is refused at the sender, who is told the receiver is busy;
// the receiver is not dropped for it and gets a later message from
// someone else.
func TestRelayBurstThrottlesTheSender(t *testing.T) {
	needLoopbackAddrs(t)
	const size, most = 60 << 10, 1000
	ts := startServer(t, Config{Rate: 1e6, Burst: 1e6})
	sender := dialRawFrom(t, ts.url, "127.0.0.2")
	sender.login("sender")
	// The victim's socket holds little, so that what it does not read
	// piles up in its queue at the server.
	d := *websocket.DefaultDialer
	small := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")},
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
			})
			return errors.Join(err, serr)
		}}
	d.NetDialContext = small.DialContext
	victim, _, err := dialRawWith(t, &d, ts.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	victim.login("victim")
	carol := dialRawFrom(t, ts.url, "127.0.0.4")
	carol.login("carol")
	sender.expectUpdata("login", "victim")
	sender.expectUpdata("login", "carol")
	victim.expectUpdata("login", "carol")
	// From now on the victim reads nothing until the burst is over.

	busy := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			b, err := sender.nextRaw()
			if err != nil {
				return
			}
			var m Message
			if json.Unmarshal(b, &m) == nil && m.Type == TypeError && m.Refusal().Code == CodeReceiverBusy {
				select {
				case busy <- m.Message:
				default:
				}
			}
		}
	})
	t.Cleanup(func() { sender.ws.Close(); wg.Wait() })
	offer := offerOfSize(t, "sender", "victim", size)
	sent, start := 0, time.Now()
	var told string
	for told == "" && sent < most {
		sender.send(offer)
		sent++
		select {
		case told = <-busy:
		default:
		}
	}
	burst := time.Since(start)
	carol.send(`{"type":"offer","name":"carol","othername":"victim","offer":{"sdp":"from carol"}}`)
	got := 0
	for {
		b, err := victim.nextRaw()
		if err != nil {
			t.Fatalf("victim cut off after reading %d of the sender's offers: %v", got, err)
		}
		m, err := decodeObject(b)
		if err != nil {
			t.Fatal(err)
		}
		if m["type"] == "offer" && m["name"] == "carol" {
			break
		}
		if m["type"] != "offer" || m["name"] != "sender" {
			t.Fatalf("victim got %.200s, want the sender's offers, then carol's", b)
		}
		got++
	}
	t.Logf("victim read %d of the sender's %d offers, then carol's", got, sent)
	if got >= sent {
		t.Errorf("victim got all %d offers: the burst was not throttled", sent)
	}
	if users := ts.Users(); !sameSetContains(users, "victim") {
		t.Errorf("victim is not online any more: %q", users)
	}
	if told == "" {
		select {
		case told = <-busy:
		case <-time.After(waitFor):
			t.Fatalf("%d offers of %d KiB sent to a receiver that did not read, and the sender was never told it is busy", sent, size>>10)
		}
	}
	t.Logf("sender told after %d offers (%d MiB) in %v: %q", sent, sent*size>>20, burst, told)
	if want := `cannot send "offer" to "victim" now: "victim" is busy`; !strings.HasPrefix(told, want) {
		t.Errorf("sender told %q, want it to start %q", told, want)
	}
}

// Behind a proxy (TrustProxy) the limits count each client's address from
// X-Forwarded-For, not the proxy's.
func TestConnectionsPerAddressBehindProxy(t *testing.T) {
	const perAddr = 2
	ts := startServer(t, Config{MaxConnsPerAddr: perAddr, TrustProxy: true})
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {"203.0.113.9, " + ip}} }
	for range perAddr {
		if _, _, err := dialRawHeader(t, ts.url, from("198.51.100.7")); err != nil {
			t.Fatal(err)
		}
	}
	_, resp, err := dialRawHeader(t, ts.url, from("198.51.100.7"))
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("connection %d from one forwarded address: err %v, response %v; want 429", perAddr+1, err, resp)
	}
	if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), "(198.51.100.7)") {
		t.Errorf("429 body %q, want the forwarded address named", body)
	}
	// Another client behind the same proxy still gets in.
	if _, _, err := dialRawHeader(t, ts.url, from("198.51.100.8")); err != nil {
		t.Fatalf("another forwarded address: %v", err)
	}
}
