package node

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestContactLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newContactLimiter()
	c.now = func() time.Time { return now }
	for i := range contactsPerName {
		if !c.allow("bob") {
			t.Fatalf("first contact %d from bob refused, want %d allowed a window", i+1, contactsPerName)
		}
	}
	if c.allow("Bob") {
		t.Fatal("another spelling of bob got past the bound for bob")
	}
	if !c.allow("carol") {
		t.Fatal("carol refused because of bob's first contacts")
	}
	now = now.Add(contactWindow)
	if !c.allow("bob") {
		t.Fatal("bob still refused a window later")
	}
	// In all: contactsPerWindow names, one first contact each.
	c = newContactLimiter()
	c.now = func() time.Time { return now }
	for i := range contactsPerWindow {
		if !c.allow(strings.Repeat("x", i+1)) {
			t.Fatalf("first contact %d in all refused, want %d allowed", i+1, contactsPerWindow)
		}
	}
	if c.allow("dave") {
		t.Fatalf("first contact %d in all allowed, want at most %d a window", contactsPerWindow+1, contactsPerWindow)
	}
}

// TestFirstContactsAreBounded: a host in the middle gets one try at
// matching the verification codes per first contact a sharer answers (see
// contactLimiter). Real peers over a real host: a sharer that pins nobody
// (every contact is a first one) answers contactsPerName receivers named
// bob, then refuses the next (in another spelling too) with its signed
// words, and still serves carol.
func TestFirstContactsAreBounded(t *testing.T) {
	url := testSignal(t)
	var log eventLog
	testShare(t, url, "alice", map[string]string{"a.txt": "payload"}, func(c *Config) { c.Events = log.add })
	for i := range contactsPerName {
		if _, err := testReceive(t, url, "bob", "alice", t.TempDir(), nil); err != nil {
			t.Fatalf("first contact %d as bob: %v", i+1, err)
		}
	}
	dir := t.TempDir()
	_, err := testReceive(t, url, "Bob", "alice", dir, nil)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "too many first contacts") {
		t.Fatalf("first contact %d as Bob: got %v, want a refusal for too many first contacts", contactsPerName+1, err)
	}
	emptyDir(t, dir)
	waitEvent(t, &log, EventRefused, "Bob", []string{"too many first contacts"})
	if _, err := testReceive(t, url, "carol", "alice", t.TempDir(), nil); err != nil {
		t.Fatalf("carol after bob's bound: %v", err)
	}
}
