// Package cpace implements CPace, the balanced password-authenticated key
// exchange (PAKE) of the IRTF Crypto Forum Research Group, in the cipher suite
// CPACE-RISTR255-SHA512: the ristretto255 prime-order group (RFC 9496) with
// SHA-512. It follows draft-irtf-cfrg-cpace-21 (23 April 2026), sections 6-8
// and 10, and reproduces that revision's test vectors in Appendix A and B.3.
//
// # The protocol
//
// Both parties know the same password (the draft's PRS) and, optionally, the
// same channel identifier CI and session identifier sid. Each derives a
// secret generator g from them:
//
//	g = ristretto255 element derivation(SHA-512(lv_cat("CPaceRistretto255",
//	        PRS, zero padding, CI, sid)))
//
// picks a fresh random scalar y and sends Y = y*g together with its associated
// data AD (public, authenticated). On receiving the peer's Y', it computes
// K = y*Y', aborts if Y' is not a valid encoding or K is the identity, and
// outputs the intermediate session key
//
//	ISK = SHA-512(lv_cat("CPaceRistretto255_ISK", sid, K) || transcript)
//
// where transcript is lv_cat(Ya, ADa) || lv_cat(Yb, ADb) in the
// initiator-responder setting (A speaks first; [Party.Finish]) or the ordered
// concatenation "oc" || larger || smaller of the two in the symmetric setting
// ([Party.FinishSymmetric]). Both parties get the same ISK if and only if they
// used the same password, CI and sid and saw the same Ya, ADa, Yb, ADb. A wrong
// password is not an error: it just yields unrelated keys, which an explicit
// key confirmation (see [Confirm]) detects.
//
// # Why an observer cannot test password guesses offline
//
// The signaling host relays Ya, ADa, Yb and ADb (and any confirmation tags)
// but does not know the password. Because ristretto255 has prime order and y is
// a random non-zero scalar (uniform up to a statistical distance below
// 2^-127), Y = y*g is a uniformly random non-identity element whatever g is: for every candidate password, the
// observed Ya and Yb are exactly as likely, so the messages on their own carry
// no information about the password. Checking a guess pw' against a run means
// computing the K that pw' would give, i.e. a Diffie-Hellman value y_a*y_b*g'
// for the generator g' of pw' from Ya and Yb alone, which is the (strong)
// computational Diffie-Hellman problem the draft's security proof [AHH21]
// rests on; confirmation tags are MACs keyed by ISK, which depends on K, so
// they do not help either. An active attacker, for instance a signaling host
// that substitutes its own Y, does learn something: whether the one password
// it used for that run was right. Each online attempt tests exactly one guess,
// so short codes must be single-use or rate-limited by the application.
//
// # Using the package
//
// Each party calls [Start] with the password, CI, sid and its own AD, sends the
// returned 32-byte message and its AD to the peer, and calls [Party.Finish]
// (or [Party.FinishSymmetric]) with what it received. A Party is single-use
// and not safe for concurrent use. Party identities that must be
// authenticated belong in CI (initiator first) or in the ADs (draft section
// 10.1); sid should be unique per session when the application has one.
//
// [Confirm] and [Equal] are lanft's own additions, not part of the draft: an
// HMAC-SHA-512 key-confirmation tag under ISK over a labelled, length-prefixed
// list of strings (lanft MACs both peers' DTLS fingerprints with it, binding
// the CPace run to the WebRTC channel), and a constant-time comparison of tags.
//
// The group arithmetic comes from github.com/gtank/ristretto255 v0.1.2, written
// against draft-hdevalence-cfrg-ristretto-01; its encoding, decoding and
// element derivation agree with RFC 9496, as the draft's test vectors (which
// this package's tests reproduce) confirm.
//
// [AHH21]: https://eprint.iacr.org/2021/114
package cpace

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"io"

	"github.com/gtank/ristretto255"
)

const (
	// DSI is the draft's domain-separation identifier G.DSI of G_Ristretto255.
	DSI = "CPaceRistretto255"

	// MessageSize is the length of the message returned by [Start]: the
	// canonical ristretto255 encoding of the public share Y.
	MessageSize = 32

	// ISKSize is the length of the intermediate session key (SHA-512 output).
	ISKSize = sha512.Size

	// ConfirmSize is the length of a tag returned by [Confirm].
	ConfirmSize = sha512.Size

	// hashBlockSize is H.s_in_bytes for SHA-512.
	hashBlockSize = sha512.BlockSize
)

