package signal

import (
	"strings"
	"testing"
)

// TestLookAlikeNamesRefused: ordinary distinct names log in together; a
// name that is one name with one of theirs (names.Same: case,
// compatibility forms, look-alike characters, capitals of other scripts,
// a capital I for l) is refused at login with the name it is too close to,
// and the connection can go on with a free name. The Latin original is
// refused in turn while its look-alike is online. With LANFT_TEST_NODES=3
// the clients are spread over a cluster: the claim across nodes holds for
// the Key, and the other keys are checked against the whole room.
func TestLookAlikeNamesRefused(t *testing.T) {
	ts := startServer(t, Config{})
	t.Run("Latin names online", func(t *testing.T) {
		online := []string{"bob", "bobby", "bob2", "alice", "carol", "nina", "ian", "lan"}
		conns := logInAll(t, ts, "", online)
		for _, tt := range []struct {
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
			{"Greek capital Upsilon", "BOBB\u03a5", "bobby"},
			{"Greek capital Nu", "\u039dINA", "nina"},
			{"Greek capitals Nu, Iota, Alpha", "\u039d\u0399\u039d\u0391", "nina"},
			{"Cyrillic capitals", "\u0412\u041e\u0412", "bob"},
			{"capital I for l", "AIice", "alice"},
			{"capital I, one name with ian and lan", "Ian", "ian"},
		} {
			t.Run(tt.name, func(t *testing.T) { refused(t, ts, "", conns, online, tt.login, tt.holder) })
		}
	})
	t.Run("look-alikes online", func(t *testing.T) {
		online := []string{"\u0412\u041e\u0412", "BOBB\u03a5", "\u039dINA", "AIice", "Ian", "bob2", "carol"}
		conns := logInAll(t, ts, "/alike", online)
		for _, tt := range []struct {
			name, login, holder string
		}{
			{"bob beside Cyrillic capitals", "bob", "\u0412\u041e\u0412"},
			{"Bob beside Cyrillic capitals", "Bob", "\u0412\u041e\u0412"},
			{"bobby beside Greek capital Upsilon", "bobby", "BOBB\u03a5"},
			{"nina beside Greek capital Nu", "nina", "\u039dINA"},
			{"NINA beside Greek capital Nu", "NINA", "\u039dINA"},
			{"alice beside capital I for l", "alice", "AIice"},
			{"Alice beside capital I for l", "Alice", "AIice"},
			{"lan beside Ian", "lan", "Ian"},
			{"ian beside Ian", "ian", "Ian"},
		} {
			t.Run(tt.name, func(t *testing.T) { refused(t, ts, "/alike", conns, online, tt.login, tt.holder) })
		}
		// Ian and Lan look apart: Lan logs in beside Ian.
		c := dialRaw(t, ts.next()+"/alike")
		if users := c.login("Lan"); !sameSet(users, append([]string{"Lan"}, online...)...) {
			t.Fatalf("Lan logged in and sees %q", users)
		}
	})
}

// logInAll logs online in to the room at path (""or "/NAME"), one client
// each, and returns their connections once each has seen the later ones.
func logInAll(t *testing.T, ts *testServer, path string, online []string) []*rawConn {
	t.Helper()
	conns := make([]*rawConn, len(online))
	for i, n := range online {
		conns[i] = dialRaw(t, ts.next()+path)
		users := conns[i].login(n)
		if !sameSet(users, online[:i+1]...) {
			t.Fatalf("%s logged in and sees %q, want %q", n, users, online[:i+1])
		}
		for _, c := range conns[:i] {
			c.expectUpdata("login", n)
		}
	}
	return conns
}

// refused checks that a login as login is refused as too close to holder,
// and that the connection then logs in as dave, seen by conns (online).
func refused(t *testing.T, ts *testServer, path string, conns []*rawConn, online []string, login, holder string) {
	c := dialRaw(t, ts.next()+path)
	c.send(map[string]any{"type": "login", "name": login})
	if m := c.expect("login"); m["success"] != false {
		t.Fatalf("login as %q next to %q: reply %s, want success false", login, holder, show(m))
	}
	msg := c.expectError()
	if want := `is too close to "` + holder + `", who is online`; !strings.Contains(msg, want) {
		t.Errorf("login as %q: error %q does not say %q", login, msg, want)
	}
	// The same connection may go on with a free name, and everyone still
	// online sees only that one.
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
}
