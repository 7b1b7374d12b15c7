package signal

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/gorilla/websocket"
)

// One test per signaling attack in SECURITY.md ("huge JSON message",
// "duplicate / confusable names", "names with terminal escapes, bidi
// overrides, zero-width chars, newlines", "signaling flood: many
// connections, fast logins, slow readers, slowloris", "a web page on
// another origin; DNS rebinding").

// offerOfSize returns an offer frame from name to other of exactly n bytes.
func offerOfSize(t testing.TB, name, other string, n int) string {
	t.Helper()
	head := fmt.Sprintf(`{"type":"offer","name":%q,"othername":%q,"offer":{"pad":"`, name, other)
	tail := `"}}`
	pad := n - len(head) - len(tail)
	if pad < 0 {
		t.Fatalf("offerOfSize: %d bytes is too small", n)
	}
	return head + strings.Repeat("x", pad) + tail
}

func TestOversizedMessage(t *testing.T) {
	ts := startServer(t, Config{})
	alice := dialRaw(t, ts.next())
	alice.login("alice")
	bob := dialRaw(t, ts.next())
	bob.login("bob")
	alice.expectUpdata("login", "bob")

	// The limit itself is allowed.
	alice.send(offerOfSize(t, "alice", "bob", MaxMessageSize))
	if m := bob.expect("offer"); m["name"] != "alice" {
		t.Fatalf("bob got %s", show(m))
	}

	tests := []struct {
		name string
		send func(t *testing.T, c *rawConn)
	}{
		{"one byte over, fragmented", func(t *testing.T, c *rawConn) {
			// gorilla's client writer sends this as 4 KiB fragments: the
			// limit is on the whole message.
			c.send(offerOfSize(t, "mallory", "bob", MaxMessageSize+1))
		}},
		{"one frame of 1 MiB", func(t *testing.T, c *rawConn) {
			b := []byte(offerOfSize(t, "mallory", "bob", 1<<20))
			if _, err := c.ws.NetConn().Write(maskedFrame(b)); err != nil {
				t.Logf("writing 1 MiB: %v (the server hung up first)", err)
			}
		}},
		{"length prefix of 1 TiB", func(t *testing.T, c *rawConn) {
			// Only the header: nothing may be allocated for the body.
			hdr := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}
			binary.BigEndian.PutUint64(hdr[2:10], 1<<40)
			if _, err := c.ws.NetConn().Write(hdr); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alice, bob := alice.on(t), bob.on(t)
			mallory := dialRaw(t, ts.next())
			mallory.login("mallory")
			alice.expectUpdata("login", "mallory")
			bob.expectUpdata("login", "mallory")

			tt.send(t, mallory)
			err := mallory.expectClosed()
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseMessageTooBig {
				t.Errorf("closed with %v, want code %d (message too big)", err, websocket.CloseMessageTooBig)
			}
			t.Logf("mallory's connection ended: %v", err)

			// Nothing was relayed, mallory is gone, the others carry on.
			bob.expectUpdata("offline", "mallory")
			alice.expectUpdata("offline", "mallory")
			alice.send(`{"type":"offer","name":"alice","othername":"bob","offer":{"sdp":"after"}}`)
			if m := bob.expect("offer"); m["name"] != "alice" {
				t.Fatalf("bob got %s, want alice's offer", show(m))
			}
		})
	}
}

// maskedFrame is b as one final, masked text frame with a 64-bit length.
func maskedFrame(b []byte) []byte {
	f := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(f[2:10], uint64(len(b)))
	return append(f, b...) // mask key 0: the payload goes as it is
}

