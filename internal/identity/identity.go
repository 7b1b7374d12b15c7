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
// before, or at first contact by comparing the verification code, or
// always with a shared code (see internal/cpace).
package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
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

// Proof is the additive "lanft" object on offer and answer messages.
type Proof struct {
	Key string `json:"key"` // base64 Ed25519 public key
	Sig string `json:"sig"` // base64 signature over Statement
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
	Reason      string // in a refusal: why, in words
}

func (s Statement) bytes() []byte {
	var b bytes.Buffer
	b.WriteString("lanft-proof-v1")
	for _, f := range []string{s.Kind, s.From, s.To, strings.ToLower(s.Fingerprint), strings.ToLower(s.OfferPrint)} {
		fmt.Fprintf(&b, "\x00%d:%s", len(f), f)
	}
	if s.Kind == KindRefuse {
		// Only refusals carry a reason, so the bytes of offers and
		// answers are those of every earlier lanft.
		fmt.Fprintf(&b, "\x00%d:%s", len(s.Reason), s.Reason)
	}
	return b.Bytes()
}

// Prove signs st.
func (id *Identity) Prove(st Statement) Proof {
	return Proof{
		Key: base64.StdEncoding.EncodeToString(id.Public()),
		Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(id.priv, st.bytes())),
	}
}

// ErrUnverified is returned when a peer cannot be verified.
var ErrUnverified = errors.New("the peer could not be verified")

// Verify checks that p signs st and returns the signer's key.
func Verify(p Proof, st Statement) (ed25519.PublicKey, error) {
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

// VerificationCode is a short code both ends compute alike from both keys
// and both fingerprints, for people to compare at first contact.
func VerificationCode(keyA, keyB ed25519.PublicKey, printA, printB string) string {
	a := append(append([]byte{}, keyA...), strings.ToLower(printA)...)
	b := append(append([]byte{}, keyB...), strings.ToLower(printB)...)
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	h := sha256.New()
	h.Write([]byte("lanft-sas-v1"))
	h.Write(a)
	h.Write(b)
	sum := h.Sum(nil)
	n := (uint32(sum[0])<<16 | uint32(sum[1])<<8 | uint32(sum[2])) % 1000000
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
