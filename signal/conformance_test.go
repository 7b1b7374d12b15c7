package signal

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// These tests speak to the server over raw WebSocket connections, sending
// JSON exactly as PROTOCOL.md writes it and checking the JSON that comes
// back field by field, with the JSON types the protocol names. A client
// written from the original text must work unchanged against lanft.

// Payloads as a browser's RTCPeerConnection produces them, plus the odd
// characters that must cross the relay unchanged.
const (
	offerJSON     = `{"type":"offer","sdp":"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=fingerprint:sha-256 8F:1A:CC:03\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"}`
	answerJSON    = `{"type":"answer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=setup:active\r\n","extra":{"nested":[1,2.50,-3e10,true,false,null],"html":"<script>&amp;</script>","uni":"é\u00e9 😀 \u2028"}}`
	candidateJSON = `{"candidate":"candidate:842163049 1 udp 1677729535 192.168.1.5 54321 typ srflx raddr 0.0.0.0 rport 0 generation 0","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":null}`
)

func TestLoginUserlistAndUpdata(t *testing.T) {
	ts := startServer(t, Config{})

	alice := dialRaw(t, ts.next())
	alice.send(`{"type":"login","name":"alice"}`)
	reply := alice.expect("login")
	if len(reply) != 2 || reply["success"] != true {
		t.Fatalf(`login reply %s, want exactly {"type":"login","success":true}`, show(reply))
	}
	if users := wantStrings(t, alice.expect("userlist"), "users"); !slices.Equal(users, []string{"alice"}) {
		t.Fatalf("alice's userlist %q, want [alice]", users)
	}

	bob := dialRaw(t, ts.next())
	if users := bob.login("bob"); !sameSet(users, "alice", "bob") {
		t.Fatalf("bob's userlist %q, want alice and bob", users)
	}
	alice.expectUpdata("login", "bob")

	carol := dialRaw(t, ts.next())
	if users := carol.login("carol"); !sameSet(users, "alice", "bob", "carol") {
		t.Fatalf("carol's userlist %q, want alice, bob and carol", users)
	}
	for _, c := range []*rawConn{alice, bob} {
		m := c.expectUpdata("login", "carol")
		if len(m) != 3 {
			t.Errorf("updata %s carries extra fields for a user who sent no lanft meta", show(m))
		}
	}
	if got := ts.Users(); !slices.Equal(got, []string{"alice", "bob", "carol"}) {
		t.Errorf("Users() = %q, want [alice bob carol]", got)
	}
}

