package identity

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	st := Statement{Kind: "answer", From: "laptop", To: "desk", Fingerprint: "sha-256 AA:BB", OfferPrint: "sha-256 CC:DD", Commit: Commit(NewNonce())}
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
		{"other commitment", func(s *Statement) { s.Commit = Commit(NewNonce()) }},
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
	if _, err := Verify(Proof{Key: "??", Sig: p.Sig, V: ProofVersion}, st); !errors.Is(err, ErrUnverified) {
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
	nr, ns := bytes.Repeat([]byte{1}, NonceSize), bytes.Repeat([]byte{2}, NonceSize)
	x := VerificationCode(a.Public(), b.Public(), "sha-256 AA", "sha-256 BB", nr, ns)
	y := VerificationCode(b.Public(), a.Public(), "sha-256 BB", "sha-256 aa", nr, ns)
	if x != y {
		t.Fatalf("codes differ: %q vs %q", x, y)
	}
	if len(x) != 7 || x[3] != ' ' {
		t.Fatalf("code %q, want ddd ddd", x)
	}
	// Every input changes the code (fixed inputs: each line below is a
	// fixed fact, not a draw with odds 10^-6 of failing).
	for name, z := range map[string]string{
		"fingerprint":    VerificationCode(a.Public(), b.Public(), "sha-256 AA", "sha-256 CC", nr, ns),
		"key":            VerificationCode(a.Public(), New().Public(), "sha-256 AA", "sha-256 BB", nr, ns),
		"receiver nonce": VerificationCode(a.Public(), b.Public(), "sha-256 AA", "sha-256 BB", ns, ns),
		"sharer nonce":   VerificationCode(a.Public(), b.Public(), "sha-256 AA", "sha-256 BB", nr, nr),
		"nonces swapped": VerificationCode(a.Public(), b.Public(), "sha-256 AA", "sha-256 BB", ns, nr),
	} {
		if z == x {
			t.Errorf("another %s gave the same code %s", name, x)
		}
	}
}

func TestCommitOpens(t *testing.T) {
	n := NewNonce()
	c := Commit(n)
	if len(n) != NonceSize || len(c) != 32 {
		t.Fatalf("nonce of %d bytes, commitment of %d", len(n), len(c))
	}
	if !Opens(c, n) {
		t.Fatal("a nonce does not open its own commitment")
	}
	if bytes.Equal(n, NewNonce()) {
		t.Fatal("two nonces are equal")
	}
	other := bytes.Clone(n)
	other[31] ^= 1
	for name, tt := range map[string]struct{ commit, nonce []byte }{
		"other nonce":      {c, other},
		"short nonce":      {Commit(n[:31]), n[:31]},
		"no commitment":    {nil, n},
		"commitment alone": {c, c},
	} {
		if Opens(tt.commit, tt.nonce) {
			t.Errorf("%s opens the commitment", name)
		}
	}
}

