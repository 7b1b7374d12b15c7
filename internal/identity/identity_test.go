package identity

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadCreatesOnceAndKeeps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lanft")
	a, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Public().Equal(b.Public()) || a.DeviceID() != b.DeviceID() {
		t.Fatal("a second Load made another key")
	}
	if id := a.DeviceID(); len(id) != 14 || strings.Count(id, "-") != 2 {
		t.Fatalf("device id %q, want XXXX-XXXX-XXXX", id)
	}
}

func TestLoadRefusesAGarbledKey(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, keyFile), []byte("not a key\n"), 0o600)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "is not a device key") {
		t.Fatalf("got %v, want a clear error", err)
	}
}

func TestProofBindsEveryField(t *testing.T) {
	id := New()
	st := Statement{Kind: "answer", From: "laptop", To: "desk", Fingerprint: "sha-256 AA:BB", OfferPrint: "sha-256 CC:DD"}
	p := id.Prove(st)
	key, err := Verify(p, st)
	if err != nil || !key.Equal(id.Public()) {
		t.Fatalf("valid proof: key %x, err %v", key, err)
	}
	// Fingerprints compare case-insensitively, as SDP writes them either way.
	lower := st
	lower.Fingerprint = "sha-256 aa:bb"
	if _, err := Verify(p, lower); err != nil {
		t.Fatalf("same fingerprint in lower case: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Statement)
	}{
		{"swapped fingerprint", func(s *Statement) { s.Fingerprint = "sha-256 EE:FF" }},
		{"other offer", func(s *Statement) { s.OfferPrint = "sha-256 00:11" }},
		{"other sender", func(s *Statement) { s.From = "mallory" }},
		{"other recipient", func(s *Statement) { s.To = "eve" }},
		{"offer for answer", func(s *Statement) { s.Kind = "offer" }},
		{"shifted field boundary", func(s *Statement) { s.From, s.To = "laptopd", "esk" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed := st
			tt.change(&changed)
			if _, err := Verify(p, changed); !errors.Is(err, ErrUnverified) {
				t.Fatalf("got %v, want ErrUnverified", err)
			}
		})
	}
	if _, err := Verify(Proof{Key: "??", Sig: p.Sig}, st); !errors.Is(err, ErrUnverified) {
		t.Fatalf("bad key: got %v", err)
	}
	if _, err := Verify(New().Prove(st), st); err != nil {
		t.Fatalf("another device's own proof is valid for itself: %v", err)
	}
}

func TestPins(t *testing.T) {
	dir := t.TempDir()
	p := OpenPins(dir)
	a, b := New(), New()
	if isNew, err := p.Check("laptop", a.Public()); err != nil || !isNew {
		t.Fatalf("first contact: new=%v err=%v", isNew, err)
	}
	// Check alone pins nothing: a first contact that fails a later check
	// must leave the name free.
	if isNew, err := OpenPins(dir).Check("laptop", b.Public()); err != nil || !isNew {
		t.Fatalf("Check pinned the key: new=%v err=%v", isNew, err)
	}
	if err := p.Pin("laptop", a.Public()); err != nil {
		t.Fatal(err)
	}
	if err := p.Pin("laptop", a.Public()); err != nil {
		t.Fatalf("pinning the same key again: %v", err)
	}
	if err := p.Pin("laptop", b.Public()); !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("Pin over another key: got %v, want ErrKeyChanged", err)
	}
	if isNew, err := OpenPins(dir).Check("laptop", a.Public()); err != nil || isNew {
		t.Fatalf("second contact (pins reloaded): new=%v err=%v", isNew, err)
	}
	_, err := p.Check("laptop", b.Public())
	if !errors.Is(err, ErrKeyChanged) || !strings.Contains(err.Error(), a.DeviceID()) || !strings.Contains(err.Error(), b.DeviceID()) {
		t.Fatalf("changed key: got %v, want ErrKeyChanged naming both devices", err)
	}
	if err := p.Replace("laptop", b.Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Check("laptop", b.Public()); err != nil {
		t.Fatalf("after Replace: %v", err)
	}
}

func TestRefusalSignsItsReason(t *testing.T) {
	id := New()
	st := Statement{Kind: KindRefuse, From: "alice", To: "bob", Fingerprint: "sha-256 AA", Reason: "alice shares only with carol"}
	p := id.Prove(st)
	if _, err := Verify(p, st); err != nil {
		t.Fatalf("valid refusal: %v", err)
	}
	forged := st
	forged.Reason = "alice is not sharing today"
	if _, err := Verify(p, forged); !errors.Is(err, ErrUnverified) {
		t.Fatalf("a changed reason verified: %v", err)
	}
	// An offer's bytes do not depend on Reason (compatibility).
	offer := Statement{Kind: "offer", From: "a", To: "b", Fingerprint: "sha-256 AA"}
	withReason := offer
	withReason.Reason = "x"
	if _, err := Verify(id.Prove(offer), withReason); err != nil {
		t.Fatalf("Reason changed an offer's signed bytes: %v", err)
	}
}

func TestVerificationCodeIsSymmetric(t *testing.T) {
	a, b := New(), New()
	x := VerificationCode(a.Public(), b.Public(), "sha-256 AA", "sha-256 BB")
	y := VerificationCode(b.Public(), a.Public(), "sha-256 BB", "sha-256 AA")
	if x != y {
		t.Fatalf("codes differ: %q vs %q", x, y)
	}
	if z := VerificationCode(a.Public(), b.Public(), "sha-256 AA", "sha-256 CC"); z == x {
		t.Fatal("a different fingerprint gave the same code")
	}
}

func TestFromSeed(t *testing.T) {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	a, err := FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := FromSeed(seed)
	if !a.Public().Equal(b.Public()) || a.DeviceID() != b.DeviceID() {
		t.Fatal("the same seed gave two keys")
	}
	st := Statement{Kind: "offer", From: "web-1", To: "alpha", Fingerprint: "sha-256 AB"}
	if _, err := Verify(a.Prove(st), st); err != nil {
		t.Fatalf("a seeded key's proof: %v", err)
	}
	if _, err := FromSeed(seed[:31]); err == nil {
		t.Fatal("a 31-byte seed was accepted")
	}
}
