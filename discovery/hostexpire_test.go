package discovery

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The elected host expires after hostAfter, the others after the expiry:
// a host paused for 2 s (its last answer 3 s old) stays; another instance
// as quiet leaves.
func TestViewHostExpiresLater(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	v := newView(record{ID: "self", Port: 1})
	v.hostAfter = 4 * time.Second
	for _, r := range []record{{ID: "h", Port: 2, Host: true, HostSince: 1}, {ID: "o", Port: 3}} {
		if _, _, err := v.observe(Sighting{Iface: "eth0", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}, TXT: r.txt()}, now); err != nil {
			t.Fatal(err)
		}
	}
	v.host = "h"
	if gone := v.expire(now.Add(3100*time.Millisecond), 3*time.Second); !slices.Equal(gone, []string{"o"}) {
		t.Fatalf("after 3.1 s expired %v, want [o] (the host stays until 4 s)", gone)
	}
	if gone := v.expire(now.Add(4100*time.Millisecond), 3*time.Second); !slices.Equal(gone, []string{"h"}) {
		t.Fatalf("after 4.1 s expired %v, want [h]", gone)
	}
}

// A forgotten instance's answers are ignored for the quiet time (one sent
// just before it died may arrive after), then taken again.
func TestViewForgetIgnoresLateAnswers(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	v := newView(record{ID: "self", Port: 1})
	v.quiet = 500 * time.Millisecond
	s := Sighting{Iface: "eth0", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}, TXT: record{ID: "h", Port: 2, Host: true, HostSince: 1}.txt()}
	if _, added, err := v.observe(s, now); err != nil || !added {
		t.Fatalf("observe = added %v, %v", added, err)
	}
	v.forget("h", now)
	if _, added, _ := v.observe(s, now.Add(100*time.Millisecond)); added || v.others["h"] != nil {
		t.Fatal("an answer 100ms after Forget brought the instance back")
	}
	v.expire(now.Add(600*time.Millisecond), 3*time.Second)
	if _, added, _ := v.observe(s, now.Add(600*time.Millisecond)); !added {
		t.Fatal("an answer after the quiet time did not bring the instance back")
	}
}