func TestRelay(t *testing.T) {
	ts := startServer(t, Config{})
	alice := dialRaw(t, ts.next())
	alice.login("alice")
	bob := dialRaw(t, ts.next())
	bob.login("bob")
	alice.expectUpdata("login", "bob")

	tests := []struct {
		name     string
		from, to *rawConn
		fromName string
		frame    string
		typ      string
		payload  string // "" for leave
	}{
		{"offer", alice, bob, "alice",
			`{"type":"offer","name":"alice","othername":"bob","offer":` + offerJSON + `}`, "offer", offerJSON},
		{"answer", bob, alice, "bob",
			`{"type":"answer","name":"bob","othername":"alice","answer":` + answerJSON + `}`, "answer", answerJSON},
		{"candidate from caller", alice, bob, "alice",
			`{"type":"candidate","name":"alice","othername":"bob","candidate":` + candidateJSON + `}`, "candidate", candidateJSON},
		{"candidate from callee", bob, alice, "bob",
			`{"type":"candidate","name":"bob","othername":"alice","candidate":` + candidateJSON + `}`, "candidate", candidateJSON},
		{"pretty-printed offer", alice, bob, "alice",
			"{\n  \"type\": \"offer\",\n  \"name\": \"alice\",\n  \"othername\": \"bob\",\n  \"offer\": {\n    \"type\": \"offer\", \"sdp\": \"v=0\\r\\n\"\n  }\n}\n",
			"offer", `{"type":"offer","sdp":"v=0\r\n"}`},
		{"leave", alice, bob, "alice", `{"type":"leave","name":"alice","othername":"bob"}`, "leave", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.from.on(t).send(tt.frame)
			raw, err := tt.to.nextRaw()
			if err != nil {
				t.Fatalf("waiting for the relayed %s: %v", tt.typ, err)
			}
			m, err := decodeObject(raw)
			if err != nil {
				t.Fatalf("relayed %s: %v", raw, err)
			}
			if m["type"] != tt.typ {
				t.Fatalf("got %s, want a relayed %q", raw, tt.typ)
			}
			if got := wantString(t, m, "name"); got != tt.fromName {
				t.Errorf("relayed name %q, want the sender %q", got, tt.fromName)
			}
			if tt.payload == "" {
				if len(m) != 2 {
					t.Errorf("relayed leave %s, want exactly type and name", raw)
				}
				return
			}
			wantObject(t, m, tt.typ)
			var got struct {
				Payload json.RawMessage `json:"offer"`
				Answer  json.RawMessage `json:"answer"`
				Cand    json.RawMessage `json:"candidate"`
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			p := map[string]json.RawMessage{"offer": got.Payload, "answer": got.Answer, "candidate": got.Cand}[tt.typ]
			// Byte-equal after decoding: the same JSON value, re-marshalled.
			if !sameJSON(t, p, []byte(tt.payload)) {
				t.Errorf("payload changed in transit:\n got %s\nwant %s", p, tt.payload)
			}
			a, _ := json.Marshal(decodeAny(t, p))
			b, _ := json.Marshal(decodeAny(t, []byte(tt.payload)))
			if string(a) != string(b) {
				t.Errorf("payload re-marshals to %s, want %s", a, b)
			}
		})
	}
}

// A client that puts someone else's name in a message is relayed under
// the name it logged in with.
func TestSpoofedNameIsReplaced(t *testing.T) {
	ts := startServer(t, Config{})
	mallory := dialRaw(t, ts.next())
	mallory.login("mallory")
	alice := dialRaw(t, ts.next())
	alice.login("alice")
	mallory.expectUpdata("login", "alice")
	bob := dialRaw(t, ts.next())
	bob.login("bob")
	mallory.expectUpdata("login", "bob")
	alice.expectUpdata("login", "bob")

	frames := []string{
		`{"type":"offer","name":"alice","othername":"bob","offer":` + offerJSON + `}`,
		`{"type":"answer","name":"alice","othername":"bob","answer":` + answerJSON + `}`,
		`{"type":"candidate","name":"alice","othername":"bob","candidate":` + candidateJSON + `}`,
		`{"type":"leave","name":"alice","othername":"bob"}`,
		`{"type":"offer","name":"ALICE","othername":"bob","offer":{}}`,
		`{"type":"offer","name":"","othername":"bob","offer":{}}`,
		`{"type":"offer","othername":"bob","offer":{}}`,
		`{"type":"offer","name":["alice"],"othername":"bob","offer":{}}`, // not even a string: refused
	}
	for i, f := range frames[:len(frames)-1] {
		mallory.send(f)
		m := bob.next()
		if got := wantString(t, m, "name"); got != "mallory" {
			t.Errorf("frame %d: bob got %s, relayed as %q, want mallory", i, show(m), got)
		}
	}
	mallory.send(frames[len(frames)-1])
	mallory.expectError()

	// alice, whose name was claimed, heard none of it.
	bob.send(`{"type":"leave","name":"bob","othername":"alice"}`)
	if m := alice.expect("leave"); m["name"] != "bob" {
		t.Errorf("alice's next message %s, want bob's leave", show(m))
	}
}

