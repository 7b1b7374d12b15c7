package turn

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/signal"
)

// turnCredential picks the TURN entry's credential out of a server list.
func turnCredential(t *testing.T, servers []signal.ICEServer) (Credential, bool) {
	t.Helper()
	for _, s := range servers {
		if s.Username != "" {
			for _, u := range s.URLs {
				if !strings.HasPrefix(u, "turn:") {
					t.Errorf("credential on %q, want it on turn: URLs only", u)
				}
			}
			return Credential{Username: s.Username, Password: s.Credential}, true
		}
	}
	return Credential{}, false
}

// Logins mint nothing: a thousand login replies hold STUN alone and leave
// no room known to the relay, so that even a credential signed with the
// host's secret (never issued) cannot allocate. A call's credential
// allocates, DefaultMaxAllocations times and no more.
func TestCredentialsPerCallNotPerLogin(t *testing.T) {
	secret := []byte("the host's secret")
	r := startRelayLAN(t, Config{Secret: secret})
	for range 1000 {
		login := r.srv.ICEServers("r")
		if len(login) != 1 || !strings.HasPrefix(login[0].URLs[0], "stun:") || len(login[0].URLs) != 1 {
			t.Fatalf("login ICEServers = %+v, want one STUN URL", login)
		}
		if _, ok := turnCredential(t, login); ok {
			t.Fatalf("login ICEServers = %+v carries a credential", login)
		}
	}
	r.srv.mu.Lock()
	rooms := len(r.srv.tags)
	r.srv.mu.Unlock()
	if rooms != 0 {
		t.Errorf("after logins only the relay knows %d rooms, want none", rooms)
	}
	if _, err := allocate(t, r.client(t, 2, Issue(secret, "r", time.Hour, time.Now()))); err == nil {
		t.Error("a credential nobody was issued allocated after logins only")
	}

	call, ok := turnCredential(t, r.srv.CallICEServers("r"))
	if !ok {
		t.Fatal("a call's ICE servers carry no TURN credential")
	}
	if exp, _, _ := parseUsername(call.Username); time.Until(exp) > DefaultTTL {
		t.Errorf("call credential valid until %v, want at most DefaultTTL (%v)", exp, DefaultTTL)
	}
	for i := range DefaultMaxAllocations {
		if _, err := allocate(t, r.client(t, 2, call)); err != nil {
			t.Fatalf("allocation %d of %d with a call's credential: %v", i+1, DefaultMaxAllocations, err)
		}
	}
	_, err := allocate(t, r.client(t, 2, call))
	if err == nil {
		t.Fatalf("a call's credential got more than %d allocations", DefaultMaxAllocations)
	}
	if !strings.Contains(err.Error(), "486") && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("allocation past the quota: %v, want 486", err)
	}
	// --no-turn: a call gets STUN alone.
	stunOnly := startRelayLAN(t, Config{STUNOnly: true})
	if _, ok := turnCredential(t, stunOnly.srv.CallICEServers("r")); ok {
		t.Error("--no-turn handed a call a TURN credential")
	}
}
