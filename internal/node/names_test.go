package node

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/identity"
)

// TestImpostorsOfPinnedNames: once alice and bob pinned each other, a
// third device under a spelling of either name (Bob or Cyrillic ВОВ,
// Alice or AIice with a capital i) is refused on both sides, in words, and
// nothing is written. The impostor receiver is refused by the sharer; the
// impostor sharer, by the receiver, which tells it so with a signed
// refusal.
func TestImpostorsOfPinnedNames(t *testing.T) {
	url := testSignal(t)
	alicePins, bobPins := t.TempDir(), t.TempDir()
	alice, bob, eve := identity.New(), identity.New(), identity.New()
	var aliceLog eventLog
	testShare(t, url, "alice", map[string]string{"a.txt": "for bob only"}, func(c *Config) {
		c.Identity, c.Pins, c.To, c.Events = alice, identity.OpenPins(alicePins), []string{"bob"}, aliceLog.add
	})
	if _, err := testReceive(t, url, "bob", "alice", t.TempDir(), func(c *Config) {
		c.Identity, c.Pins = bob, identity.OpenPins(bobPins)
	}); err != nil {
		t.Fatalf("bob's first receive: %v", err)
	}

	for _, as := range []string{"Bob", "\u0412\u041e\u0412"} {
		t.Run("receiver "+as, func(t *testing.T) {
			dir := t.TempDir()
			_, err := testReceive(t, url, as, "alice", dir, func(c *Config) { c.Identity = eve })
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "alice knows the name "+as+" from another device") {
				t.Fatalf("eve as %s: got %v, want %v saying alice knows the name from another device", as, err, ErrRefused)
			}
			emptyDir(t, dir)
			want := []string{fmt.Sprintf("%q, another spelling of the pinned name \"bob\"", as), bob.DeviceID(), eve.DeviceID()}
			waitEvent(t, &aliceLog, EventRefused, as, want)
		})
	}

	for _, as := range []string{"Alice", "AIice"} {
		t.Run("sharer "+as, func(t *testing.T) {
			// alice is offline: eve shares as a spelling of alice on
			// another host.
			url := testSignal(t)
			var eveLog eventLog
			testShare(t, url, as, map[string]string{"a.txt": "from eve"}, func(c *Config) {
				c.Identity, c.Events = eve, eveLog.add
			})
			dir := t.TempDir()
			start := time.Now()
			_, err := testReceive(t, url, "bob", "alice", dir, func(c *Config) {
				c.Identity, c.Pins = bob, identity.OpenPins(bobPins)
			})
			want := []string{fmt.Sprintf("%q, another spelling of the pinned name \"alice\"", as), alice.DeviceID(), eve.DeviceID(), "--accept-new-key"}
			for _, w := range want {
				if !errors.Is(err, identity.ErrKeyChanged) || !strings.Contains(err.Error(), w) {
					t.Fatalf("bob from eve as %s: got %v, want %v saying %q", as, err, identity.ErrKeyChanged, w)
				}
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("bob was told after %v", d)
			}
			emptyDir(t, dir)
			waitEvent(t, &eveLog, EventError, "bob", []string{"refused by the receiver: bob knows the name " + as + " from another device"})
		})
	}
}

// waitEvent waits until log holds an event of kind about peer whose text
// says every one of want.
func waitEvent(t *testing.T, log *eventLog, kind EventKind, peer string, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log.mu.Lock()
		var seen []Event
		for _, e := range log.events {
			if e.Kind != kind || e.Peer != peer {
				continue
			}
			seen = append(seen, e)
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(e.Text, w)
			}
			if ok {
				log.mu.Unlock()
				t.Logf("%s event for %s: %s", kind, peer, e.Text)
				return
			}
		}
		log.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s saying %q; seen %+v", kind, peer, want, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
