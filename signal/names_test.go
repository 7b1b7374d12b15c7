package signal

import (
	"strings"
	"testing"
)

// TestLookAlikeNamesRefused: ordinary distinct names log in together; a
// name that folds to one of theirs (names.Key: case, compatibility forms,
// look-alike characters) is refused at login with the name it is too close
// to, and the connection can go on with a free name. With
// LANFT_TEST_NODES=3 the clients are spread over a cluster, so the claim
// across nodes uses the same fold.
func TestLookAlikeNamesRefused(t *testing.T) {
	ts := startServer(t, Config{})
	online := []string{"bob", "bobby", "bob2", "alice", "carol"}
	conns := make([]*rawConn, len(online))
	for i, n := range online {
		conns[i] = dialRaw(t, ts.next())
		users := conns[i].login(n)
		if !sameSet(users, online[:i+1]...) {
			t.Fatalf("%s logged in and sees %q, want %q", n, users, online[:i+1])
		}
		for _, c := range conns[:i] {
			c.expectUpdata("login", n)
		}
	}

	tests := []struct {
		name, login, holder string
	}{
		{"capitalised", "Bob", "bob"},
		{"upper case", "BOB", "bob"},
		{"fullwidth", "\uff42\uff4f\uff42", "bob"},
		{"digit zero for o", "b0b", "bob"},
		{"Cyrillic o", "b\u043eb", "bob"},
		{"Cyrillic a", "\u0430lice", "alice"},
		{"dotless i", "al\u0131ce", "alice"},
		{"Greek omicron", "b\u03bfbby", "bobby"},
		{"digit one for l", "caro1", "carol"},
		{"small capital", "b\u1d0fb2", "bob2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, ts.next())
			c.send(map[string]any{"type": "login", "name": tt.login})
			if m := c.expect("login"); m["success"] != false {
				t.Fatalf("login as %q next to %q: reply %s, want success false", tt.login, tt.holder, show(m))
			}
			msg := c.expectError()
			if want := `is too close to "` + tt.holder + `", who is online`; !strings.Contains(msg, want) {
				t.Errorf("login as %q: error %q does not say %q", tt.login, msg, want)
			}
			// The same connection may go on with a free name, and
			// everyone still online sees only that one.
			users := c.login("dave")
			if !sameSet(users, append([]string{"dave"}, online...)...) {
				t.Errorf("userlist %q", users)
			}
			for _, o := range conns {
				o.on(t).expectUpdata("login", "dave")
			}
			c.ws.Close()
			for _, o := range conns {
				o.on(t).expectUpdata("offline", "dave")
			}
		})
	}
}