// TestOutdatedProofIsRefused: an offer or answer without the version-2
// commitment is refused in words that say to update lanft, whether it
// comes from an older lanft or from a host that stripped the fields; it
// is never accepted in the older form.
func TestOutdatedProofIsRefused(t *testing.T) {
	id := New()
	offer := Statement{Kind: "offer", From: "bob", To: "alice", Fingerprint: "sha-256 AA"}
	answer := Statement{Kind: "answer", From: "alice", To: "bob", Fingerprint: "sha-256 BB", OfferPrint: "sha-256 AA", Commit: Commit(NewNonce())}
	op, ap := id.Prove(offer), id.Prove(answer)
	if op.V != ProofVersion || ap.V != ProofVersion || ap.Commit == "" || op.Commit != "" {
		t.Fatalf("proofs %+v and %+v, want version %d and a commitment on the answer only", op, ap, ProofVersion)
	}
	if _, err := Verify(op, offer); err != nil {
		t.Fatalf("offer: %v", err)
	}
	got := answer
	got.Commit = ap.Commitment()
	if _, err := Verify(ap, got); err != nil {
		t.Fatalf("answer: %v", err)
	}
	got.Commit = Commit(NewNonce())
	if _, err := Verify(ap, got); !errors.Is(err, ErrUnverified) {
		t.Fatalf("another commitment: got %v, want ErrUnverified", err)
	}

	stripped := func(p Proof, f func(*Proof)) Proof { f(&p); return p }
	tests := []struct {
		name  string
		proof Proof
		st    Statement
	}{
		{"offer without version", stripped(op, func(p *Proof) { p.V = 0 }), offer},
		{"answer without version", stripped(ap, func(p *Proof) { p.V = 0 }), answer},
		{"answer without commitment", stripped(ap, func(p *Proof) { p.Commit = "" }), Statement{Kind: "answer", From: "alice", To: "bob", Fingerprint: "sha-256 BB", OfferPrint: "sha-256 AA"}},
		{"answer with a short commitment", stripped(ap, func(p *Proof) { p.Commit = "AAAA" }), Statement{Kind: "answer", From: "alice", To: "bob", Fingerprint: "sha-256 BB", OfferPrint: "sha-256 AA", Commit: Proof{Commit: "AAAA"}.Commitment()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.proof, tt.st)
			if !errors.Is(err, ErrOutdated) || !strings.Contains(err.Error(), "update lanft on "+tt.st.From) {
				t.Fatalf("got %v, want ErrOutdated saying to update lanft on %s", err, tt.st.From)
			}
		})
	}
}

// codeV1 is lanft's first verification code, kept here to show why it
// went: it covered the keys and fingerprints alone.
func codeV1(keyA, keyB []byte, printA, printB string) string {
	a := append(append([]byte{}, keyA...), strings.ToLower(printA)...)
	b := append(append([]byte{}, keyB...), strings.ToLower(printB)...)
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	sum := sha256.Sum256(append(append([]byte("lanft-sas-v1"), a...), b...))
	n := (uint32(sum[0])<<16 | uint32(sum[1])<<8 | uint32(sum[2])) % 1000000
	return fmt.Sprintf("%03d %03d", n/1000, n%1000)
}

