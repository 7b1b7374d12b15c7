// Package identity gives a lanft device a long-term Ed25519 key, a short
// printable device id, proofs that bind a WebRTC session's DTLS
// fingerprint to that key, and the pins (name -> key) of peers seen before.
//
// The signaling host relays every offer and answer and could swap the DTLS
// fingerprints in them to sit in the middle. A proof is a signature, by the
// sender's device key, over the fingerprint of the certificate it will use,
// the names of both ends, and (in an answer) the fingerprint of the offer
// it answers. A peer checks the signature, that the SDP carries the signed
// fingerprint, and after the DTLS handshake that the certificate it got is
// the one proven. A host that rewrites a fingerprint breaks the signature;
// a host that substitutes its own key is caught by the pin of a peer seen
// before, or at first contact by comparing the verification code (which
// it cannot steer, see VerificationCode), or always with a shared code
// (see internal/cpace).
package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lanft/lanft/names"
)

const keyFile = "device.key"

// Identity is this device's long-term key.
type Identity struct {
	priv ed25519.PrivateKey
}

// Load reads the device key from dir, creating dir and a new key (mode
// 0600) on first run.
func Load(dir string) (*Identity, error) {
	path := filepath.Join(dir, keyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("identity: %s is not a device key; move it away to make a new one", path)
		}
		return &Identity{priv: ed25519.NewKeyFromSeed(seed)}, nil
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("identity: create %s: %w", dir, err)
		}
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("identity: generate key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return Load(dir) // another lanft created it meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("identity: create key: %w", err)
		}
		_, err = fmt.Fprintln(f, hex.EncodeToString(priv.Seed()))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("identity: write key: %w", err)
		}
		return &Identity{priv: priv}, nil
	default:
		return nil, fmt.Errorf("identity: read key: %w", err)
	}
}

// New returns a fresh identity that is not stored (tests, one-off runs).
func New() *Identity {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	return &Identity{priv: priv}
}

// FromSeed is the identity of a 32-byte Ed25519 seed: the browser page keeps
// its device key that way, in its own storage.
func FromSeed(seed []byte) (*Identity, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("identity: a device key seed has %d bytes, not %d", ed25519.SeedSize, len(seed))
	}
	return &Identity{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// Public is the device's public key.
func (id *Identity) Public() ed25519.PublicKey { return id.priv.Public().(ed25519.PublicKey) }

// DeviceID is the short printable id of the device key.
func (id *Identity) DeviceID() string { return DeviceID(id.Public()) }

// DeviceID formats a public key's short id: 60 bits of its SHA-256 in
// base32, as three groups of four ("ABCD-EFGH-IJKL").
func DeviceID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:8])[:12]
	return s[:4] + "-" + s[4:8] + "-" + s[8:]
}

// ProofVersion is the version of the proofs on offers and answers. Version
// 2 signs the commitment of the verification code (see VerificationCode);
// refusals keep the bytes of version 1, so that every lanft reads them.
const ProofVersion = 2

// Proof is the additive "lanft" object on offer and answer messages.
type Proof struct {
	Key string `json:"key"` // base64 Ed25519 public key
	Sig string `json:"sig"` // base64 signature over Statement
	// V is ProofVersion on offers and answers (absent: an older lanft).
	V int `json:"v,omitempty"`
	// Commit, on an answer: base64 Commit(nonce) of the sharer's nonce.
	Commit string `json:"commit,omitempty"`
}

// Commitment is the decoded Commit of an answer's proof (nil when absent
// or malformed).
func (p Proof) Commitment() []byte {
	c, err := base64.StdEncoding.DecodeString(p.Commit)
	if err != nil || len(c) != sha256.Size {
		return nil
	}
	return c
}

// KindRefuse is the Statement kind of a signed refusal: the answer to an
// offer that the recipient will not take, with the reason in words.
const KindRefuse = "refuse"

