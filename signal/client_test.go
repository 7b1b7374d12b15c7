package signal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestClientTracksPeers(t *testing.T) {
	ts := startServer(t, Config{})
	alice, _, _ := startClient(t, ClientConfig{URL: ts.url, Name: "alice"})
	if got := alice.Peers(); len(got) != 1 || got[0].Name != "alice" {
		t.Fatalf("right after Dial alice sees %+v, want herself", got)
	}

	meta := json.RawMessage(`{"v":1,"files":["a.txt"]}`)
	bob, stopBob, bobDone := startClient(t, ClientConfig{URL: ts.url, Name: "bob", Meta: meta})
	if got := bob.Peers(); len(got) != 2 || got[0].Name != "alice" || got[1].Name != "bob" || !sameJSON(t, got[1].Meta, meta) {
		t.Fatalf("right after Dial bob sees %+v, want alice and bob with his meta", got)
	}
	peers := waitPeers(t, alice, "alice", "bob")
	if !sameJSON(t, peers[1].Meta, meta) {
		t.Errorf("alice sees bob's meta %s, want %s", peers[1].Meta, meta)
	}

	// An original-protocol user comes and goes.
	carol := dialRaw(t, ts.url)
	carol.login("carol")
	waitPeers(t, alice, "alice", "bob", "carol")
	waitPeers(t, bob, "alice", "bob", "carol")
	carol.ws.Close()
	waitPeers(t, alice, "alice", "bob")
	waitPeers(t, bob, "alice", "bob")

	// bob logs out by cancelling Run.
	stopBob()
	select {
	case err := <-bobDone:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(waitFor):
		t.Fatal("bob's Run did not return after cancel")
	}
	waitPeers(t, alice, "alice")

	// And comes back under the same name.
	startClient(t, ClientConfig{URL: ts.url, Name: "bob"})
	peers = waitPeers(t, alice, "alice", "bob")
	if peers[1].Meta != nil {
		t.Errorf("bob came back without meta, alice still sees %s", peers[1].Meta)
	}
}

func TestClientRelay(t *testing.T) {
	ts := startServer(t, Config{})
	alice, _, _ := startClient(t, ClientConfig{URL: ts.url, Name: "alice"})
	bob, _, _ := startClient(t, ClientConfig{URL: ts.url, Name: "bob"})
	waitPeers(t, alice, "alice", "bob")

	// Send stamps the client's own name whatever the message says.
	err := alice.Send(Message{Type: TypeOffer, Name: "mallory", OtherName: "bob", Offer: json.RawMessage(offerJSON)})
	if err != nil {
		t.Fatal(err)
	}
	m := nextMessage(t, bob)
	if m.Type != TypeOffer || m.Name != "alice" || !sameJSON(t, m.Offer, []byte(offerJSON)) {
		t.Fatalf("bob got %+v, want alice's offer", m)
	}
	if err := bob.Send(Message{Type: TypeLeave, OtherName: "alice"}); err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, alice); m.Type != TypeLeave || m.Name != "bob" {
		t.Fatalf("alice got %+v, want bob's leave", m)
	}

	// The server's errors reach the caller.
	if err := alice.Send(Message{Type: TypeOffer, OtherName: "nobody", Offer: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, alice); m.Type != TypeError || !strings.Contains(m.Message, "nobody") {
		t.Fatalf("alice got %+v, want an error about nobody", m)
	}
}

func TestClientLoginRefused(t *testing.T) {
	ts := startServer(t, Config{})
	startClient(t, ClientConfig{URL: ts.url, Name: "alice"})

	tests := []struct {
		name, login string
		want        error
		says        string
	}{
		{"taken", "alice", ErrLoginRefused, "taken"},
		{"confusable", "ALICE", ErrLoginRefused, `too close to "alice"`},
		{"bad name, refused before connecting", "a\x1b[1Ab", ErrBadName, "U+001B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			c, err := Dial(ctx, ClientConfig{URL: ts.url, Name: tt.login})
			if err == nil {
				c.Close()
				t.Fatalf("Dial as %q succeeded", tt.login)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Dial as %q: %v, want an error wrapping %v", tt.login, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Dial as %q: %q does not say %q", tt.login, err, tt.says)
			}
		})
	}

	// A refused upgrade says what the server answered.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := Dial(ctx, ClientConfig{URL: ts.url, Name: "eve", Header: http.Header{"Origin": {"http://evil.example"}}})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("Dial from another origin: %v, want an error with HTTP 403", err)
	}
}

func TestClientRunReportsLostConnection(t *testing.T) {
	ts := startServer(t, Config{})
	alice, _, done := startClient(t, ClientConfig{URL: ts.url, Name: "alice"})
	waitPeers(t, alice, "alice")

	ts.Close() // the host goes away
	select {
	case err := <-done:
		if !errors.Is(err, ErrConnectionLost) {
			t.Fatalf("Run = %v, want an error wrapping ErrConnectionLost", err)
		}
		t.Logf("Run: %v", err)
	case <-time.After(waitFor):
		t.Fatal("Run still running after the server closed")
	}
}

// The user list of a busy LAN is larger than one client message: every
// user may attach up to MaxMetaSize of meta. A client must still log in.
func TestClientLargeUserlist(t *testing.T) {
	const users = 40
	ts := startServer(t, Config{})
	pad := strings.Repeat("s", MaxMetaSize-64)
	for i := range users {
		c := dialRaw(t, ts.url)
		c.send(fmt.Sprintf(`{"type":"login","name":"user%02d","lanft":{"share":%q}}`, i, pad))
		c.expectLoggedIn()
	}
	late, _, _ := startClient(t, ClientConfig{URL: ts.url, Name: "late"})
	peers := late.Peers()
	if len(peers) != users+1 {
		t.Fatalf("late sees %d users, want %d", len(peers), users+1)
	}
	for _, p := range peers[:users] {
		var m struct{ Share string }
		if err := json.Unmarshal(p.Meta, &m); err != nil || m.Share != pad {
			t.Fatalf("late sees %s's meta %.40s..., want the share it sent (%v)", p.Name, p.Meta, err)
		}
	}
}