func TestDisconnectSendsOffline(t *testing.T) {
	ts := startServer(t, Config{})
	alice := dialRaw(t, ts.next())
	alice.login("alice")
	bob := dialRaw(t, ts.next())
	bob.login("bob")
	carol := dialRaw(t, ts.next())
	carol.login("carol")
	alice.expectUpdata("login", "bob")
	alice.expectUpdata("login", "carol")
	bob.expectUpdata("login", "carol")

	// bob's TCP connection just goes away.
	bob.ws.NetConn().Close()
	alice.expectUpdata("offline", "bob")
	carol.expectUpdata("offline", "bob")

	// carol says goodbye properly.
	carol.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(waitFor))
	alice.expectUpdata("offline", "carol")
	if got := ts.Users(); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("Users() = %q, want [alice]", got)
	}

	// The name is free again.
	bob2 := dialRaw(t, ts.next())
	if users := bob2.login("bob"); !sameSet(users, "alice", "bob") {
		t.Errorf("userlist %q, want alice and bob", users)
	}
	alice.expectUpdata("login", "bob")
}

// errorCases are frames the server must answer with an error while keeping
// the connection. They seed FuzzDecode.
var errorCases = []struct {
	name      string
	loggedIn  bool   // the sender logs in as alice first; bob is always online
	frame     string // sent as one text frame
	loginFail bool   // a login reply with success false comes before the error
	code      string // the additive code of the error (and login reply); CodeBadMessage if ""
}{
	{name: "malformed JSON", frame: `{"type":"login","name":`},
	{name: "malformed JSON after login", loggedIn: true, frame: `{"type":"offer",,}`},
	{name: "not UTF-8", frame: "{\"type\":\"login\",\"name\":\"\xff\xfe\"}"},
	{name: "empty frame", frame: ``},
	{name: "whitespace frame", frame: " \r\n\t"},
	{name: "JSON array", frame: `[{"type":"login","name":"alice"}]`},
	{name: "JSON string", frame: `"login"`},
	{name: "JSON number", frame: `42`},
	{name: "JSON null", frame: `null`},
	{name: "JSON true", frame: `true`},
	{name: "trailing brace", frame: `{"type":"login","name":"alice"}}`},
	{name: "trailing bracket", frame: `{"type":"login","name":"alice"}]`},
	{name: "two objects", frame: `{"type":"login","name":"alice"}{"type":"login","name":"alice"}`},
	{name: "missing type", frame: `{"name":"alice"}`},
	{name: "empty type", frame: `{"type":"","name":"alice"}`},
	{name: "null type", frame: `{"type":null,"name":"alice"}`},
	{name: "number type", frame: `{"type":1,"name":"alice"}`},
	{name: "array type", frame: `{"type":["login"],"name":"alice"}`},
	{name: "object type", frame: `{"type":{"login":true},"name":"alice"}`},
	{name: "unknown type", frame: `{"type":"hello","name":"alice"}`},
	{name: "unknown type after login", loggedIn: true, frame: `{"type":"hello"}`},
	{name: "server-only type", loggedIn: true, frame: `{"type":"userlist","users":["alice"]}`},
	{name: "offer before login", frame: `{"type":"offer","name":"alice","othername":"bob","offer":` + offerJSON + `}`},
	{name: "answer before login", frame: `{"type":"answer","name":"alice","othername":"bob","answer":` + answerJSON + `}`},
	{name: "candidate before login", frame: `{"type":"candidate","name":"alice","othername":"bob","candidate":` + candidateJSON + `}`},
	{name: "leave before login", frame: `{"type":"leave","name":"alice","othername":"bob"}`},
	{name: "missing othername (offer)", loggedIn: true, frame: `{"type":"offer","name":"alice","offer":` + offerJSON + `}`},
	{name: "missing othername (answer)", loggedIn: true, frame: `{"type":"answer","name":"alice","answer":` + answerJSON + `}`},
	{name: "missing othername (candidate)", loggedIn: true, frame: `{"type":"candidate","name":"alice","candidate":` + candidateJSON + `}`},
	{name: "missing othername (leave)", loggedIn: true, frame: `{"type":"leave","name":"alice"}`},
	{name: "empty othername", loggedIn: true, frame: `{"type":"offer","name":"alice","othername":"","offer":{}}`},
	{name: "number othername", loggedIn: true, frame: `{"type":"offer","name":"alice","othername":7,"offer":{}}`},
	{name: "missing offer", loggedIn: true, frame: `{"type":"offer","name":"alice","othername":"bob"}`},
	{name: "offer is a string", loggedIn: true, frame: `{"type":"offer","name":"alice","othername":"bob","offer":"v=0"}`},
	{name: "offer is null", loggedIn: true, frame: `{"type":"offer","name":"alice","othername":"bob","offer":null}`},
	{name: "offer is an array", loggedIn: true, frame: `{"type":"offer","name":"alice","othername":"bob","offer":[{}]}`},
	{name: "offer in the answer field", loggedIn: true, frame: `{"type":"offer","name":"alice","othername":"bob","answer":` + answerJSON + `}`},
	{name: "missing answer", loggedIn: true, frame: `{"type":"answer","name":"alice","othername":"bob"}`},
	{name: "missing candidate", loggedIn: true, frame: `{"type":"candidate","name":"alice","othername":"bob"}`},
	{name: "candidate is a number", loggedIn: true, frame: `{"type":"candidate","name":"alice","othername":"bob","candidate":0}`},
	{name: "unknown othername", loggedIn: true, frame: `{"type":"offer","name":"alice","othername":"carol","offer":` + offerJSON + `}`, code: CodeNoUser},
	{name: "unknown othername (leave)", loggedIn: true, frame: `{"type":"leave","name":"alice","othername":"carol"}`, code: CodeNoUser},
	{name: "othername in another case", loggedIn: true, frame: `{"type":"offer","name":"alice","othername":"BOB","offer":{}}`, code: CodeNoUser},
	{name: "empty name", frame: `{"type":"login","name":""}`, loginFail: true, code: CodeNameInvalid},
	{name: "login without name", frame: `{"type":"login"}`, loginFail: true, code: CodeNameInvalid},
	{name: "number name", frame: `{"type":"login","name":7}`},
	{name: "duplicate name", frame: `{"type":"login","name":"bob"}`, loginFail: true, code: CodeNameTaken},
	{name: "duplicate name in another case", frame: `{"type":"login","name":"Bob"}`, loginFail: true, code: CodeNameTaken},
	{name: "lanft meta not an object", frame: `{"type":"login","name":"alice","lanft":"v1"}`, loginFail: true},
	{name: "lanft meta too large", frame: `{"type":"login","name":"alice","lanft":{"pad":"` + strings.Repeat("x", MaxMetaSize) + `"}}`, loginFail: true, code: CodeTooLarge},
	{name: "second login, same name", loggedIn: true, frame: `{"type":"login","name":"alice"}`},
	{name: "second login, new name", loggedIn: true, frame: `{"type":"login","name":"alice2"}`},
}