// Errors returned by [Party.Finish] and [Party.FinishSymmetric]. Each means the
// exchange must be aborted.
var (
	// ErrInvalidMessage: the peer's message is not a canonical ristretto255
	// encoding of 32 bytes.
	ErrInvalidMessage = errors.New("cpace: peer message is not a valid ristretto255 element")
	// ErrIdentity: the shared point K is the identity (the peer sent the
	// identity element).
	ErrIdentity = errors.New("cpace: peer message yields the identity element")
	// ErrUsed: Finish was already called on this Party.
	ErrUsed = errors.New("cpace: party already finished")
)

// Party is one side of a CPace exchange. Create it with [Start]; it holds the
// secret scalar until [Party.Finish] or [Party.FinishSymmetric] is called once.
type Party struct {
	y   *ristretto255.Scalar // secret scalar; nil once finished
	msg []byte               // our encoded public share Y
	ad  []byte               // our associated data
	sid []byte               // session identifier
}

// Start begins a CPace exchange. password is the draft's PRS, used verbatim
// (normalize text passwords, e.g. per RFC 8265, before calling); channelID is
// CI, sessionID is sid, both of which the peer must pass identically (either
// may be empty); ad is this party's associated data, which the caller sends to
// the peer alongside the returned message. rand is the source of the secret
// scalar; nil means crypto/rand.Reader.
//
// The returned message is the 32-byte encoding of Y = y*g.
func Start(password, channelID, sessionID, ad []byte, rand io.Reader) (*Party, []byte, error) {
	y, err := sampleScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	g := calculateGenerator(password, channelID, sessionID)
	msg := ristretto255.NewElement().ScalarMult(y, g).Encode(nil)
	p := &Party{
		y:   y,
		msg: msg,
		ad:  clone(ad),
		sid: clone(sessionID),
	}
	return p, clone(msg), nil
}

// Finish completes an exchange in the initiator-responder setting and returns
// the 64-byte ISK. peerMsg and peerAD are the message and associated data
// received from the peer. initiator reports whether this party is the
// initiator A, whose message comes first in the transcript; the two parties
// must pass opposite values. (lanft: the receiver is the initiator.)
//
// Finish returns [ErrInvalidMessage] or [ErrIdentity] if the peer's message
// must be rejected (the exchange is then aborted), and [ErrUsed] if called
// twice. A Party can finish only once, successfully or not.
func (p *Party) Finish(peerMsg, peerAD []byte, initiator bool) (isk []byte, err error) {
	k, err := p.sharedPoint(peerMsg)
	if err != nil {
		return nil, err
	}
	var t []byte
	if initiator {
		t = transcriptIR(p.msg, p.ad, peerMsg, peerAD)
	} else {
		t = transcriptIR(peerMsg, peerAD, p.msg, p.ad)
	}
	return computeISK(p.sid, k, t), nil
}

// FinishSymmetric completes an exchange in the symmetric setting, where
// neither party is designated to speak first, and returns the 64-byte ISK.
// The transcript uses the draft's ordered concatenation, so both parties get
// the same ISK regardless of message order. The draft permits this setting
// only if ADa and ADb are guaranteed to be unique, e.g. contain fresh random
// data (section 10.1); otherwise use [Party.Finish]. Errors are as for
// [Party.Finish].
func (p *Party) FinishSymmetric(peerMsg, peerAD []byte) (isk []byte, err error) {
	k, err := p.sharedPoint(peerMsg)
	if err != nil {
		return nil, err
	}
	return computeISK(p.sid, k, transcriptOC(p.msg, p.ad, peerMsg, peerAD)), nil
}

// sharedPoint consumes the secret scalar and returns the encoding of
// K = scalar_mult_vfy(y, peerMsg), or an error if the draft says to abort.
func (p *Party) sharedPoint(peerMsg []byte) ([]byte, error) {
	if p.y == nil {
		return nil, ErrUsed
	}
	y := p.y
	p.y = nil
	defer y.Zero()

	var peer ristretto255.Element
	if err := peer.Decode(peerMsg); err != nil {
		return nil, ErrInvalidMessage
	}
	k := ristretto255.NewElement().ScalarMult(y, &peer).Encode(nil)
	if isIdentity(k) {
		return nil, ErrIdentity
	}
	return k, nil
}

