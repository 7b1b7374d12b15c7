package discovery

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// p builds a peer: prio, and since > 0 means it claims host since then.
func p(id string, prio int, since int64) Peer {
	return Peer{ID: id, Priority: prio, Host: since > 0, HostSince: since, Version: ProtocolVersion}
}

func TestElect(t *testing.T) {
	tests := []struct {
		name     string
		view     []Peer
		self     string
		mayClaim bool
		wantHost string // "" means no host yet
		wantSelf bool   // Claim
	}{
		{name: "alone, settling", view: []Peer{p("a", 0, 0)}, self: "a", wantHost: "", wantSelf: false},
		{name: "alone, settled", view: []Peer{p("a", 0, 0)}, self: "a", mayClaim: true, wantHost: "", wantSelf: true},
		{name: "empty view", view: nil, self: "a", mayClaim: true, wantHost: "", wantSelf: false},
		{name: "nobody claims: lowest id is candidate", view: []Peer{p("b", 0, 0), p("a", 0, 0), p("c", 0, 0)}, self: "a", mayClaim: true, wantSelf: true},
		{name: "nobody claims: not the candidate", view: []Peer{p("b", 0, 0), p("a", 0, 0)}, self: "b", mayClaim: true, wantSelf: false},
		{name: "nobody claims: priority beats id", view: []Peer{p("a", 0, 0), p("z", 5, 0)}, self: "z", mayClaim: true, wantSelf: true},
		{name: "nobody claims: negative priority loses", view: []Peer{p("a", -1, 0), p("z", 0, 0)}, self: "a", mayClaim: true, wantSelf: false},
		{name: "sticky: claimant beats higher priority", view: []Peer{p("h", 0, 100), p("a", 99, 0)}, self: "a", mayClaim: true, wantHost: "h"},
		{name: "claimant keeps claiming", view: []Peer{p("h", 0, 100), p("a", 99, 0)}, self: "h", wantHost: "h", wantSelf: true},
		{name: "claimant keeps claiming while settling", view: []Peer{p("h", 0, 100)}, self: "h", mayClaim: false, wantHost: "h", wantSelf: true},
		{name: "merge: older host wins", view: []Peer{p("a", 0, 200), p("b", 0, 100), p("c", 0, 0)}, self: "c", wantHost: "b"},
		{name: "merge: newer host steps down", view: []Peer{p("a", 0, 200), p("b", 0, 100)}, self: "a", mayClaim: true, wantHost: "b", wantSelf: false},
		{name: "merge: older host stays", view: []Peer{p("a", 0, 200), p("b", 0, 100)}, self: "b", wantHost: "b", wantSelf: true},
		{name: "merge: priority does not matter among claimants", view: []Peer{p("a", 9, 200), p("b", 0, 100)}, self: "a", wantHost: "b"},
		{name: "tie on since: lowest id", view: []Peer{p("b", 0, 100), p("a", 0, 100)}, self: "b", wantHost: "a"},
		{name: "three claimants", view: []Peer{p("x", 0, 300), p("y", 0, 50), p("z", 0, 51)}, self: "z", wantHost: "y"},
		{name: "self not in view never claims", view: []Peer{p("b", 0, 0)}, self: "a", mayClaim: true, wantSelf: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Elect(tt.view, tt.self, tt.mayClaim)
			if tt.wantHost == "" && got.HasHost {
				t.Fatalf("host %q, want none", got.Host.ID)
			}
			if tt.wantHost != "" && (!got.HasHost || got.Host.ID != tt.wantHost) {
				t.Fatalf("host %q (HasHost %v), want %q", got.Host.ID, got.HasHost, tt.wantHost)
			}
			if got.Claim != tt.wantSelf {
				t.Fatalf("Claim %v, want %v", got.Claim, tt.wantSelf)
			}
			// Deterministic: the same view in any order gives the same result.
			for range 20 {
				v := slices.Clone(tt.view)
				rand.Shuffle(len(v), func(i, j int) { v[i], v[j] = v[j], v[i] })
				again := Elect(v, tt.self, tt.mayClaim)
				if again.HasHost != got.HasHost || again.Host.ID != got.Host.ID || again.Claim != got.Claim {
					t.Fatalf("shuffled view %v: %+v, want %+v", v, again, got)
				}
			}
		})
	}
}

// TestElectOneWinner checks, over many random views shared by every member,
// that at most one member keeps or starts a claim and that all agree on the
// host.
func TestElectOneWinner(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 2000 {
		var view []Peer
		size := 1 + r.IntN(6)
		for i := range size {
			var since int64
			if r.IntN(3) == 0 {
				since = 1 + r.Int64N(5) // small range: ties happen
			}
			view = append(view, p(string(rune('a'+i)), r.IntN(3)-1, since))
		}
		var claims []string
		var host string
		for i, self := range view {
			e := Elect(view, self.ID, true)
			if e.Claim {
				claims = append(claims, self.ID)
			}
			if i == 0 {
				host = e.Host.ID
			} else if e.Host.ID != host {
				t.Fatalf("view %d %v: %s sees host %q, a sees %q", n, view, self.ID, e.Host.ID, host)
			}
		}
		if len(claims) != 1 {
			t.Fatalf("view %d %v: claims %v, want exactly one", n, view, claims)
		}
		if host != "" && claims[0] != host {
			t.Fatalf("view %d %v: host %q but %q claims", n, view, host, claims[0])
		}
	}
}