// Every bad frame is answered with {"type":"error","message":"..."} and
// the connection stays usable.
func TestErrorsKeepTheConnection(t *testing.T) {
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, Config{})
			bob := dialRaw(t, ts.next())
			bob.login("bob")
			alice := dialRaw(t, ts.next())
			if tt.loggedIn {
				alice.login("alice")
				bob.expectUpdata("login", "alice")
			}

			want := cmp.Or(tt.code, CodeBadMessage)
			alice.send(tt.frame)
			if tt.loginFail {
				m := alice.expect("login")
				if s, ok := m["success"].(bool); !ok || s {
					t.Fatalf("login reply %s, want success false", show(m))
				}
				if why := wantString(t, m, "message"); why == "" {
					t.Errorf("failed login reply %s gives no reason", show(m))
				}
				if got := codeOf(m); got != want {
					t.Errorf("failed login reply %s has code %q, want %q", show(m), got, want)
				}
			}
			m := alice.expect("error")
			if got := codeOf(m); got != want {
				t.Errorf("error %s has code %q, want %q", show(m), got, want)
			}
			if len(m) != 3 || wantString(t, m, "message") == "" {
				t.Errorf("error %s, want exactly type, message and lanft", show(m))
			}
			t.Logf("error: %s", show(m))

			// The same connection still works.
			if tt.loggedIn {
				alice.send(`{"type":"offer","name":"alice","othername":"bob","offer":{"sdp":"after"}}`)
				if m := bob.expect("offer"); m["name"] != "alice" {
					t.Fatalf("bob got %s, want alice's offer", show(m))
				}
			} else {
				alice.login("alice")
				bob.expectUpdata("login", "alice") // and nothing before it
			}
		})
	}
}

