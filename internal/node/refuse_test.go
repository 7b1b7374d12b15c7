package node

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/signal"
)

// TestTamperedOfferReachesTheReceiver: a host rewrites the receiver's offer
// (its DTLS fingerprint) and relays everything else. The sharer refuses
// the offer; its signed refusal tells the receiver what happened within
// AnswerWait, and when the host also swallows the refusal, the receiver
// gives up after AnswerWait saying the host may be interfering. Neither
// retries, and nothing is written.
func TestTamperedOfferReachesTheReceiver(t *testing.T) {
	h, url := newHostile(t)
	var mu sync.Mutex
	var refused []Event
	testShare(t, url, "alice", map[string]string{"a.txt": "the secret payload"}, func(c *Config) {
		c.Events = func(e Event) {
			if e.Kind == EventRefused {
				mu.Lock()
				refused = append(refused, e)
				mu.Unlock()
			}
		}
	})
	h.tamper.Store(true)

	tests := []struct {
		name       string
		dropLeaves bool
		want       error
		says       string
	}{
		{"refusal relayed", false, identity.ErrUnverified, "arrived altered; the signaling host is interfering"},
		{"refusal dropped", true, ErrNoAnswer, "signaling host may be interfering"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.dropLeaves.Store(tt.dropLeaves)
			dir := t.TempDir()
			start := time.Now()
			_, err := testReceive(t, url, "bob", "alice", dir, nil)
			took := time.Since(start)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want %v saying %q", err, tt.want, tt.says)
			}
			if took > AnswerWait+2*time.Second {
				t.Errorf("the receiver took %v to give up, want at most %v", took, AnswerWait)
			}
			t.Logf("receiver gave up after %v: %v", took.Round(10*time.Millisecond), err)
			emptyDir(t, dir)
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) != len(tests) || !strings.Contains(refused[0].Text, "does not match its signature") {
		t.Fatalf("the sharer reported %+v, want %d refusals of an offer that does not match its signature", refused, len(tests))
	}
}

// TestOlderPeerIsToldToUpdate: an offer or answer without the commitment
// of the verification code (as an older lanft sends it, or as a host that
// strips it relays it) is refused, never accepted in the older form, and
// the people are told which side to update: the sharer's signed refusal
// reaches an older receiver, and a receiver checks the share's
// announcement before it offers anything.
func TestOlderPeerIsToldToUpdate(t *testing.T) {
	h, url := newHostile(t)
	var mu sync.Mutex
	var refused []Event
	testShare(t, url, "alice", map[string]string{"a.txt": "x"}, func(c *Config) {
		c.Events = func(e Event) {
			if e.Kind == EventRefused {
				mu.Lock()
				refused = append(refused, e)
				mu.Unlock()
			}
		}
	})
	tests := []struct {
		older string // what the host makes look older
		want  error
		says  string
	}{
		{"offer", ErrRefused, "alice runs a newer lanft, whose verification code a host in the middle cannot steer, and no longer accepts older ones: update lanft on bob"},
		{"answer", identity.ErrOutdated, "alice sent its answer in an older form, without the commitment that makes the verification code safe; update lanft on alice"},
	}
	for _, tt := range tests {
		t.Run(tt.older, func(t *testing.T) {
			h.older.Store(tt.older)
			dir := t.TempDir()
			start := time.Now()
			_, err := testReceive(t, url, "bob", "alice", dir, nil)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want %v saying %q", err, tt.want, tt.says)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("told after %v", d)
			}
			emptyDir(t, dir)
		})
	}
	mu.Lock()
	if len(refused) != 1 || !strings.Contains(refused[0].Text, "update lanft on bob") {
		t.Errorf("the sharer reported %+v, want one refusal saying to update lanft on bob", refused)
	}
	mu.Unlock()

	// A share announced by an older lanft is not even offered to.
	h.older.Store("login")
	testShare(t, url, "carol", map[string]string{"c.txt": "x"}, nil)
	_, err := testReceive(t, url, "bob", "carol", t.TempDir(), nil)
	if !errors.Is(err, identity.ErrOutdated) || !strings.Contains(err.Error(), "update lanft on carol") {
		t.Fatalf("older share: got %v, want %v saying to update lanft on carol", err, identity.ErrOutdated)
	}
}