// Statement is what a proof signs.
type Statement struct {
	Kind        string // "offer", "answer" or KindRefuse
	From, To    string // signaling names of sender and recipient
	Fingerprint string // sender's DTLS certificate fingerprint, "sha-256 AB:CD:..."; in a refusal, the fingerprint of the offer refused
	OfferPrint  string // in an answer: the offer's fingerprint it answers
	Commit      []byte // in an answer: Commit of the sharer's nonce
	Reason      string // in a refusal: why, in words
}

func (s Statement) bytes() []byte {
	var b bytes.Buffer
	field := func(f string) { fmt.Fprintf(&b, "\x00%d:%s", len(f), f) }
	common := []string{s.Kind, s.From, s.To, strings.ToLower(s.Fingerprint), strings.ToLower(s.OfferPrint)}
	if s.Kind == KindRefuse {
		// Refusals keep version 1, which every lanft verifies: an
		// older receiver refused for being older is told so in words.
		b.WriteString("lanft-proof-v1")
		for _, f := range common {
			field(f)
		}
		field(s.Reason)
		return b.Bytes()
	}
	b.WriteString("lanft-proof-v2")
	for _, f := range common {
		field(f)
	}
	field(string(s.Commit))
	return b.Bytes()
}

// Prove signs st.
func (id *Identity) Prove(st Statement) Proof {
	p := Proof{
		Key: base64.StdEncoding.EncodeToString(id.Public()),
		Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(id.priv, st.bytes())),
	}
	if st.Kind != KindRefuse {
		p.V = ProofVersion
	}
	if len(st.Commit) > 0 {
		p.Commit = base64.StdEncoding.EncodeToString(st.Commit)
	}
	return p
}

// ErrUnverified is returned when a peer cannot be verified.
var ErrUnverified = errors.New("the peer could not be verified")

// ErrOutdated is returned when a peer speaks an older version of lanft's
// checks, which this one no longer accepts.
var ErrOutdated = errors.New("the peer runs an older lanft")

// Verify checks that p signs st and returns the signer's key. An answer's
// st.Commit is the one its proof carries (p.Commitment()); an offer or
// answer of an older lanft (no commitment: a first-contact code a host in
// the middle can steer) is refused with ErrOutdated, never accepted in
// the older form, so that a host cannot force it by stripping fields.
func Verify(p Proof, st Statement) (ed25519.PublicKey, error) {
	if st.Kind != KindRefuse && (p.V < ProofVersion || st.Kind == "answer" && len(st.Commit) != sha256.Size) {
		return nil, fmt.Errorf("%w: %s sent its %s in an older form, without the commitment that makes the verification code safe; update lanft on %s",
			ErrOutdated, st.From, st.Kind, st.From)
	}
	key, err := base64.StdEncoding.DecodeString(p.Key)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %s sent no valid device key", ErrUnverified, st.From)
	}
	sig, err := base64.StdEncoding.DecodeString(p.Sig)
	if err != nil || !ed25519.Verify(key, st.bytes(), sig) {
		return nil, fmt.Errorf("%w: the %s from %s does not match its signature (the signaling host may have altered it)", ErrUnverified, st.Kind, st.From)
	}
	return key, nil
}

// NonceSize is the size of each end's nonce.
const NonceSize = 32

// NewNonce returns a fresh nonce (crypto/rand, which works in WebAssembly).
func NewNonce() []byte {
	n := make([]byte, NonceSize)
	if _, err := rand.Read(n); err != nil {
		panic("identity: no randomness: " + err.Error()) // crypto/rand does not fail
	}
	return n
}

// Commit is the commitment to a sharer's nonce that its answer carries.
func Commit(nonce []byte) []byte {
	h := sha256.New()
	h.Write([]byte("lanft-sas-commit-v2"))
	h.Write(nonce)
	return h.Sum(nil)
}

// Opens reports whether nonce opens commit.
func Opens(commit, nonce []byte) bool {
	return len(nonce) == NonceSize && subtle.ConstantTimeCompare(Commit(nonce), commit) == 1
}