// Confirm returns an HMAC-SHA-512 key-confirmation tag. It is lanft's own
// addition, not the draft's section 10.4 construction:
//
//	Confirm(isk, label, t1, ..., tn) =
//	    HMAC-SHA-512(key = isk, lv_cat("lanft/cpace/confirm/v1", label, t1, ..., tn))
//
// where lv_cat length-prefixes every string, so distinct argument lists never
// give the same MAC input. Use a different label for each direction (for
// example the sender's role) so that a tag cannot be reflected back to its
// sender, and compare received tags with [Equal]. lanft passes both peers' DTLS
// fingerprints as transcript, binding the WebRTC channel to the password.
//
// Confirm panics if isk is empty, which would mean an error from Finish was
// ignored.
func Confirm(isk []byte, label string, transcript ...[]byte) []byte {
	if len(isk) == 0 {
		panic("cpace: Confirm called with an empty ISK")
	}
	m := hmac.New(sha512.New, isk)
	m.Write(prependLen(nil, []byte("lanft/cpace/confirm/v1")))
	m.Write(prependLen(nil, []byte(label)))
	for _, t := range transcript {
		m.Write(prependLen(nil, t))
	}
	return m.Sum(nil)
}

// Equal reports whether a and b are equal, in time that depends only on their
// lengths. Use it to check confirmation tags from [Confirm]. It is lanft's own
// addition.
func Equal(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// sampleScalar implements G.sample_scalar() as the draft recommends for
// ristretto255 (section 8.3): 32 random bytes with the bits above
// group_size_bits = 252 cleared, read as a little-endian integer. The result
// is below 2^252 < group order, hence canonical. Zero is rejected as it would
// make the exchange fail.
func sampleScalar(r io.Reader) (*ristretto255.Scalar, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, errors.Join(errors.New("cpace: reading random scalar"), err)
	}
	defer clear(b[:])
	b[31] &= 0x0f
	y := ristretto255.NewScalar()
	if err := y.Decode(b[:]); err != nil {
		return nil, errors.New("cpace: internal error: non-canonical scalar") // unreachable
	}
	if y.Equal(ristretto255.NewScalar()) == 1 {
		return nil, errors.New("cpace: random source returned a zero scalar")
	}
	return y, nil
}

// calculateGenerator implements G_Ristretto255.calculate_generator(H, PRS,
// CI, sid) with H = SHA-512 (section 8.3): element derivation (RFC 9496
// one-way map) of the 64-byte hash of the generator string.
func calculateGenerator(prs, ci, sid []byte) *ristretto255.Element {
	h := sha512.Sum512(generatorString([]byte(DSI), prs, ci, sid, hashBlockSize))
	return ristretto255.NewElement().FromUniformBytes(h[:])
}

// scalarMultVfy implements G.scalar_mult_vfy(y, X) for ristretto255: the
// encoding of y*decode(X), or G.I (32 zero bytes) if X does not decode.
func scalarMultVfy(y *ristretto255.Scalar, x []byte) []byte {
	var e ristretto255.Element
	if err := e.Decode(x); err != nil {
		return make([]byte, 32)
	}
	return ristretto255.NewElement().ScalarMult(y, &e).Encode(nil)
}

// isIdentity reports whether the encoding k is G.I, the encoding of the
// identity (32 zero bytes; the ristretto255 encoding is unique).
func isIdentity(k []byte) bool {
	var zero [32]byte
	return subtle.ConstantTimeCompare(k, zero[:]) == 1
}

// iskInput returns lv_cat(G.DSI || "_ISK", sid, K) || transcript, the string
// hashed to ISK (section 7.2).
func iskInput(sid, k, transcript []byte) []byte {
	b := lvCat([]byte(DSI+"_ISK"), sid, k)
	return append(b, transcript...)
}

// computeISK returns ISK = SHA-512(iskInput(sid, K, transcript)).
func computeISK(sid, k, transcript []byte) []byte {
	h := sha512.Sum512(iskInput(sid, k, transcript))
	return h[:]
}

func clone(b []byte) []byte {
	return append([]byte{}, b...)
}
