//go:build js && wasm

// Command wasm is the browser page's Go half: lanft's own code for device
// keys and proofs (internal/identity), the shared-code exchange
// (internal/cpace) and manifest validation (transfer), compiled
// to WebAssembly so that the page checks peers and files exactly as the
// CLI does. A page served over http://LAN-ADDRESS has no crypto.subtle.
//
// It sets one global object, lanftCoreRaw, whose functions take and return
// strings, numbers and Uint8Arrays; a failure is returned as
// {lanftError: text}, the text the CLI would show, which the page's
// wrapper (lanftCore) throws. Build it with `go generate ./web`.
package main

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall/js"

	"github.com/lanft/lanft/internal/cpace"
	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/names"
	"github.com/lanft/lanft/transfer"
)

// state holds the device key and the CPace parties waiting for the
// peer's message (the page refers to them by number).
type state struct {
	next    int
	parties map[int]*cpace.Party
	id      *identity.Identity
}

func main() {
	s := &state{parties: map[int]*cpace.Party{}}
	rs := &sealer{aeads: map[int]cipher.AEAD{}}
	core := js.Global().Get("Object").New()
	for name, fn := range map[string]func([]js.Value) (any, error){
		"setKey":           s.setKey,
		"publicKey":        s.publicKey,
		"deviceID":         deviceID,
		"prove":            s.prove,
		"verify":           verify,
		"sdpFingerprint":   sdpFingerprint,
		"verificationCode": s.verificationCode,
		"sasNonce":         sasNonce,
		"sasCommit":        sasCommit,
		"sasOpens":         sasOpens,
		"cpaceStart":       s.cpaceStart,
		"cpaceFinish":      s.cpaceFinish,
		"confirm":          confirm,
		"equal":            equal,
		"validateManifest": validateManifest,
		"displayName":      displayName,
		"sameName":         sameName,
		"relayKey":         rs.relayKey,
		"relayForget":      rs.relayForget,
		"relaySeal":        rs.relaySeal,
		"relayOpen":        rs.relayOpen,
	} {
		// A Go panic would end the program: errors travel as
		// {lanftError} objects that the page's wrapper throws.
		core.Set(name, js.FuncOf(func(_ js.Value, args []js.Value) any {
			v, err := fn(args)
			if err != nil {
				return map[string]any{"lanftError": err.Error()}
			}
			return v
		}))
	}
	js.Global().Set("lanftCoreRaw", core)
	if ready := js.Global().Get("lanftCoreReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
	select {}
}

func bytesOf(v js.Value) []byte {
	b := make([]byte, v.Get("length").Int())
	js.CopyBytesToGo(b, v)
	return b
}

func toJS(b []byte) js.Value {
	a := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(a, b)
	return a
}

// setKey(seed Uint8Array(32)): use this device key.
func (s *state) setKey(args []js.Value) (any, error) {
	id, err := identity.FromSeed(bytesOf(args[0]))
	if err != nil {
		return nil, err
	}
	s.id = id
	return nil, nil
}

func (s *state) identity() (*identity.Identity, error) {
	if s.id == nil {
		return nil, errors.New("lanft: no device key set")
	}
	return s.id, nil
}

// publicKey() string: the device key, base64, as proofs carry it.
func (s *state) publicKey([]js.Value) (any, error) {
	id, err := s.identity()
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.EncodeToString(id.Public()), nil
}

// deviceID(key base64) string
func deviceID(args []js.Value) (any, error) {
	key, err := base64.StdEncoding.DecodeString(args[0].String())
	if err != nil {
		return nil, fmt.Errorf("lanft: device key: %w", err)
	}
	return identity.DeviceID(key), nil
}

func statement(args []js.Value) identity.Statement {
	return identity.Statement{Kind: args[0].String(), From: args[1].String(), To: args[2].String(),
		Fingerprint: args[3].String(), OfferPrint: args[4].String()}
}

// prove(kind, from, to, fingerprint, offerPrint, commit) string: the JSON
// proof for an offer's or answer's "lanft" field; commit (base64, from
// sasCommit) is an answer's commitment to the sharer's nonce.
func (s *state) prove(args []js.Value) (any, error) {
	id, err := s.identity()
	if err != nil {
		return nil, err
	}
	st := statement(args)
	if len(args) > 5 && args[5].Type() == js.TypeString {
		if st.Commit = (identity.Proof{Commit: args[5].String()}).Commitment(); st.Commit == nil {
			return nil, errors.New("lanft: malformed commitment")
		}
	}
	b, err := json.Marshal(id.Prove(st))
	return string(b), err
}

// verify(kind, from, to, fingerprint, offerPrint, proof JSON) string: the
// signer's key (base64), or an error that says why the peer is not trusted.
func verify(args []js.Value) (any, error) {
	st := statement(args)
	var p identity.Proof
	if raw := args[5].String(); raw == "" || json.Unmarshal([]byte(raw), &p) != nil || p.Sig == "" {
		return nil, fmt.Errorf("%w: %s sent its %s without a proof of identity", identity.ErrUnverified, st.From, st.Kind)
	}
	if st.Kind == "answer" {
		st.Commit = p.Commitment()
	}
	key, err := identity.Verify(p, st)
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// sdpFingerprint(sdp) string: the one sha-256 DTLS fingerprint an SDP
// declares, written as lanft's proofs sign it. Same rules as
// rtc.SDPFingerprint (which needs Pion, too big for the page).
func sdpFingerprint(args []js.Value) (any, error) {
	found := ""
	for line := range strings.SplitSeq(args[0].String(), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fingerprint:")
		if !ok {
			continue
		}
		alg, value, _ := strings.Cut(v, " ")
		if !strings.EqualFold(alg, "sha-256") {
			return nil, fmt.Errorf("%w: unsupported DTLS fingerprint algorithm %q", identity.ErrUnverified, alg)
		}
		fp := "sha-256 " + strings.ToUpper(strings.TrimSpace(value))
		if found != "" && found != fp {
			return nil, fmt.Errorf("%w: the description declares several DTLS fingerprints", identity.ErrUnverified)
		}
		found = fp
	}
	if found == "" {
		return nil, fmt.Errorf("%w: the description declares no DTLS fingerprint", identity.ErrUnverified)
	}
	return found, nil
}

// verificationCode(theirKey base64, myPrint, theirPrint, receiverNonce,
// sharerNonce) string: the code of identity.VerificationCode.
func (s *state) verificationCode(args []js.Value) (any, error) {
	id, err := s.identity()
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(args[0].String())
	if err != nil {
		return nil, fmt.Errorf("lanft: device key: %w", err)
	}
	return identity.VerificationCode(id.Public(), key, args[1].String(), args[2].String(), bytesOf(args[3]), bytesOf(args[4])), nil
}

// sasNonce() Uint8Array: a fresh nonce for the verification code, from
// Go's crypto/rand (the browser's getRandomValues).
func sasNonce([]js.Value) (any, error) { return toJS(identity.NewNonce()), nil }

// sasCommit(nonce) string: base64 identity.Commit, for an answer's proof.
func sasCommit(args []js.Value) (any, error) {
	return base64.StdEncoding.EncodeToString(identity.Commit(bytesOf(args[0]))), nil
}

// sasOpens(commit base64, nonce) bool: the commitment of a verified
// answer opened by the nonce its sender revealed.
func sasOpens(args []js.Value) (any, error) {
	c, err := base64.StdEncoding.DecodeString(args[0].String())
	return err == nil && identity.Opens(c, bytesOf(args[1])), nil
}

func (s *state) add() int {
	s.next++
	return s.next
}

// cpaceStart(code) [party number, message Uint8Array]
func (s *state) cpaceStart(args []js.Value) (any, error) {
	p, msg, err := cpace.Start([]byte(args[0].String()), []byte("lanft-code-v1"), nil, nil, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("lanft: start code exchange: %w", err)
	}
	n := s.add()
	s.parties[n] = p
	return []any{n, toJS(msg)}, nil
}

// cpaceFinish(party, peer message, initiator bool) Uint8Array: the ISK.
func (s *state) cpaceFinish(args []js.Value) (any, error) {
	p, ok := s.parties[args[0].Int()]
	if !ok {
		return nil, errors.New("lanft: unknown code exchange")
	}
	delete(s.parties, args[0].Int())
	isk, err := p.Finish(bytesOf(args[1]), nil, args[2].Bool())
	if err != nil {
		return nil, fmt.Errorf("shared code: the peer sent an invalid code exchange: %w", err)
	}
	return toJS(isk), nil
}

// confirm(isk, label, printI, printR) Uint8Array
func confirm(args []js.Value) (any, error) {
	return toJS(cpace.Confirm(bytesOf(args[0]), args[1].String(), []byte(args[2].String()), []byte(args[3].String()))), nil
}

// equal(a, b) bool, in constant time.
func equal(args []js.Value) (any, error) {
	return hmac.Equal(bytesOf(args[0]), bytesOf(args[1])), nil
}

// validateManifest(entries JSON) [code, message] | null: null when every
// name and entry is safe, else the ERROR code and why not (the
// receive-side rules of the transfer package).
func validateManifest(args []js.Value) (any, error) {
	var m transfer.Manifest
	if err := json.Unmarshal([]byte(args[0].String()), &m.Entries); err != nil {
		return []any{"protocol", "malformed manifest: " + err.Error()}, nil
	}
	if err := transfer.ValidateManifest(&m); err != nil {
		code := "protocol"
		if errors.Is(err, transfer.ErrUnsafeName) {
			code = "unsafe_name"
		}
		return []any{code, strings.TrimPrefix(err.Error(), "transfer: ")}, nil
	}
	return nil, nil
}

// displayName(s) string: s with control, bidi and invisible characters
// escaped, as the CLI shows names.
func displayName(args []js.Value) (any, error) {
	return transfer.DisplayName(args[0].String()), nil
}

// sameName(a, b) bool is names.Same: the page finds the pins of a name as
// the CLI does.
func sameName(args []js.Value) (any, error) {
	return names.Same(args[0].String(), args[1].String()), nil
}