// VerificationCode is the code people compare at first contact, which
// both ends compute alike from both keys and fingerprints (in either
// order) and the two nonces, the receiver's first: six decimal digits from
// 64 bits of SHA-256 (a bias of 10^-13).
//
// A host in the middle terminates DTLS on both sides with keys of its own,
// so each end's code covers a different pair of (key, fingerprint). If
// those pairs were all the code covered, the host could choose its keys
// until both screens show the same six digits (about 2^20 tries: a
// fraction of a second). So the code also covers two fresh nonces, one
// from each end, and the sharer commits to its own before it sees the
// receiver's:
//
//	answer (signed)   sharer ──▶ Commit(Ns) = SHA-256("lanft-sas-commit-v2" ‖ Ns)
//	preamble          receiver ──▶ Nr      (after DTLS, in the clear)
//	                  sharer ──▶ Ns        (the receiver checks it opens the commitment)
//	code = 6 digits of SHA-256("lanft-sas-v2", sorted key‖fingerprint pairs, Nr, Ns)
//
// Toward the receiver the host is the sharer: its key, certificate and
// committed Ns' are fixed before it sees the receiver's fresh Nr, and it
// cannot open the commitment to another value afterwards. Toward the
// sharer the host is the receiver: its key, certificate and Nr' are fixed
// before it learns the sharer's Ns, which the commitment hides. So each
// code depends on 256 random bits that the host learns only once its own
// inputs are fixed: each code is uniform to the host, whatever it ground
// beforehand, and the two match with odds of 10^-6 per attempt.
//
// The sharer commits, not the receiver, because of what an attempt costs.
// The host learns the code of the side that commits before that side shows
// it, and can still abort there. A sharer answers any offer, so a host
// could ask it again and again until a code matched; a receiver dials once
// and does not retry after a failed check. Toward the sharer the host
// learns the code only as the sharer shows it, so each further try of the
// host is a code on the sharer's screen, or a failed receive: a failed
// first contact that people see.
//
// The sharer shows its code as it reveals Ns; the receiver once the
// reveal is checked. A peer whose offer or answer lacks the commitment
// runs an older lanft and is refused (ErrOutdated).
func VerificationCode(keyA, keyB ed25519.PublicKey, printA, printB string, receiverNonce, sharerNonce []byte) string {
	a := append(append([]byte{}, keyA...), strings.ToLower(printA)...)
	b := append(append([]byte{}, keyB...), strings.ToLower(printB)...)
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	h := sha256.New()
	h.Write([]byte("lanft-sas-v2"))
	for _, f := range [][]byte{a, b, receiverNonce, sharerNonce} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write(f)
	}
	sum := h.Sum(nil)
	n := binary.BigEndian.Uint64(sum[:8]) % 1000000
	return fmt.Sprintf("%03d %03d", n/1000, n%1000)
}

// Pins remembers the key of every peer name seen, in a JSON file. A name
// is looked up among the pins it is one name with (names.Same): "Bob",
// "b0b" and Cyrillic "ВОВ" are the pin of "bob", so a look-alike spelling
// cannot pass for a first contact.
type Pins struct {
	path string
	mu   sync.Mutex
}

// pin is one entry of pins.json, under the name as first seen.
type pin struct {
	Key   string    `json:"key"`
	First time.Time `json:"first_seen"`
	// Trusted: the user ran `lanft trust` for this device; its sends to
	// `lanft up` are accepted without asking. A new key is a new pin,
	// never trusted.
	Trusted bool `json:"trusted,omitempty"`
}

// pinned is one pin as loaded: the spelling it is stored under, and that
// name's keys.
type pinned struct {
	name string
	keys names.Keys
	pin  pin
}

// ErrKeyChanged is returned when a known name shows up with another key,
// in this spelling or a look-alike one, or when pins.json holds two
// spellings that a name is one name with, with different keys.
var ErrKeyChanged = errors.New("device key changed")

// OpenPins uses the pin file in dir.
func OpenPins(dir string) *Pins { return &Pins{path: filepath.Join(dir, "pins.json")} }

