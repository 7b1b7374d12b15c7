package signal

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRoomFromPath(t *testing.T) {
	tests := []struct {
		path string
		room string
		ok   bool
	}{
		{"/ws", DefaultRoom, true},
		{"/ws/team", "team", true},
		{"/ws/a-B_9", "a-B_9", true},
		{"/ws/" + strings.Repeat("x", 64), strings.Repeat("x", 64), true},
		{"/ws/" + strings.Repeat("x", 65), "", false},
		{"/ws/", "", false},
		{"/ws/a/b", "", false},
		{"/ws/..", "", false},
		{"/ws/a%2Fb", "", false},
		{"/ws/é", "", false},
		{"/wsx", "", false},
		{"/other", "", false},
	}
	for _, tt := range tests {
		room, ok := RoomFromPath(tt.path)
		if room != tt.room || ok != tt.ok {
			t.Errorf("RoomFromPath(%q) = %q, %v; want %q, %v", tt.path, room, ok, tt.room, tt.ok)
		}
	}
}

func TestNewRoomName(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		n := NewRoomName()
		if len(n) != 26 || !validRoom(n) {
			t.Fatalf("NewRoomName() = %q, want 26 characters usable in a path", n)
		}
		if room, ok := RoomFromPath(Path + "/" + n); !ok || room != n {
			t.Fatalf("the path of room %q does not lead to it", n)
		}
		if seen[n] {
			t.Fatalf("NewRoomName() repeated %q", n)
		}
		seen[n] = true
	}
}

// Two rooms and the default room on one host: each user list shows only
// its own room, the same name may be used in each, and nothing crosses.
func TestRoomsAreApart(t *testing.T) {
	ts := startServer(t, Config{})
	red := dialRaw(t, ts.next()+"/red")
	if users := red.login("alice"); !slices.Equal(users, []string{"alice"}) {
		t.Fatalf("alice in red sees %q, want [alice]", users)
	}
	blue := dialRaw(t, ts.next()+"/blue")
	if users := blue.login("alice"); !slices.Equal(users, []string{"alice"}) {
		t.Fatalf("alice in blue sees %q, want only herself: the name is free in another room", users)
	}
	bobRed := dialRaw(t, ts.next()+"/red")
	if users := bobRed.login("bob"); !sameSet(users, "alice", "bob") {
		t.Fatalf("bob in red sees %q, want alice and bob", users)
	}
	red.expectUpdata("login", "bob")
	lobby := dialRaw(t, ts.next())
	if users := lobby.login("carol"); !slices.Equal(users, []string{"carol"}) {
		t.Fatalf("carol in the default room sees %q, want [carol]", users)
	}

	// Relaying to a name of another room fails as if nobody had it.
	lobby.send(`{"type":"offer","othername":"bob","offer":` + offerJSON + `}`)
	if msg := lobby.expectError(); !strings.Contains(msg, `no user "bob"`) {
		t.Errorf("offer to bob from another room: error %q, want no user bob", msg)
	}
	blue.send(`{"type":"offer","othername":"bob","offer":` + offerJSON + `}`)
	blue.expectError()
	// Within a room it works.
	bobRed.send(`{"type":"offer","othername":"alice","offer":` + offerJSON + `}`)
	if m := red.expect("offer"); m["name"] != "bob" {
		t.Errorf("red alice got %s, want bob's offer", show(m))
	}

	if got := ts.RoomUsers("red"); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("RoomUsers(red) = %q", got)
	}
	if got := ts.RoomUsers("blue"); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("RoomUsers(blue) = %q", got)
	}
	if got := ts.Users(); !slices.Equal(got, []string{"carol"}) {
		t.Errorf("Users() (default room) = %q, want [carol]", got)
	}
	want := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	if got := ts.RoomAddrs("red"); !slices.Equal(got, want) {
		t.Errorf("RoomAddrs(red) = %v, want %v", got, want)
	}

	// Leaving is told to the room only: the next message carol and blue
	// alice see is what the test sends them, not bob's departure.
	bobRed.ws.Close()
	red.expectUpdata("offline", "bob")
	for _, c := range []*rawConn{lobby, blue} {
		c.send(`{"type":"bogus"}`)
		if msg := c.expectError(); !strings.Contains(msg, "bogus") {
			t.Errorf("got error %q before our own, want nothing of bob's leaving", msg)
		}
	}
}

func TestBadRoomPathIsNotFound(t *testing.T) {
	ts := startServer(t, Config{})
	for _, p := range []string{"/ws/", "/ws/a.b", "/ws/" + strings.Repeat("r", 65)} {
		_, resp, err := dialRawHeader(t, "ws://"+ts.host+p, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
			code := 0
			if resp != nil {
				code = resp.StatusCode
			}
			t.Errorf("dial %s: err %v, HTTP %d; want 404", p, err, code)
		}
	}
}

// The login reply carries the ICE servers of the provider in its "lanft"
// object, only there, and the client keeps them.
func TestLoginReplyCarriesICEServers(t *testing.T) {
	ice := roomICE{}
	ts := startServer(t, Config{ICE: ice})
	raw := dialRaw(t, ts.next()+"/green")
	raw.send(`{"type":"login","name":"alice"}`)
	reply := raw.expect("login")
	if reply["success"] != true {
		t.Fatalf("login reply %s", show(reply))
	}
	info := wantObject(t, reply, "lanft")
	servers, _ := info["iceServers"].([]any)
	if len(servers) != 1 {
		t.Fatalf("login reply %s, want one ICE server in lanft.iceServers", show(reply))
	}

	c, _, _ := startClient(t, ClientConfig{URL: ts.next() + "/green", Name: "bob"})
	got := c.ICEServers()
	if len(got) != 1 || got[0].Username != "green-user" || !slices.Equal(got[0].URLs, []string{"turn:example.invalid:3478"}) {
		t.Errorf("client ICEServers() = %+v, want the room's", got)
	}
}

type roomICE struct{}

func (roomICE) ICEServers(room string) []ICEServer {
	return []ICEServer{{URLs: []string{"turn:example.invalid:3478"}, Username: fmt.Sprintf("%s-user", room), Credential: "x"}}
}

// A client that stays gets fresh ICE servers in a "lanft" message before
// its credentials expire.
func TestICEServersAreRefreshed(t *testing.T) {
	ts := startServer(t, Config{ICE: roomICE{}, ICERefresh: 50 * time.Millisecond})
	raw := dialRaw(t, ts.next()+"/blue")
	raw.login("alice")
	m := raw.expect(TypeLanft)
	info := wantObject(t, m, "lanft")
	if servers, _ := info["iceServers"].([]any); len(servers) != 1 {
		t.Fatalf("refresh %s, want one ICE server", show(m))
	}
}