// TestHostCannotGrindTheCode: a host in the middle, holding the real
// receiver's and sharer's keys and fingerprints, varies its own
// certificate toward each (4,096 each; a fingerprint string stands for a
// certificate, the only costly part). Against the first code it finds
// pairs that make both screens show the same digits at once. Against the
// current one the same grinding needs the nonces: under any guess of
// them it finds matches as easily, and with the real nonces, which come
// after its choices, they are gone. Its last resort, a reveal chosen once
// everything is known, makes the codes match but does not open the
// commitment, which the receiver checks. All inputs are fixed, so the
// outcome is too.
func TestHostCannotGrindTheCode(t *testing.T) {
	seeded := func(b byte) *Identity {
		id, _ := FromSeed(bytes.Repeat([]byte{b}, 32))
		return id
	}
	recv, share, hostR, hostS := seeded(1), seeded(2), seeded(3), seeded(4)
	printR, printS := "sha-256 "+strings.Repeat("1A:", 31)+"1A", "sha-256 "+strings.Repeat("2B:", 31)+"2B"
	cert := func(side, i int) string { return fmt.Sprintf("sha-256 %02X:%060X", side, i) }
	nonce := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	const tries = 4096

	// matches grinds: every pair (i toward the receiver, j toward the
	// sharer) whose two codes agree.
	matches := func(code func(id *Identity, real *Identity, realPrint, hostPrint string) string) [][2]int {
		byCode := map[string][]int{}
		for i := range tries {
			c := code(hostR, recv, printR, cert(1, i))
			byCode[c] = append(byCode[c], i)
		}
		var out [][2]int
		for j := range tries {
			for _, i := range byCode[code(hostS, share, printS, cert(2, j))] {
				out = append(out, [2]int{i, j})
			}
		}
		return out
	}

	v1 := matches(func(host, real *Identity, realPrint, hostPrint string) string {
		return codeV1(real.Public(), host.Public(), realPrint, hostPrint)
	})
	if len(v1) == 0 {
		t.Fatal("grinding the first code found no match; the demonstration needs one")
	}
	t.Logf("first code: %d matching pairs among %d x %d certificates (%d expected)", len(v1), tries, tries, tries*tries/1000000)

	// The host guesses the nonces: it finds as many matches...
	guessR, guessS := nonce("guessed Nr"), nonce("guessed Ns")
	hostNs := nonce("the host's Ns, committed toward the receiver")
	guessed := matches(func(host, real *Identity, realPrint, hostPrint string) string {
		if real == recv {
			return VerificationCode(real.Public(), host.Public(), realPrint, hostPrint, guessR, hostNs)
		}
		return VerificationCode(real.Public(), host.Public(), realPrint, hostPrint, guessR, guessS)
	})
	if len(guessed) == 0 {
		t.Fatal("no match under the guessed nonces; the demonstration needs one")
	}
	// ...which the real nonces undo (each pair matches with odds 10^-6).
	realNr, realNs := nonce("the receiver's Nr"), nonce("the sharer's Ns")
	for _, p := range guessed {
		atR := VerificationCode(recv.Public(), hostR.Public(), printR, cert(1, p[0]), realNr, hostNs)
		atS := VerificationCode(share.Public(), hostS.Public(), printS, cert(2, p[1]), guessR, realNs)
		if atR == atS {
			t.Fatalf("pair %v still matches with the real nonces", p)
		}
	}
	t.Logf("current code: %d pairs matched under guessed nonces, none with the real ones", len(guessed))

	// Last resort: once everything is known, pick the reveal to the
	// receiver that makes its code equal the sharer's.
	p := guessed[0]
	atS := VerificationCode(share.Public(), hostS.Public(), printS, cert(2, p[1]), guessR, realNs)
	reveal := make([]byte, NonceSize)
	for k := range 1 << 24 {
		binary.BigEndian.PutUint64(reveal, uint64(k))
		if VerificationCode(recv.Public(), hostR.Public(), printR, cert(1, p[0]), realNr, reveal) != atS {
			continue
		}
		if Opens(Commit(hostNs), reveal) {
			t.Fatalf("a reveal chosen after the fact opens the commitment")
		}
		t.Logf("a reveal chosen after the fact matches the codes after %d tries, and the receiver refuses it: it does not open the commitment", k+1)
		return
	}
	t.Fatal("no reveal matched within 2^24 tries (odds e^-16)")
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

// TestPinsFoldNames: a pin holds for every spelling of its name (case,
// fullwidth, look-alike letters), and messages name the spelling pinned.
func TestPinsFoldNames(t *testing.T) {
	dir := t.TempDir()
	p := OpenPins(dir)
	bob, eve := New(), New()
	if err := p.Pin("bob", bob.Public()); err != nil {
		t.Fatal(err)
	}
	for _, spelling := range []string{"bob", "Bob", "BOB", "b0b", "b\u043eb", "\uff42\uff4f\uff42", "\u0412\u041e\u0412", "\u0412ob"} {
		t.Run(spelling, func(t *testing.T) {
			if isNew, err := p.Check(spelling, bob.Public()); err != nil || isNew {
				t.Fatalf("Check(%q, bob's key): new=%v err=%v, want known", spelling, isNew, err)
			}
			_, err := p.Check(spelling, eve.Public())
			if !errors.Is(err, ErrKeyChanged) || !strings.Contains(err.Error(), bob.DeviceID()) || !strings.Contains(err.Error(), eve.DeviceID()) {
				t.Fatalf("Check(%q, eve's key): got %v, want ErrKeyChanged naming both devices", spelling, err)
			}
			if spelling != "bob" && !strings.Contains(err.Error(), `another spelling of the pinned name "bob"`) {
				t.Errorf("the error %q does not name the pinned spelling", err)
			}
			if err := p.Pin(spelling, eve.Public()); !errors.Is(err, ErrKeyChanged) {
				t.Fatalf("Pin(%q, eve's key): got %v, want ErrKeyChanged", spelling, err)
			}
		})
	}
	if isNew, err := p.Check("bobby", eve.Public()); err != nil || !isNew {
		t.Fatalf("another name: new=%v err=%v, want a first contact", isNew, err)
	}
	// Replace under another spelling keeps the spelling first seen.
	if err := p.Replace("BOB", eve.Public()); err != nil {
		t.Fatal(err)
	}
	if got := pinFile(t, dir); len(got) != 1 || got["bob"].Key == "" {
		t.Fatalf("pins.json after Replace(\"BOB\") holds %v, want one entry under \"bob\"", got)
	}
	if _, err := p.Check("Bob", eve.Public()); err != nil {
		t.Fatalf("after Replace: %v", err)
	}
}

// TestPinsOfOlderVersions: pins.json written by a version that keyed pins
// by the exact name may hold one name under several spellings. With one key
// they are one pin; with different keys lanft refuses the name and says
// which entries conflict and how to settle it, and --accept-new-key
// (Replace) settles it.
func TestPinsOfOlderVersions(t *testing.T) {
	bob, eve := New(), New()
	type entry struct {
		name string
		id   *Identity
	}
	tests := []struct {
		name     string
		file     []entry // earliest first
		conflict bool
	}{
		{"same key", []entry{{"bob", bob}, {"Bob", bob}, {"b0b", bob}, {"\u0412\u041e\u0412", bob}}, false},
		{"different keys", []entry{{"bob", bob}, {"Bob", eve}}, true},
		{"different keys, Cyrillic capitals", []entry{{"bob", bob}, {"\u0412\u041e\u0412", eve}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			raw := map[string]pin{}
			first := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			for _, e := range tt.file {
				raw[e.name] = pin{Key: base64.StdEncoding.EncodeToString(e.id.Public()), First: first}
				first = first.Add(time.Hour)
			}
			writePins(t, dir, raw)
			p := OpenPins(dir)
			isNew, err := p.Check("BOB", bob.Public())
			if !tt.conflict {
				if err != nil || isNew {
					t.Fatalf("merged pins: new=%v err=%v, want bob known", isNew, err)
				}
				if _, err := p.Check("bob", eve.Public()); !errors.Is(err, ErrKeyChanged) {
					t.Fatalf("merged pins, eve's key: got %v, want ErrKeyChanged", err)
				}
				return
			}
			t.Logf("conflict: %v", err)
			other := tt.file[1].name
			for _, want := range []string{`"bob" with device ` + bob.DeviceID(), fmt.Sprintf("%q with device %s", other, eve.DeviceID()), "one name", "--accept-new-key", "pins.json"} {
				if !errors.Is(err, ErrKeyChanged) || !strings.Contains(err.Error(), want) {
					t.Fatalf("conflicting pins: got %v, want ErrKeyChanged saying %q", err, want)
				}
			}
			if _, err := p.Check("bob", eve.Public()); !errors.Is(err, ErrKeyChanged) {
				t.Fatalf("conflicting pins, eve's key: got %v, want the conflict", err)
			}
			if err := p.Pin("bob", bob.Public()); !errors.Is(err, ErrKeyChanged) {
				t.Fatalf("Pin over a conflict: got %v, want ErrKeyChanged", err)
			}
			if err := p.Replace("bob", bob.Public()); err != nil {
				t.Fatal(err)
			}
			if got := pinFile(t, dir); len(got) != 1 || got["bob"].Key != base64.StdEncoding.EncodeToString(bob.Public()) {
				t.Fatalf("after Replace, pins.json holds %v, want bob's key under \"bob\" alone", got)
			}
			if _, err := p.Check("Bob", bob.Public()); err != nil {
				t.Fatalf("after Replace: %v", err)
			}
		})
	}
}

// TestPinsOfNamesOneWithTwo: "Ian" is one name with "ian" (case) and with
// "lan" (alike in sans-serif), which are two names. Both pinned to their
// own devices, each is known with its own key; "Ian" is refused whatever
// key it shows, since lanft cannot tell which of them it is, until
// --accept-new-key (Replace) keeps one pin for it and forgets the other.
func TestPinsOfNamesOneWithTwo(t *testing.T) {
	dir := t.TempDir()
	p := OpenPins(dir)
	ian, lan := New(), New()
	for _, pn := range []struct {
		name string
		id   *Identity
	}{{"ian", ian}, {"lan", lan}} {
		if err := p.Pin(pn.name, pn.id.Public()); err != nil {
			t.Fatalf("Pin(%q): %v: ian and lan are two names", pn.name, err)
		}
		if isNew, err := p.Check(pn.name, pn.id.Public()); err != nil || isNew {
			t.Fatalf("Check(%q, its key): new=%v err=%v, want known", pn.name, isNew, err)
		}
	}
	for _, id := range []*Identity{ian, lan} {
		_, err := p.Check("Ian", id.Public())
		for _, want := range []string{`"ian" with device ` + ian.DeviceID(), `"lan" with device ` + lan.DeviceID(), "one name", "--accept-new-key"} {
			if !errors.Is(err, ErrKeyChanged) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Check(\"Ian\") beside ian and lan: got %v, want ErrKeyChanged saying %q", err, want)
			}
		}
	}
	if err := p.Replace("Ian", ian.Public()); err != nil {
		t.Fatal(err)
	}
	if got := pinFile(t, dir); len(got) != 1 || got["ian"].Key != base64.StdEncoding.EncodeToString(ian.Public()) {
		t.Fatalf("after Replace(\"Ian\"), pins.json holds %v, want ian's key under \"ian\" alone", got)
	}
	if isNew, err := p.Check("lan", lan.Public()); err != nil || !isNew {
		t.Fatalf("lan after Replace(\"Ian\"): new=%v err=%v, want a first contact", isNew, err)
	}
}