func TestBinaryFrameIsRefused(t *testing.T) {
	ts := startServer(t, Config{})
	alice := dialRaw(t, ts.next())
	alice.login("alice")
	bob := dialRaw(t, ts.next())
	bob.login("bob")
	alice.expectUpdata("login", "bob")

	frame := `{"type":"offer","name":"alice","othername":"bob","offer":{"sdp":"binary"}}`
	if err := alice.ws.WriteMessage(websocket.BinaryMessage, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	t.Logf("error: %s", alice.expectError())

	alice.send(`{"type":"offer","name":"alice","othername":"bob","offer":{"sdp":"text"}}`)
	m := bob.expect("offer")
	if o := wantObject(t, m, "offer"); o["sdp"] != "text" {
		t.Errorf("bob's first offer is %s, want only the text one", show(m))
	}
}

// nameCases are login names and whether CheckName accepts them on their
// own. They seed FuzzCheckName.
var nameCases = []struct {
	name string
	in   string
	ok   bool
}{
	{"ascii", "alice", true},
	{"capitalised", "Alice", true},
	{"inner space", "Alice Smith", true},
	{"NFC accent", "Jos\u00e9", true},
	{"CJK", "\u674e\u96f7", true},
	{"emoji", "\U0001F600 fan", true},
	{"64 runes", strings.Repeat("\u00e9", MaxNameLength), true},
	{"fullwidth", "\uff21lice", true}, // refused only next to "Alice" (names.Key)
	{"path-like", "../../.ssh/authorized_keys", true},
	{"html", "<b>bob</b>", true},
	{"empty", "", false},
	{"65 runes", strings.Repeat("a", MaxNameLength+1), false},
	{"NFD accent", "Jose\u0301", false},
	{"bidi override", "alice\u202Egnp.exe", false},
	{"bidi isolate", "\u2066alice", false},
	{"right-to-left mark", "alice\u200F", false},
	{"zero-width space", "al\u200Bice", false},
	{"zero-width joiner", "alice\u200D", false},
	{"byte order mark", "\uFEFFalice", false},
	{"soft hyphen", "ali\u00ADce", false},
	{"newline", "ali\nce", false},
	{"carriage return", "alice\r", false},
	{"tab", "ali\tce", false},
	{"NUL", "alice\x00", false},
	{"terminal escape", "a\x1b[1Ab", false},
	{"OSC title", "\x1b]0;pwned\x07", false},
	{"C1 control", "alice\u009b", false},
	{"DEL", "alice\x7f", false},
	{"leading space", " alice", false},
	{"trailing space", "alice ", false},
	{"no-break space", "\u00a0alice", false},
	{"line separator", "alice\u2028", false},
	{"not UTF-8", "al\xffice", false},
	{"private use", "alice\ue000", false},
	{"unassigned", "alice\U000E0080", false},
}

func TestCheckName(t *testing.T) {
	for _, tt := range nameCases {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckName(tt.in)
			if got := err == nil; got != tt.ok {
				t.Fatalf("CheckName(%q) = %v, want ok %v", tt.in, err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrBadName) {
					t.Errorf("CheckName(%q) = %v, want ErrBadName", tt.in, err)
				}
				if hidden := hiddenRune(err.Error()); hidden >= 0 {
					t.Errorf("error %q shows %U unescaped", err, hidden)
				}
			}
		})
	}
}

// hiddenRune returns the first control or format rune in s, or -1.
func hiddenRune(s string) rune {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return r
		}
	}
	return -1
}

