package signal

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIssuer mints pairs whose tokens name the room and users.
type fakeIssuer struct {
	mu     sync.Mutex
	issued []string
	err    error
}

func (f *fakeIssuer) IssueRelay(room, a, b string) (RelayGrant, RelayGrant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return RelayGrant{}, RelayGrant{}, f.err
	}
	f.issued = append(f.issued, room+":"+a+"+"+b)
	tok := func(c byte) string { return strings.Repeat(string([]byte{'0', c}), 32) }
	return RelayGrant{Token: tok('a'), LAN: true}, RelayGrant{Token: tok('b'), LAN: true}, nil
}

// askBoth has alice and bob ask for a relay to each other at once.
func askBoth(t *testing.T, alice, bob *Client) (RelayTicket, RelayTicket, error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ta, tb RelayTicket
	var ea, eb error
	var wg sync.WaitGroup
	wg.Go(func() { ta, ea = alice.Relay(ctx, "bob") })
	wg.Go(func() { tb, eb = bob.Relay(ctx, "alice") })
	wg.Wait()
	return ta, tb, ea, eb
}

func TestRelayTokensForAPairThatAsks(t *testing.T) {
	if testNodes(t) > 1 {
		t.Skip("the TCP relay joins users of one node")
	}
	iss := &fakeIssuer{}
	ts := startServer(t, Config{Relay: iss})
	alice, _, _ := startClient(t, ClientConfig{URL: ts.url, Name: "alice"})
	bob, _, _ := startClient(t, ClientConfig{URL: ts.url, Name: "bob"})
	carol, _, _ := startClient(t, ClientConfig{URL: ts.url, Name: "carol"})
	waitPeers(t, alice, "alice", "bob", "carol")

	ta, tb, ea, eb := askBoth(t, alice, bob)
	if ea != nil || eb != nil {
		t.Fatalf("relay: %v, %v", ea, eb)
	}
	if len(iss.issued) != 1 || iss.issued[0] != DefaultRoom+":alice+bob" && iss.issued[0] != DefaultRoom+":bob+alice" {
		t.Fatalf("issued %v, want one pair for alice and bob", iss.issued)
	}
	if iss.issued[0] == DefaultRoom+":bob+alice" {
		ta, tb = tb, ta
	}
	if ta.Token[0] != 0x0a || tb.Token[0] != 0x0b || ta.Addr != ts.host || tb.Addr != ts.host || !ta.LAN {
		t.Fatalf("tickets %+v and %+v, want each its own half at the signaling address %s", ta, tb, ts.host)
	}

	// Carol asks for alice, who never asks for carol: no pair.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := carol.Relay(ctx, "alice"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("carol's one-sided request: %v, want no answer", err)
	}
	// Nobody by that name.
	if _, err := carol.Relay(context.Background(), "nobody"); err == nil || !strings.Contains(err.Error(), `no user "nobody"`) {
		t.Fatalf("a relay to nobody: %v", err)
	}
	if len(iss.issued) != 1 {
		t.Fatalf("issued %v, want still one pair", iss.issued)
	}
}

// A host that refuses tells both why.
func TestRelayRefusedTellsBoth(t *testing.T) {
	if testNodes(t) > 1 {
		t.Skip("the TCP relay joins users of one node")
	}
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no relay", Config{}, "no TCP relay"},
		{"the relay refuses", Config{Relay: &fakeIssuer{err: errors.New("dave's lanft does not relay (--no-relay)")}}, "--no-relay"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.cfg)
			alice, _, _ := startClient(t, ClientConfig{URL: ts.url, Name: "alice"})
			bob, _, _ := startClient(t, ClientConfig{URL: ts.url, Name: "bob"})
			waitPeers(t, alice, "alice", "bob")
			_, _, ea, eb := askBoth(t, alice, bob)
			for _, err := range []error{ea, eb} {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("got %v, want a refusal saying %q", err, tt.want)
				}
			}
		})
	}
}