// load reads the pins, the earliest seen first. An entry that is one name
// with an earlier one of the same key (older versions pinned spellings of
// a name apart) is merged into it; with another key both are kept, and
// check refuses the name.
func (p *Pins) load() ([]pinned, error) {
	raw := map[string]pin{}
	b, err := os.ReadFile(p.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("identity: read pins: %w", err)
	default:
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("identity: %s is corrupt: %w", p.path, err)
		}
	}
	spellings := slices.Sorted(maps.Keys(raw))
	slices.SortStableFunc(spellings, func(a, b string) int { return raw[a].First.Compare(raw[b].First) })
	var out []pinned
	for _, name := range spellings {
		e := pinned{name: name, keys: names.KeysOf(name), pin: raw[name]}
		merged := slices.ContainsFunc(out, func(o pinned) bool { return o.pin.Key == e.pin.Key && o.keys.Meet(e.keys) })
		if !merged {
			out = append(out, e)
		}
	}
	return out, nil
}

// Check reports whether name is new (first contact), known with key, or
// known with another key (ErrKeyChanged, with both device ids in the text).
// A name is known when it is one name with a pinned one, so a look-alike
// of a pinned name is that name. It pins nothing: a key is pinned with Pin
// only once every check the user asked for has passed, so a contact that
// fails (a wrong --code, a refused connection) cannot poison the name.
func (p *Pins) Check(name string, key ed25519.PublicKey) (isNew bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	all, err := p.load()
	if err != nil {
		return false, err
	}
	return p.check(all, name, key)
}

func (p *Pins) check(all []pinned, name string, key ed25519.PublicKey) (isNew bool, err error) {
	match := matching(all, name)
	if len(match) == 0 {
		return true, nil
	}
	for _, e := range match[1:] {
		if e.pin.Key != match[0].pin.Key {
			return false, p.conflict(name, match)
		}
	}
	old := match[0]
	if old.pin.Key == base64.StdEncoding.EncodeToString(key) {
		return false, nil
	}
	known := fmt.Sprintf("%q", name)
	if old.name != name {
		known = fmt.Sprintf("%q, another spelling of the pinned name %q,", name, old.name)
	}
	return false, fmt.Errorf("%w: %s used device %s before and now presents %s; if that is expected (a new install), run again with --accept-new-key",
		ErrKeyChanged, known, deviceOf(old.pin), DeviceID(key))
}

// matching returns the pins that name is one name with, earliest first.
func matching(all []pinned, name string) []pinned {
	ks := names.KeysOf(name)
	var out []pinned
	for _, e := range all {
		if e.keys.Meet(ks) {
			out = append(out, e)
		}
	}
	return out
}

// conflict is the error for a name that is one name with pins of
// different keys (spellings an older version pinned apart, or two names
// it looks like both of, such as "Ian" with ian and lan): lanft cannot
// tell which device is that name.
func (p *Pins) conflict(name string, match []pinned) error {
	var held []string
	for _, e := range match {
		held = append(held, fmt.Sprintf("%q with device %s", e.name, deviceOf(e.pin)))
	}
	return fmt.Errorf("%w: %s holds %s, and to lanft %q is one name with each; "+
		"run again with --accept-new-key to keep the device that connects now, or delete the wrong entry from that file",
		ErrKeyChanged, p.path, strings.Join(held, " and "), name)
}

func deviceOf(e pin) string {
	k, _ := base64.StdEncoding.DecodeString(e.Key)
	return DeviceID(k)
}

// Pin remembers key for a name seen for the first time. A name already
// pinned to key is left as it is; one pinned to another key (in any
// spelling that it is one name with) is refused with ErrKeyChanged
// (Replace overrides it).
func (p *Pins) Pin(name string, key ed25519.PublicKey) error { return p.pin(name, key, false) }

// Replace pins name to key, accepting a changed key: the pins name is one
// name with are replaced by one, under the earliest spelling with name's
// Key ("bob" for "BOB"), or else under name.
func (p *Pins) Replace(name string, key ed25519.PublicKey) error { return p.pin(name, key, true) }