func writePins(t *testing.T, dir string, m map[string]pin) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pins.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func pinFile(t *testing.T, dir string) map[string]pin {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pins.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]pin{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTrust: only a pinned key is trusted; a look-alike spelling is the
// same device; a replaced key loses the trust; an unknown name is an error.
func TestTrust(t *testing.T) {
	pins := OpenPins(t.TempDir())
	alice, other := New(), New()
	if _, err := pins.Trust("alice"); !errors.Is(err, ErrUnknownName) {
		t.Fatalf("trust of an unknown name: got %v, want ErrUnknownName", err)
	}
	if err := pins.Pin("alice", alice.Public()); err != nil {
		t.Fatal(err)
	}
	if pins.Trusted("alice", alice.Public()) {
		t.Fatal("a pinned device is trusted before `trust`")
	}
	d, err := pins.Trust("ALICE")
	if err != nil || d.Name != "alice" || d.DeviceID != alice.DeviceID() || !d.Trusted {
		t.Fatalf("Trust(ALICE) = %+v, %v", d, err)
	}
	if !pins.Trusted("Alice", alice.Public()) {
		t.Fatal("trusted device not trusted under another spelling")
	}
	if pins.Trusted("alice", other.Public()) {
		t.Fatal("another key under a trusted name is trusted")
	}
	if err := pins.Replace("alice", other.Public()); err != nil {
		t.Fatal(err)
	}
	if pins.Trusted("alice", other.Public()) {
		t.Fatal("a replaced key kept the old key's trust")
	}
	if _, err := pins.Trust("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := pins.Untrust("alice"); err != nil || pins.Trusted("alice", other.Public()) {
		t.Fatalf("untrust: %v, still trusted %v", err, pins.Trusted("alice", other.Public()))
	}
	devs, err := pins.Devices()
	if err != nil || len(devs) != 1 || devs[0].Trusted || devs[0].DeviceID != other.DeviceID() {
		t.Fatalf("Devices() = %+v, %v", devs, err)
	}
}
