package signal

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// callICE is a CallICEProvider that counts the credentials it mints.
type callICE struct{ minted *atomic.Int64 }

func (callICE) ICEServers(string) []ICEServer {
	return []ICEServer{{URLs: []string{"stun:example.invalid:3478"}}}
}

func (p callICE) CallICEServers(room string) []ICEServer {
	n := p.minted.Add(1)
	return append(p.ICEServers(room), ICEServer{URLs: []string{"turn:example.invalid:3478"},
		Username: fmt.Sprintf("%s-call-%d", room, n), Credential: "x"})
}

// A host that mints per call: the login reply says so and carries STUN
// alone (logins mint nothing); a call request is answered with its number
// and a credential; past the per-client burst, requests get no credential
// and a reason, and the provider is not asked.
func TestCallCredentialsPerClientRate(t *testing.T) {
	var minted atomic.Int64
	ts := startServer(t, Config{ICE: callICE{&minted}, CallBurst: 3, CallRate: 0.001})
	for i := range 20 {
		raw := dialRaw(t, ts.next()+"/green")
		raw.send(fmt.Sprintf(`{"type":"login","name":"u%d"}`, i))
		reply := raw.expect("login")
		info := wantObject(t, reply, "lanft")
		servers, _ := info["iceServers"].([]any)
		if info["calls"] != true || len(servers) != 1 || servers[0].(map[string]any)["username"] != nil {
			t.Fatalf("login reply %s, want calls:true and one STUN server without a credential", show(reply))
		}
		raw.expect("userlist")
	}
	if n := minted.Load(); n != 0 {
		t.Fatalf("20 logins minted %d credentials, want none", n)
	}

	raw := dialRaw(t, ts.next()+"/green")
	raw.login("caller")
	for call := 1; call <= 8; call++ {
		raw.send(fmt.Sprintf(`{"type":"lanft","lanft":{"call":%d}}`, call))
		m := raw.expect(TypeLanft)
		info := wantObject(t, m, "lanft")
		servers, _ := info["iceServers"].([]any)
		if fmt.Sprint(info["call"]) != fmt.Sprint(call) {
			t.Fatalf("reply %s, want call %d", show(m), call)
		}
		if call <= 3 {
			if len(servers) != 2 || servers[1].(map[string]any)["username"] == nil || info["message"] != nil {
				t.Errorf("call %d of a burst of 3: %s, want STUN and TURN with a credential", call, show(m))
			}
		} else if len(servers) != 1 || info["message"] == nil {
			t.Errorf("call %d past the burst: %s, want STUN alone and a reason", call, show(m))
		}
	}
	if n := minted.Load(); n != 3 {
		t.Errorf("8 requests minted %d credentials, want the burst of 3", n)
	}
	// Not logged in, or not a request: an error, nothing minted.
	anon := dialRaw(t, ts.next()+"/green")
	anon.send(`{"type":"lanft","lanft":{"call":1}}`)
	anon.expectError()
	raw.send(`{"type":"lanft","lanft":{"iceServers":[]}}`)
	raw.expectError()
	if n := minted.Load(); n != 3 {
		t.Errorf("bad requests minted credentials: %d, want 3", n)
	}
}

// The client asks before each call when the host mints per call.
func TestClientCallICEServers(t *testing.T) {
	var minted atomic.Int64
	ts := startServer(t, Config{ICE: callICE{&minted}})
	c, _, _ := startClient(t, ClientConfig{URL: ts.next() + "/blue", Name: "alice"})
	if login := c.ICEServers(); len(login) != 1 || login[0].Username != "" {
		t.Fatalf("login ICEServers() = %+v, want STUN alone", login)
	}
	for i := 1; i <= 2; i++ {
		got := c.CallICEServers(t.Context())
		if len(got) != 2 || got[1].Username != fmt.Sprintf("blue-call-%d", i) {
			t.Fatalf("call %d: CallICEServers() = %+v, want a fresh credential", i, got)
		}
	}
	if login := c.ICEServers(); len(login) != 1 {
		t.Errorf("a call's reply replaced the login's servers: %+v", login)
	}
}

// From a host that hands out credentials at login, CallICEServers takes
// the login's servers at once.
func TestClientCallICEServersFromAPerLoginHost(t *testing.T) {
	old := startServer(t, Config{ICE: roomICE{}})
	d, _, _ := startClient(t, ClientConfig{URL: old.next() + "/red", Name: "bob"})
	start := time.Now()
	if got := d.CallICEServers(t.Context()); len(got) != 1 || got[0].Username != "red-user" {
		t.Errorf("CallICEServers() from a per-login host = %+v, want the login's", got)
	}
	if time.Since(start) > time.Second {
		t.Errorf("CallICEServers() from a per-login host took %v: it waited for a reply that never comes", time.Since(start))
	}
}