// TestForgedRefusalIsNotBelieved: a refusal signed by another key than the
// one pinned for the sharer's name is reported as the host interfering,
// not as the sharer's words.
func TestForgedRefusalIsNotBelieved(t *testing.T) {
	url := testSignal(t)
	pinDir := t.TempDir()
	alice := identity.New()
	testShare(t, url, "alice", map[string]string{"a.txt": "x"}, func(c *Config) { c.Identity = alice })
	if _, err := testReceive(t, url, "bob", "alice", t.TempDir(), func(c *Config) { c.Pins = identity.OpenPins(pinDir) }); err != nil {
		t.Fatal(err)
	}
	bob := &link{cfg: &Config{Name: "bob", Identity: identity.New(), Pins: identity.OpenPins(pinDir)}, remote: "alice"}
	st := identity.Statement{Kind: identity.KindRefuse, From: "alice", To: "bob", Reason: "go away"}
	meta := mustJSON(t, refusal{Proof: identity.New().Prove(st), Refuse: "go away"})
	err := bob.refused(signal.Message{Type: signal.TypeLeave, Name: "alice", Meta: meta})
	if !errors.Is(err, identity.ErrUnverified) || !strings.Contains(err.Error(), "interfering") {
		t.Fatalf("got %v, want %v saying the host may be interfering", err, identity.ErrUnverified)
	}
	// Signed by the pinned key, the refusal is the sharer's own words.
	meta = mustJSON(t, refusal{Proof: alice.Prove(st), Refuse: "go away"})
	err = bob.refused(signal.Message{Type: signal.TypeLeave, Name: "alice", Meta: meta})
	if !errors.Is(err, ErrRefused) || !strings.HasSuffix(err.Error(), "go away") {
		t.Fatalf("got %v, want %v with the sharer's reason", err, ErrRefused)
	}
}