// Names that could pass for someone else, or hide part of themselves, are
// refused at login with an error that says why; the connection stays.
func TestConfusableNamesRefused(t *testing.T) {
	ts := startServer(t, Config{})
	alice := dialRaw(t, ts.next())
	alice.login("Alice")
	jose := dialRaw(t, ts.next())
	jose.login("Jos\u00e9")
	alice.expectUpdata("login", "Jos\u00e9")

	tests := []struct {
		name, login string
		reason      string // in the error message
	}{
		{"exact duplicate", "Alice", "taken"},
		{"other case", "alice", `"Alice"`},
		{"upper case", "ALICE", `"Alice"`},
		{"fullwidth letter", "\uff21lice", `"Alice"`},
		{"all fullwidth", "\uff21\uff4c\uff49\uff43\uff45", `"Alice"`},
		{"NFD of an online NFC name", "Jose\u0301", "NFC"},
		{"NFC, other case", "JOS\u00c9", "\"Jos\u00e9\""},
		{"bidi override", "Alice\u202Egnp.exe", "U+202E"},
		{"zero-width space", "Al\u200Bice", "U+200B"},
		{"newline", "Alice\nadmin", "U+000A"},
		{"terminal escape", "A\x1b[1Alice", "U+001B"},
		{"trailing space", "Alice ", "space"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alice, jose := alice.on(t), jose.on(t)
			// A name of its own per case: across cluster nodes the last
			// case's carol may still hold hers for a moment after her
			// offline reached alice.
			carol := fmt.Sprintf("carol%d", i)
			c := dialRaw(t, ts.next())
			c.send(map[string]any{"type": "login", "name": tt.login})
			m := c.expect("login")
			if m["success"] != false {
				t.Fatalf("login as %q: reply %s, want success false", tt.login, show(m))
			}
			msg := c.expectError()
			if !strings.Contains(msg, tt.reason) {
				t.Errorf("error %q does not say %q", msg, tt.reason)
			}
			if r := hiddenRune(msg); r >= 0 {
				t.Errorf("error %q carries %U unescaped", msg, r)
			}
			// Still connected; a clean name is accepted.
			users := c.login(carol)
			if !sameSet(users, "Alice", "Jos\u00e9", carol) {
				t.Errorf("userlist %q", users)
			}
			// The refused name never reached anyone.
			alice.expectUpdata("login", carol)
			jose.expectUpdata("login", carol)
			c.ws.Close()
			alice.expectUpdata("offline", carol)
			jose.expectUpdata("offline", carol)
		})
	}
}