// A client written from the original text (no "lanft" field anywhere)
// and a lanft client that attaches its meta object see each other.
func TestOriginalClientInteroperates(t *testing.T) {
	ts := startServer(t, Config{})
	meta := json.RawMessage(`{"v":1,"id":"peer-7f3a","share":{"files":2,"bytes":123456789}}`)
	lan, _, _ := startClient(t, ClientConfig{URL: ts.next(), Name: "lan", Meta: meta})

	orig := dialRaw(t, ts.next())
	orig.send(`{"type":"login","name":"orig"}`)
	if m := orig.expect("login"); m["success"] != true {
		t.Fatalf("login reply %s", show(m))
	}
	ul := orig.expect("userlist")
	if users := wantStrings(t, ul, "users"); !sameSet(users, "lan", "orig") {
		t.Fatalf("orig's userlist %q, want lan and orig", users)
	}
	// The additive peers field carries lan's meta; an original client
	// ignores it.
	if peers, ok := ul["peers"].([]any); ok {
		for _, p := range peers {
			if pm, _ := p.(map[string]any); pm["name"] == "lan" {
				b, _ := json.Marshal(pm["lanft"])
				if !sameJSON(t, b, meta) {
					t.Errorf("peers entry for lan carries %s, want %s", b, meta)
				}
			}
		}
	}

	peers := waitPeers(t, lan, "lan", "orig")
	if peers[1].Meta != nil {
		t.Errorf("orig sent no meta, lan sees %s", peers[1].Meta)
	}

	// A second lanft client: the original one sees a normal updata.
	lan2, _, _ := startClient(t, ClientConfig{URL: ts.next(), Name: "lan2", Meta: meta})
	up := orig.expectUpdata("login", "lan2")
	if b, _ := json.Marshal(up["lanft"]); !sameJSON(t, b, meta) {
		t.Errorf("updata carries lanft %s, want %s", b, meta)
	}
	peers = waitPeers(t, lan, "lan", "orig", "lan2")
	if !sameJSON(t, peers[2].Meta, meta) {
		t.Errorf("lan sees lan2's meta %s, want %s", peers[2].Meta, meta)
	}

	// Offer from the original client, answer from lanft.
	orig.send(`{"type":"offer","name":"orig","othername":"lan","offer":` + offerJSON + `}`)
	m := nextMessage(t, lan)
	if m.Type != TypeOffer || m.Name != "orig" || !sameJSON(t, m.Offer, []byte(offerJSON)) {
		t.Fatalf("lan got %+v, want orig's offer", m)
	}
	// lanft may attach its meta to the answer: the original client still
	// finds its fields intact.
	if err := lan.Send(Message{Type: TypeAnswer, OtherName: "orig", Answer: json.RawMessage(answerJSON), Meta: meta}); err != nil {
		t.Fatal(err)
	}
	a := orig.expect("answer")
	if wantString(t, a, "name") != "lan" {
		t.Errorf("answer %s, want name lan", show(a))
	}
	b, _ := json.Marshal(wantObject(t, a, "answer"))
	if !sameJSON(t, b, []byte(answerJSON)) {
		t.Errorf("answer payload %s, want %s", b, answerJSON)
	}

	// lan2 leaves; the original client hears a plain offline.
	lan2.Close()
	orig.expectUpdata("offline", "lan2")
	waitPeers(t, lan, "lan", "orig")
}

// sameSet reports whether got holds exactly the names want, in any order.
func sameSet(got []string, want ...string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}