// TestWrongCodeLeavesNoPin: a contact that fails the code check pins
// nothing on either side, so a rogue first contact cannot poison a name;
// the right code pins both.
func TestWrongCodeLeavesNoPin(t *testing.T) {
	url := testSignal(t)
	sharerPins, receiverPins := t.TempDir(), t.TempDir()
	alice, bob := identity.New(), identity.New()
	testShare(t, url, "alice", map[string]string{"s.txt": "coded"}, func(c *Config) {
		c.Code, c.Identity, c.Pins = "purple-river-seven", alice, identity.OpenPins(sharerPins)
	})
	recv := func(code string) error {
		_, err := testReceive(t, url, "bob", "alice", t.TempDir(), func(c *Config) {
			c.Code, c.Identity, c.Pins = code, bob, identity.OpenPins(receiverPins)
		})
		return err
	}
	if err := recv("purple-river-eight"); !errors.Is(err, ErrCode) {
		t.Fatalf("wrong code: got %v, want %v", err, ErrCode)
	}
	for _, p := range []struct {
		dir, name string
		key       []byte
	}{{sharerPins, "bob", bob.Public()}, {receiverPins, "alice", alice.Public()}} {
		if isNew, err := identity.OpenPins(p.dir).Check(p.name, p.key); err != nil || !isNew {
			t.Fatalf("after a wrong code, %s is pinned (new=%v, err=%v)", p.name, isNew, err)
		}
	}
	if _, err := os.Stat(filepath.Join(receiverPins, "pins.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a pin file was written after a failed code: %v", err)
	}
	if err := recv("purple-river-seven"); err != nil {
		t.Fatalf("right code: %v", err)
	}
	// The sharer pins once its side is done; wait for it briefly.
	deadline := time.Now().Add(5 * time.Second)
	for {
		isNew, err := identity.OpenPins(sharerPins).Check("bob", bob.Public())
		if err == nil && !isNew {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sharer did not pin bob after a good code: new=%v err=%v", isNew, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if isNew, err := identity.OpenPins(receiverPins).Check("alice", alice.Public()); err != nil || isNew {
		t.Fatalf("the receiver did not pin alice after a good code: new=%v err=%v", isNew, err)
	}
}

// TestToAndAsk: --to refuses a receiver it does not name, on both sides,
// in words; names compare as the host compares them. --ask answered no
// declines, answered yes sends, and both ends see the same code.
func TestToAndAsk(t *testing.T) {
	url := testSignal(t)
	var mu sync.Mutex
	var refused []Event
	testShare(t, url, "alice", map[string]string{"a.txt": "for bob"}, func(c *Config) {
		c.To = []string{"Bob"}
		c.Events = func(e Event) {
			if e.Kind == EventRefused {
				mu.Lock()
				refused = append(refused, e)
				mu.Unlock()
			}
		}
	})
	dir := t.TempDir()
	start := time.Now()
	_, err := testReceive(t, url, "eve", "alice", dir, nil)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "shares only with the receivers it named") {
		t.Fatalf("eve: got %v, want %v saying alice shares only with named receivers", err, ErrRefused)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("eve was told after %v", d)
	}
	emptyDir(t, dir)
	mu.Lock()
	if len(refused) != 1 || refused[0].Peer != "eve" || !strings.Contains(refused[0].Text, "--to") {
		t.Errorf("the sharer reported %+v, want one refusal of eve naming --to", refused)
	}
	mu.Unlock()
	if _, err := testReceive(t, url, "bob", "alice", t.TempDir(), nil); err != nil {
		t.Fatalf("bob (named as Bob): %v", err)
	}

	asked := make(chan Request, 4)
	answer := make(chan bool, 4)
	testShare(t, url, "carol", map[string]string{"c.txt": "ask me"}, func(c *Config) {
		c.Ask = func(ctx context.Context, r Request) bool { asked <- r; return <-answer }
	})
	for _, tt := range []struct {
		accept bool
		want   error
	}{{false, ErrRefused}, {true, nil}} {
		answer <- tt.accept
		var codes []string
		dir := t.TempDir()
		_, err := testReceive(t, url, "dave", "carol", dir, func(c *Config) {
			c.Events = func(e Event) {
				if e.Kind == EventAsk {
					codes = append(codes, e.Code)
				}
			}
		})
		if !errors.Is(err, tt.want) || tt.want != nil && !strings.Contains(err.Error(), "declined") {
			t.Fatalf("accept=%v: got %v, want %v", tt.accept, err, tt.want)
		}
		r := <-asked
		if r.Peer != "dave" || len(codes) != 1 || codes[0] != r.Code || r.Device == "" {
			t.Fatalf("accept=%v: the sharer was asked %+v, the receiver showed codes %q", tt.accept, r, codes)
		}
		if tt.accept {
			if b, err := os.ReadFile(filepath.Join(dir, "c.txt")); err != nil || string(b) != "ask me" {
				t.Fatalf("got %q, %v", b, err)
			}
		} else {
			emptyDir(t, dir)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestChangedReceiverKeyIsToldWhy: a sharer that knows the receiver's name
// from another device refuses it and says so, instead of leaving it to wait.
func TestChangedReceiverKeyIsToldWhy(t *testing.T) {
	url := testSignal(t)
	pins := t.TempDir()
	if err := identity.OpenPins(pins).Pin("carol", identity.New().Public()); err != nil {
		t.Fatal(err)
	}
	testShare(t, url, "alice", map[string]string{"a.txt": "x"}, func(c *Config) { c.Pins = identity.OpenPins(pins) })
	start := time.Now()
	_, err := testReceive(t, url, "carol", "alice", t.TempDir(), nil)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "alice knows the name carol from another device") {
		t.Fatalf("got %v, want %v saying alice knows carol from another device", err, ErrRefused)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("told after %v", d)
	}
}

// TestPreambleVersion: a peer speaking another version of the preamble is
// told apart from one that does not speak lanft at all, and an older one
// is told to update.
func TestPreambleVersion(t *testing.T) {
	tests := []struct {
		hello    string
		outdated bool
		says     string
	}{
		{"LANFT\x02\x00", false, ""},
		{"LANFT\x01\x00", true, "version 1 of lanft's data-channel protocol, without a safe verification code; update lanft on bob"},
		{"LANFT\x03\x00", false, "newer version (3)"},
		{"HTTP/1\x00", false, "does not speak lanft's data-channel protocol"},
	}
	for _, tt := range tests {
		err := checkMagic([]byte(tt.hello), "bob")
		if tt.says == "" {
			if err != nil {
				t.Errorf("%q: %v", tt.hello, err)
			}
			continue
		}
		if err == nil || errors.Is(err, identity.ErrOutdated) != tt.outdated || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%q: got %v, want an error saying %q (outdated: %v)", tt.hello, err, tt.says, tt.outdated)
		}
	}
}