// Many connections racing for one name: exactly one gets it.
func TestConcurrentLoginsOneWinner(t *testing.T) {
	const n = 20
	ts := startServer(t, Config{})
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dialRaw(t, ts.next())
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"login","name":"same"}`))
		})
	}
	wg.Wait()
	won := 0
	for _, c := range conns {
		m := c.expect("login")
		if m["success"] == true {
			won++
		} else {
			c.expectError()
		}
	}
	if won != 1 {
		t.Errorf("%d of %d connections logged in as \"same\", want 1", won, n)
	}
	if got := ts.Users(); len(got) != 1 {
		t.Errorf("Users() = %q, want one user", got)
	}
}

// A client sending as fast as it can is rate-limited and told so; the
// relay between two other clients is not held up.
func TestFloodIsRateLimited(t *testing.T) {
	const rate, burst, sent = 10, 20, 300
	ts := startServer(t, Config{Rate: rate, Burst: burst})
	alice := dialRaw(t, ts.next())
	alice.login("alice")
	bob := dialRaw(t, ts.next())
	bob.login("bob")
	flooder := dialRaw(t, ts.next())
	flooder.login("flooder")
	target := dialRaw(t, ts.next())
	target.login("target")
	alice.expectUpdata("login", "bob")
	alice.expectUpdata("login", "flooder")
	alice.expectUpdata("login", "target")
	bob.expectUpdata("login", "flooder")
	bob.expectUpdata("login", "target")
	flooder.expectUpdata("login", "target")

	start := time.Now()
	for i := range sent {
		flooder.send(fmt.Sprintf(`{"type":"offer","name":"flooder","othername":"target","offer":{"n":%d}}`, i))
	}
	msg := flooder.expectError()
	if !strings.Contains(msg, "rate") {
		t.Errorf("flooder got error %q, want one about the rate limit", msg)
	}

	t0 := time.Now()
	alice.send(`{"type":"offer","name":"alice","othername":"bob","offer":{"sdp":"x"}}`)
	bob.expect("offer")
	t.Logf("alice -> bob relay during the flood: %v", time.Since(t0))

	// The flooder leaves; everything it sent before has been read by then.
	flooder.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(waitFor))
	relayed := 0
	for {
		m := target.next()
		if m["type"] == "updata" {
			if m["action"] != "offline" || m["name"] != "flooder" {
				t.Fatalf("target got %s", show(m))
			}
			break
		}
		if m["type"] != "offer" || m["name"] != "flooder" {
			t.Fatalf("target got %s, want flooder's offers", show(m))
		}
		relayed++
	}
	elapsed := time.Since(start)
	limit := burst + int(rate*elapsed.Seconds()) + 1
	t.Logf("%d of %d offers relayed in %v (limit %d)", relayed, sent, elapsed, limit)
	if relayed > limit {
		t.Errorf("%d offers relayed in %v, want at most %d", relayed, elapsed, limit)
	}
	alice.expectUpdata("offline", "flooder")
}

// A client that never reads is disconnected once its queue is full; the
// others are never held up by it. The queue fills from senders each
// within its share (a ninth of it each, see queue.go): one sender alone is
// told the receiver is busy instead (TestRelayBurstThrottlesTheSender).
func TestSlowReaderIsDropped(t *testing.T) {
	needLoopbackAddrs(t)
	const sent, size, senders = 400, 32 << 10, senderShares + 1
	ts := startServer(t, Config{QueueSize: 16, Rate: 1e6, Burst: 1e6})
	bob := dialRaw(t, ts.next())
	bob.login("bob")
	carol := dialRaw(t, ts.next())
	carol.login("carol")
	bob.expectUpdata("login", "carol")
	from := make([]*rawConn, senders)
	for i := range from {
		name := fmt.Sprintf("sender%d", i)
		from[i] = dialRawFrom(t, ts.next(), fmt.Sprintf("127.0.0.%d", 20+i))
		from[i].login(name)
		for _, c := range append([]*rawConn{bob, carol}, from[:i]...) {
			c.expectUpdata("login", name)
		}
	}
	slow := dialRaw(t, ts.next())
	slow.login("slow") // and from now on reads nothing
	for _, c := range append([]*rawConn{bob, carol}, from...) {
		c.expectUpdata("login", "slow")
	}

	// The senders take turns; after each round every one relays a leave
	// to itself and waits for it, so that few of its frames are in
	// flight: once slow is gone each offer is answered with an error, and
	// with QueueSize 16 the senders too must keep up.
	start := time.Now()
	var worst, dropped time.Duration
	n, heard, busy := 0, make([]bool, senders), 0
	for i := 0; i < sent && !heard[0]; i++ {
		from[i%senders].send(offerOfSize(t, fmt.Sprintf("sender%d", i%senders), "slow", size))
		n++
		if i%senders == senders-1 {
			for j, c := range from {
				name := fmt.Sprintf("sender%d", j)
				c.send(fmt.Sprintf(`{"type":"leave","name":%q,"othername":%q}`, name, name))
				for m := c.next(); m["type"] != "leave"; m = c.next() {
					switch {
					case m["type"] == "updata" && m["action"] == "offline" && m["name"] == "slow" && !heard[j]:
						heard[j] = true
					case m["type"] == "error" && heard[j]:
						// an offer sent after slow was gone
					case m["type"] == "error" && strings.Contains(wantString(t, m, "message"), "busy"):
						busy++ // this sender's share was full before slow's queue
					default:
						t.Fatalf("%s got %s, want its own leave", name, show(m))
					}
				}
			}
		}
		if i%50 == 0 {
			// bob -> carol keeps flowing while slow's buffers fill.
			t0 := time.Now()
			bob.send(fmt.Sprintf(`{"type":"candidate","name":"bob","othername":"carol","candidate":{"n":%d}}`, i))
			for m := carol.next(); m["type"] != "candidate"; m = carol.next() {
				if dropped != 0 || m["type"] != "updata" || m["action"] != "offline" || m["name"] != "slow" {
					t.Fatalf("carol got %s, want bob's candidate", show(m))
				}
				dropped = time.Since(start)
			}
			worst = max(worst, time.Since(t0))
		}
	}
	t.Logf("%d offers of %d KiB sent to the slow reader by %d senders in %v (%d refused as busy); worst bob -> carol relay meanwhile %v",
		n, size>>10, senders, time.Since(start), busy, worst)
	if !heard[0] {
		t.Fatalf("all %d offers sent and slow is still online", n)
	}
	bob.expectUpdata("offline", "slow")
	if dropped == 0 {
		carol.expectUpdata("offline", "slow")
		dropped = time.Since(start)
	}
	t.Logf("slow reader dropped within %v of the flood's start", dropped)

	got := 0
	err := func() error {
		for {
			slow.ws.SetReadDeadline(time.Now().Add(waitFor))
			if _, _, err := slow.ws.ReadMessage(); err != nil {
				return err
			}
			got++
		}
	}()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("slow reader's connection still open after reading %d messages", got)
	}
	if got >= n {
		t.Errorf("slow reader received all %d offers; want it cut off", got)
	}
	t.Logf("slow reader received %d of %d offers, then: %v", got, n, err)
}

// A logged-in client that answers neither pings nor anything else is
// dropped after two ping intervals; one that answers stays.
func TestUnresponsiveClientDropped(t *testing.T) {
	const interval = 200 * time.Millisecond
	ts := startServer(t, Config{PingInterval: interval, WriteTimeout: interval})
	alice, _, _ := startClient(t, ClientConfig{URL: ts.next(), Name: "alice", PingInterval: interval})
	ghost := dialRaw(t, ts.next())
	ghost.login("ghost") // and never reads again, so never answers a ping
	start := time.Now()
	waitPeers(t, alice, "alice", "ghost")
	waitPeers(t, alice, "alice")
	if d := time.Since(start); d < 2*interval {
		t.Errorf("ghost dropped after %v, before two ping intervals", d)
	}
	t.Logf("ghost dropped after %v", time.Since(start))

	// alice, idle all along but answering pings, is still there.
	bob := dialRaw(t, ts.next())
	bob.login("bob")
	if err := alice.Send(Message{Type: TypeOffer, OtherName: "bob", Offer: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if m := bob.expect("offer"); m["name"] != "alice" {
		t.Fatalf("bob got %s", show(m))
	}
}

// A connection that does not log in within LoginTimeout is closed; one
// that did is not.
func TestLoginTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := startServer(t, Config{LoginTimeout: timeout})
	alice := dialRaw(t, ts.next())
	alice.login("alice")
	bob := dialRaw(t, ts.next())
	bob.login("bob")
	alice.expectUpdata("login", "bob")

	start := time.Now()
	idle := dialRaw(t, ts.next())
	failing := dialRaw(t, ts.next())
	failing.send(`{"type":"login","name":""}`) // a failed login does not count
	failing.expect("login")
	failing.expectError()

	for name, c := range map[string]*rawConn{"idle": idle, "failed login": failing} {
		err := c.expectClosed()
		if d := time.Since(start); d < timeout {
			t.Errorf("%s connection closed after %v, before the login timeout %v", name, d, timeout)
		}
		t.Logf("%s connection closed after %v: %v", name, time.Since(start), err)
	}

	// alice and bob logged in longer ago than the timeout and still talk.
	alice.send(`{"type":"offer","name":"alice","othername":"bob","offer":{}}`)
	bob.expect("offer")
}

// Serve cuts off a client that never finishes its request headers.
func TestSlowlorisHeaders(t *testing.T) {
	const timeout = 300 * time.Millisecond
	checkNoLeaks(t)
	ss := serveLoopback(t, Config{ReadHeaderTimeout: timeout})
	addr := ss.addr

	// A normal client is served.
	alice := dialRaw(t, ss.url)
	alice.login("alice")

	c, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Up"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitFor))
	rest, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server kept a half-sent request open for %v", waitFor)
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("closed after %v, before ReadHeaderTimeout %v", d, timeout)
	}
	t.Logf("half-sent request closed after %v (read %q, %v)", time.Since(start), rest, err)

	// alice was not affected.
	alice.send(`{"type":"login","name":"again"}`)
	alice.expectError()
}

// More than MaxClients connections are answered with 503.
func TestMaxClients(t *testing.T) {
	ts := startServer(t, Config{MaxClients: 3})
	a := dialRaw(t, ts.next())
	a.login("a")
	b := dialRaw(t, ts.next())
	b.login("b")
	a.expectUpdata("login", "b")
	dialRaw(t, ts.next()) // not logged in: counts all the same

	_, resp, err := dialRawHeader(t, ts.url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("4th connection: err %v, response %v; want 503", err, resp)
	}

	b.ws.Close()
	a.expectUpdata("offline", "b") // b's slot is free once the others hear it left
	d := dialRaw(t, ts.next())
	d.login("d")
}

// A page on another origin must not reach the WebSocket; non-browser
// clients (no Origin) and same-origin pages may.
func TestCrossOriginRefused(t *testing.T) {
	tests := []struct {
		name    string
		origin  string // "" sends none; "SELF" is the server's own origin
		allowed []string
		ok      bool
	}{
		{"no Origin", "", nil, true},
		{"same origin", "SELF", nil, true},
		{"other site", "http://evil.example", nil, false},
		{"other site on our port", "http://evil.example:PORT", nil, false},
		{"same IP, other port", "http://127.0.0.1:1", nil, false},
		{"opaque origin", "null", nil, false},
		{"file page", "file://", nil, false},
		{"configured origin", "https://app.example", []string{"https://app.example/"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, Config{AllowedOrigins: tt.allowed})
			origin := strings.ReplaceAll(tt.origin, "PORT", ts.host[strings.LastIndex(ts.host, ":")+1:])
			if origin == "SELF" {
				origin = "http://" + ts.host
			}
			h := http.Header{}
			if origin != "" {
				h.Set("Origin", origin)
			}
			c, resp, err := dialRawHeader(t, ts.url, h)
			if !tt.ok {
				if err == nil {
					t.Fatalf("Origin %q with Host %s: upgrade accepted", origin, ts.host)
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Errorf("Origin %q: %v (%v), want 403", origin, err, resp)
				}
				return
			}
			if err != nil {
				t.Fatalf("Origin %q: %v", origin, err)
			}
			c.login("alice")
		})
	}
}

// A Host header naming another site is a DNS-rebinding attempt: refused.
func TestDNSRebindingRefused(t *testing.T) {
	tests := []struct {
		name    string
		host    string // PORT is replaced
		allowed []string
		ok      bool
	}{
		{"IP literal", "127.0.0.1:PORT", nil, true},
		{"localhost", "localhost:PORT", nil, true},
		{"mDNS name", "lanft-host.local:PORT", nil, true},
		{"other site", "evil.example", nil, false},
		{"other site with port", "evil.example:PORT", nil, false},
		{"IP-looking subdomain", "127.0.0.1.evil.example:PORT", nil, false},
		{"localhost subdomain", "localhost.evil.example:PORT", nil, false},
		{"configured name", "signal.example.org:PORT", []string{"signal.example.org"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, Config{AllowedHosts: tt.allowed})
			host := strings.ReplaceAll(tt.host, "PORT", ts.host[strings.LastIndex(ts.host, ":")+1:])
			h := http.Header{"Host": {host}}
			c, resp, err := dialRawHeader(t, ts.url, h)
			if !tt.ok {
				if err == nil {
					t.Fatalf("Host %q: upgrade accepted", host)
				}
				if resp == nil || resp.StatusCode < 400 {
					t.Errorf("Host %q: %v (%v), want a 4xx refusal", host, err, resp)
				}
				return
			}
			if err != nil {
				t.Fatalf("Host %q: %v", host, err)
			}
			c.login("alice")
		})
	}
}