func (p *Pins) pin(name string, key ed25519.PublicKey, replace bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	all, err := p.load()
	if err != nil {
		return err
	}
	if !replace {
		isNew, err := p.check(all, name, key)
		if err != nil || !isNew {
			return err
		}
	}
	keys := names.KeysOf(name)
	e := pinned{name: name, keys: keys, pin: pin{Key: base64.StdEncoding.EncodeToString(key), First: time.Now().UTC()}}
	if i := slices.IndexFunc(all, func(o pinned) bool { return o.keys[0] == keys[0] }); i >= 0 {
		e.name, e.keys = all[i].name, all[i].keys // keep the spelling first seen
	}
	all = slices.DeleteFunc(all, func(o pinned) bool { return o.keys.Meet(keys) })
	return p.save(append(all, e))
}

// save writes the pins under their spellings (older versions read the
// file as it always was).
func (p *Pins) save(all []pinned) error {
	raw := map[string]pin{}
	for _, e := range all {
		raw[e.name] = e.pin
	}
	b, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.path), 0o700); err != nil {
		return fmt.Errorf("identity: save pins: %w", err)
	}
	tmp := p.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("identity: save pins: %w", err)
	}
	if err := os.Rename(tmp, p.path); err != nil {
		return fmt.Errorf("identity: save pins: %w", err)
	}
	return nil
}

// ErrUnknownName is returned by Trust and Untrust for a name with no pin.
var ErrUnknownName = errors.New("no device known by that name")

// Device is one pinned device, as `lanft devices` lists it.
type Device struct {
	Name     string    `json:"name"`
	DeviceID string    `json:"device"`
	Key      string    `json:"key"` // base64 Ed25519 public key
	First    time.Time `json:"first_seen"`
	Trusted  bool      `json:"trusted"`
}

// Devices lists the pinned devices, the earliest seen first.
func (p *Pins) Devices() ([]Device, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	all, err := p.load()
	if err != nil {
		return nil, err
	}
	out := make([]Device, 0, len(all))
	for _, e := range all {
		out = append(out, Device{Name: e.name, DeviceID: deviceOf(e.pin), Key: e.pin.Key, First: e.pin.First, Trusted: e.pin.Trusted})
	}
	return out, nil
}

// Trust marks the device pinned under name (as Check matches names) as
// trusted. Only a pinned key can be trusted: a name never seen, or seen
// only in a contact that failed, is ErrUnknownName; a name whose pins
// disagree is ErrKeyChanged. It returns the device trusted.
func (p *Pins) Trust(name string) (Device, error) { return p.setTrust(name, true) }

// Untrust takes the trust of Trust back; the pin stays.
func (p *Pins) Untrust(name string) (Device, error) { return p.setTrust(name, false) }

func (p *Pins) setTrust(name string, trusted bool) (Device, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	all, err := p.load()
	if err != nil {
		return Device{}, err
	}
	match := matching(all, name)
	if len(match) == 0 {
		return Device{}, fmt.Errorf("%w: %q (lanft knows a device once a first contact with it was verified; `lanft devices` lists them)", ErrUnknownName, name)
	}
	for _, e := range match[1:] {
		if e.pin.Key != match[0].pin.Key {
			return Device{}, p.conflict(name, match)
		}
	}
	for i := range all {
		if all[i].keys.Meet(names.KeysOf(name)) {
			all[i].pin.Trusted = trusted
		}
	}
	m := match[0]
	return Device{Name: m.name, DeviceID: deviceOf(m.pin), Key: m.pin.Key, First: m.pin.First, Trusted: trusted}, p.save(all)
}

// Trusted reports whether name is pinned to key and that pin is trusted.
// A key other than the pinned one is never trusted.
func (p *Pins) Trusted(name string, key ed25519.PublicKey) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	all, err := p.load()
	if err != nil {
		return false
	}
	match := matching(all, name)
	if len(match) == 0 {
		return false
	}
	want := base64.StdEncoding.EncodeToString(key)
	for _, e := range match {
		if e.pin.Key != want || !e.pin.Trusted {
			return false
		}
	}
	return true
}
