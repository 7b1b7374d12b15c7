package signal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// codeOf is the code in the "lanft" object of a message read raw, or "".
func codeOf(m map[string]any) string {
	meta, _ := m["lanft"].(map[string]any)
	code, _ := meta["code"].(string)
	return code
}

// downCluster cannot be reached: every Claim fails.
type downCluster struct{ *stallCluster }

func (downCluster) Claim(context.Context, Presence) (uint64, error) {
	return 0, errors.New("nats: no servers available for connection")
}

// Each refusal the server sends carries its code, beside its words: in the
// error message, in a failed login reply, in a refused upgrade's
// CodeHeader, and in the *ServerError a Client returns. (The frames of
// errorCases are checked in TestErrorsKeepTheConnection.)
func TestRefusalsCarryTheirCode(t *testing.T) {
	loginRefused := func(cfg Config, first, second string) func(t *testing.T) map[string]any {
		return func(t *testing.T) map[string]any {
			ts := startServer(t, cfg)
			dialRaw(t, ts.url).login(first)
			c := dialRaw(t, ts.url)
			c.send(map[string]any{"type": "login", "name": second})
			m := c.expect("login")
			if m["success"] != false {
				t.Fatalf("login reply %s, want success false", show(m))
			}
			if e := c.expect("error"); codeOf(e) != codeOf(m) {
				t.Errorf("the error after a failed login %s has another code than the reply %s", show(e), show(m))
			}
			return m
		}
	}
	upgradeRefused := func(cfg Config, status int, before func(t *testing.T, ts *testServer)) func(t *testing.T) map[string]any {
		return func(t *testing.T) map[string]any {
			ts := startServer(t, cfg)
			before(t, ts)
			_, resp, err := dialRawHeader(t, ts.url, nil)
			if err == nil || resp == nil || resp.StatusCode != status {
				t.Fatalf("dial: %v, %v; want HTTP %d", err, resp, status)
			}
			return map[string]any{"lanft": map[string]any{"code": resp.Header.Get(CodeHeader)}}
		}
	}
	tests := []struct {
		name string
		want string
		got  func(t *testing.T) map[string]any // the refusal, read raw
	}{
		{"name taken", CodeNameTaken, loginRefused(Config{}, "bob", "bob")},
		{"name too close", CodeNameTaken, loginRefused(Config{}, "bob", "BOB")},
		{"users per address", CodeAddressLimit, loginRefused(Config{MaxUsersPerAddr: 1}, "alice", "bob")},
		{"room full", CodeRoomFull, loginRefused(Config{MaxRoomBytes: 40}, "alice", "bob")},
		{"cluster unreachable", CodeUnavailable, func(t *testing.T) map[string]any {
			ts := startServer(t, Config{Cluster: downCluster{newStallCluster()}})
			c := dialRaw(t, ts.url)
			c.send(`{"type":"login","name":"bob"}`)
			return c.expect("login")
		}},
		{"rate limited", CodeRateLimited, func(t *testing.T) map[string]any {
			ts := startServer(t, Config{Rate: 0.01, Burst: 1})
			c := dialRaw(t, ts.url)
			c.login("alice") // the only message the burst allows
			c.send(`{"type":"offer","othername":"alice","offer":{}}`)
			return c.expect("error")
		}},
		{"draining", CodeShuttingDown, func(t *testing.T) map[string]any {
			ts := startServer(t, Config{})
			c := dialRaw(t, ts.url)
			c.login("alice")
			ts.Drain()
			return c.expect("error")
		}},
		{"connections per address", CodeAddressLimit, upgradeRefused(Config{MaxConnsPerAddr: 1}, http.StatusTooManyRequests,
			func(t *testing.T, ts *testServer) { dialRaw(t, ts.url) })},
		{"server full", CodeServerFull, upgradeRefused(Config{MaxClients: 1}, http.StatusServiceUnavailable,
			func(t *testing.T, ts *testServer) { dialRaw(t, ts.url) })},
		{"upgrade while draining", CodeShuttingDown, upgradeRefused(Config{}, http.StatusServiceUnavailable,
			func(t *testing.T, ts *testServer) { ts.Drain() })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.got(t)
			if got := codeOf(m); got != tt.want {
				t.Errorf("refusal %s has code %q, want %q", show(m), got, tt.want)
			}
		})
	}
}

// A Client's failed Dial is a *ServerError with the code, and a taken
// name is ErrNameTaken, found by its code.
func TestClientReturnsTheCode(t *testing.T) {
	for _, tt := range []struct {
		name, login string
		want        string
		taken       bool
	}{
		{"taken", "bob", CodeNameTaken, true},
		{"too close", "Bob", CodeNameTaken, true},
		{"full", "carol", CodeServerFull, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{}
			if tt.want == CodeServerFull {
				cfg.MaxClients = 1
			}
			ts := startServer(t, cfg)
			if tt.want == CodeServerFull {
				dialRaw(t, ts.url) // the one connection it takes
			} else {
				startClient(t, ClientConfig{URL: ts.url, Name: "bob"})
			}
			_, err := Dial(context.Background(), ClientConfig{URL: ts.url, Name: tt.login})
			var se *ServerError
			if !errors.As(err, &se) || se.Code != tt.want {
				t.Fatalf("Dial as %q: %v (%#v), want a *ServerError with code %q", tt.login, err, se, tt.want)
			}
			if got := errors.Is(err, ErrNameTaken); got != tt.taken {
				t.Errorf("Dial as %q: errors.Is(err, ErrNameTaken) = %v, want %v (%v)", tt.login, got, tt.taken, err)
			}
			if se.Message == "" || !strings.Contains(err.Error(), se.Message) {
				t.Errorf("Dial as %q: %v, want the server's words %q in it", tt.login, err, se.Message)
			}
		})
	}
}

// Refusal reads the code of an error or failed login; from a server that
// sends none (the seed's, an older lanft) the words still say a name is
// taken.
func TestRefusal(t *testing.T) {
	for _, tt := range []struct {
		frame      string
		want       *ServerError
		takenByTxt bool
	}{
		{`{"type":"error","message":"no","lanft":{"code":"no_user"}}`, &ServerError{CodeNoUser, "no"}, false},
		{`{"type":"login","success":false,"message":"name \"bob\" is taken","lanft":{"code":"name_taken"}}`, &ServerError{CodeNameTaken, `name "bob" is taken`}, true},
		{`{"type":"login","success":false,"message":"name \"bob\" is taken"}`, &ServerError{"", `name "bob" is taken`}, true},
		{`{"type":"error","message":"odd","lanft":"v1"}`, &ServerError{"", "odd"}, false},
		{`{"type":"login","success":true}`, nil, false},
		{`{"type":"offer","name":"bob","offer":{},"lanft":{"code":"x"}}`, nil, false},
	} {
		var m Message
		if err := json.Unmarshal([]byte(tt.frame), &m); err != nil {
			t.Fatal(err)
		}
		got := m.Refusal()
		if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("Refusal of %s = %#v, want %#v", tt.frame, got, tt.want)
			continue
		}
		if got != nil && nameTaken(got) != tt.takenByTxt {
			t.Errorf("nameTaken(%#v) = %v, want %v", got, !tt.takenByTxt, tt.takenByTxt)
		}
	}
}
