package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/rtc"
	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/transfer"
)

// ErrRefused: the sharer refused the connection and said why (a signed
// refusal), or declined it when asked.
var ErrRefused = errors.New("refused by the sharer")

// ErrReceiverRefused: the receiver refused the sharer's answer and said
// why (a signed refusal): it knows the sharer's name from another device.
var ErrReceiverRefused = errors.New("refused by the receiver")

// link is one WebRTC connection to a named peer, with the identity checks
// around it: our offer or answer carries a proof (identity.Proof in the
// message's "lanft" field), the remote's is verified before its
// description is used, and the certificate of the connected peer must be
// the one it proved.
type link struct {
	cfg     *Config
	remote  string
	peer    *rtc.Peer
	current func() *signal.Client

	// push: this side sends to the remote (lanft send), flagPush.
	push bool

	// answered is closed once a verified answer arrived (receiver side).
	answered chan struct{}

	mu          sync.Mutex
	offerPrint  string // the fingerprint of the offer being answered
	remotePrint string // the verified fingerprint of the remote
	remoteKey   ed25519.PublicKey
	firstSeen   bool
	replaceKey  bool // the remote's key differs from its pin, and AcceptNewKey is set
	verifyErr   error
	remoteFlags byte // of the remote's preamble

	// The verification code (identity.VerificationCode): the sharer's
	// nonce, the commitment to it that the answer carries, and the code
	// once the preamble settled it.
	sasNonce  []byte // sharer: Ns, fresh for the answer
	sasCommit []byte // receiver: the verified answer's commitment
	code      string

	// contacts, on a sharer, bounds the first contacts it answers.
	contacts *contactLimiter
}

// ErrNoRelay: --path relay, and the signaling host offers no TURN relay.
var ErrNoRelay = errors.New("the path is forced to the relay, but the signaling host offers no TURN relay")

// iceScope is a Hosts that restricts ICE to some interfaces for the host
// in use (LAN: the interfaces discovery works on, while the host is on the
// LAN). Without --interface, ICE uses those; nil: every interface.
type iceScope interface {
	ICEInterfaces() []string
}

// newLink makes the peer connection to remote, with ICE servers minted for
// this call by a host that mints them per call (the login's otherwise).
func newLink(ctx context.Context, cfg *Config, remote string, current func() *signal.Client) (*link, error) {
	l := &link{cfg: cfg, remote: remote, current: current, answered: make(chan struct{})}
	rcfg := cfg.RTC
	if len(rcfg.Interfaces) == 0 {
		if s, ok := cfg.Hosts.(iceScope); ok {
			rcfg.Interfaces = s.ICEInterfaces()
		}
	}
	if c := current(); c != nil {
		rcfg.NoRelay = c.NoRelay()
		for _, s := range c.CallICEServers(ctx) {
			rcfg.ICEServers = append(rcfg.ICEServers, rtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
		}
	}
	// A host that offers ICE servers is a remote one: the path may cross
	// NATs or a relay, and a LAN's timeouts would cut it.
	// (A LAN instance's TURN relay, for peers that reach it but not each
	// other, is on the LAN: its timeouts stay.)
	rcfg.WAN = rcfg.WAN || len(rcfg.ICEServers) > 0 && !lanHost(cfg.Hosts)
	if cfg.Mode.relayOnly() {
		if !rtc.HasTURN(rcfg.ICEServers) {
			return nil, fmt.Errorf("node: connect to %s: %w", remote, ErrNoRelay)
		}
		rcfg.RelayOnly = true
	}
	p, err := rtc.NewPeer(rcfg, l.send)
	if err != nil {
		return nil, err
	}
	l.peer = p
	return l, nil
}

// send is the rtc.SendFunc: it wraps a signal into a protocol message to
// the remote, with a proof on offers and answers.
func (l *link) send(s rtc.Signal) error {
	c := l.current()
	if c == nil {
		return signal.ErrConnectionLost
	}
	m := signal.Message{Type: s.Kind, OtherName: l.remote}
	switch s.Kind {
	case rtc.KindOffer, rtc.KindAnswer:
		l.mu.Lock()
		st := identity.Statement{Kind: s.Kind, From: l.cfg.Name, To: l.remote,
			Fingerprint: l.peer.LocalFingerprint(), OfferPrint: l.offerPrint}
		if s.Kind == rtc.KindAnswer {
			if l.sasNonce == nil {
				l.sasNonce = identity.NewNonce()
			}
			st.Commit = identity.Commit(l.sasNonce)
		}
		l.mu.Unlock()
		proof, err := json.Marshal(l.cfg.Identity.Prove(st))
		if err != nil {
			return err
		}
		m.Meta = proof
		if s.Kind == rtc.KindOffer {
			m.Offer = s.Payload
		} else {
			m.Answer = s.Payload
		}
	case rtc.KindCandidate:
		m.Candidate = s.Payload
	default:
		return fmt.Errorf("node: unknown signal kind %q", s.Kind)
	}
	return c.Send(m)
}

// handle feeds a relayed message to the peer, verifying offers and answers
// first. A description that fails verification is not used, and the
// connection is closed with the reason kept for err. A leave carrying a
// refusal ends the link with that refusal as its error.
func (l *link) handle(msg signal.Message) {
	s, ok := rtcSignal(msg)
	if !ok {
		if msg.Type == signal.TypeLeave {
			if len(msg.Meta) > 0 {
				l.fail(l.refused(msg))
			}
			l.peer.Close()
		}
		return
	}
	if s.Kind == rtc.KindOffer || s.Kind == rtc.KindAnswer {
		if err := l.verify(msg, s); err != nil {
			l.cfg.Logger.Debug("node: refusing peer", "peer", l.remote, "err", err)
			if s.Kind == rtc.KindAnswer {
				// The sharer refuses offers itself (share.go); the
				// receiver tells a sharer it refuses, as the sharer does,
				// before the failure ends the receive (and maybe the
				// process, taking an unsent refusal with it).
				l.refuse(msg.Answer, refusalReason(l.cfg.Name, msg.Name, "answer", err))
			}
			l.fail(err)
			l.peer.Close()
			return
		}
		if s.Kind == rtc.KindAnswer {
			close(l.answered)
		}
	}
	if err := l.peer.Handle(s); err != nil {
		l.cfg.Logger.Debug("node: signal from peer", "peer", l.remote, "err", err)
	}
}

// fail keeps the first error that ended the link.
func (l *link) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.verifyErr == nil {
		l.verifyErr = err
	}
}

func (l *link) verify(msg signal.Message, s rtc.Signal) error {
	fp, err := rtc.SDPFingerprint(s.Payload)
	if err != nil {
		return fmt.Errorf("%w: %v", identity.ErrUnverified, err)
	}
	var proof identity.Proof
	if len(msg.Meta) == 0 || json.Unmarshal(msg.Meta, &proof) != nil || proof.Sig == "" {
		return fmt.Errorf("%w: %s sent its %s without a proof of identity", identity.ErrUnverified, msg.Name, msg.Type)
	}
	st := identity.Statement{Kind: msg.Type, From: msg.Name, To: l.cfg.Name, Fingerprint: fp}
	if msg.Type == signal.TypeAnswer {
		st.OfferPrint, st.Commit = l.peer.LocalFingerprint(), proof.Commitment()
	}
	key, err := identity.Verify(proof, st)
	if err != nil {
		return err
	}
	// The key is only checked against the pins here; it is pinned once
	// every check asked for has passed (see pin).
	first, replace := true, false
	if l.cfg.Pins != nil {
		first, err = l.cfg.Pins.Check(msg.Name, key)
		if errors.Is(err, identity.ErrKeyChanged) && l.cfg.AcceptNewKey {
			first, replace, err = true, true, nil
		}
		if err != nil {
			return err
		}
	}
	if first && msg.Type == signal.TypeOffer && l.contacts != nil && !l.contacts.allow(msg.Name) {
		return fmt.Errorf("%w: %s has answered %d first contacts under the name %s (or %d in all) in the last minute; someone may be trying to steer the verification code",
			ErrTooManyFirstContacts, l.cfg.Name, contactsPerName, msg.Name, contactsPerWindow)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remotePrint, l.remoteKey, l.firstSeen, l.replaceKey = fp, key, first, replace
	if msg.Type == signal.TypeOffer {
		l.offerPrint = fp
	} else {
		l.sasCommit = st.Commit
	}
	return nil
}

// err is the verification failure that ended the link, if any.
func (l *link) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.verifyErr
}

// secure checks the freshly connected peer (checkConnected) and runs the
// preamble on stream; on failure it closes the stream. The receiver is the
// initiator.
func (l *link) secure(ctx context.Context, stream io.ReadWriteCloser, initiator bool) error {
	err := l.checkConnected()
	if err == nil {
		err = authenticate(ctx, l.cfg, stream, l, initiator)
	}
	if err != nil {
		stream.Close()
	}
	return err
}

// checkConnected makes sure the certificate of the connected peer is the
// one it proved.
func (l *link) checkConnected() error {
	got, err := l.peer.RemoteFingerprint()
	if err != nil {
		return fmt.Errorf("%w: %v", identity.ErrUnverified, err)
	}
	l.mu.Lock()
	want := l.remotePrint
	l.mu.Unlock()
	if want == "" || got != want {
		return fmt.Errorf("%w: %s presented a certificate other than the one it proved (someone is in the middle)", identity.ErrUnverified, l.remote)
	}
	return nil
}

// settle fixes this connection's verification code from the two nonces
// of the preamble and tells the user at first contact. The sharer calls
// it before it reveals its nonce, the receiver once it checked the reveal.
func (l *link) settle(receiverNonce, sharerNonce []byte) {
	l.mu.Lock()
	key, fp, first := l.remoteKey, l.remotePrint, l.firstSeen
	l.code = identity.VerificationCode(l.cfg.Identity.Public(), key, l.peer.LocalFingerprint(), fp, receiverNonce, sharerNonce)
	code := l.code
	l.mu.Unlock()
	if first {
		l.cfg.Events(Event{Kind: EventVerify, Peer: l.remote, Device: identity.DeviceID(key), Code: code, Text: fmt.Sprintf(
			"first contact with %s (device %s): verification code %s; it must match on the other side", l.remote, identity.DeviceID(key), code)})
	}
}

// verification is the remote's device id, the verification code of this
// connection (both ends compute the same code) once settled, and whether
// this is the first contact with that device: the only time a person
// compares the code.
func (l *link) verification() (device, code string, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return identity.DeviceID(l.remoteKey), l.code, l.firstSeen
}

// compareCode is what the side that asks the other to decide says of the
// code: at first contact it must match the other side's; a peer seen
// before proved its pinned key, and the other side shows the code only
// if it does not know this device (its pins were lost, or it is new).
func compareCode(peer, code string, first bool) string {
	if first {
		return fmt.Sprintf("; verification code %s (it must match on %s's screen)", code, peer)
	}
	return fmt.Sprintf("; verification code %s (if %s shows one, it must match)", code, peer)
}

// pin remembers the remote's key once everything asked for has passed
// (the connection verified, the code confirmed, the sharer's own decision).
func (l *link) pin() error {
	if l.cfg.Pins == nil {
		return nil
	}
	l.mu.Lock()
	key, replace := l.remoteKey, l.replaceKey
	l.mu.Unlock()
	if key == nil {
		return nil
	}
	if replace {
		return l.cfg.Pins.Replace(l.remote, key)
	}
	return l.cfg.Pins.Pin(l.remote, key)
}

// refusal is the "lanft" object of a leave that refuses an offer: a proof
// over identity.Statement{Kind: KindRefuse, Fingerprint: Print, Reason}.
type refusal struct {
	identity.Proof
	Refuse string `json:"refuse"`
	Print  string `json:"print"` // the fingerprint of the offer refused, as it arrived
}

// refuse tells the remote, through the host, that its offer is refused and
// why, signed so that the host cannot forge or alter it. offer is the
// refused offer's payload. Best effort: the host may drop it, and the
// receiver's bounded wait for an answer covers that.
func (l *link) refuse(offer json.RawMessage, reason string) {
	c := l.current()
	if c == nil {
		return
	}
	fp, _ := rtc.SDPFingerprint(offer)
	st := identity.Statement{Kind: identity.KindRefuse, From: l.cfg.Name, To: l.remote, Fingerprint: fp, Reason: reason}
	meta, err := json.Marshal(refusal{Proof: l.cfg.Identity.Prove(st), Refuse: reason, Print: fp})
	if err != nil {
		return
	}
	if err := c.Send(signal.Message{Type: signal.TypeLeave, OtherName: l.remote, Meta: meta}); err != nil {
		l.cfg.Logger.Debug("node: send refusal", "peer", l.remote, "err", err)
	}
}

// sharing reports whether this is the sharer's end of the link: a sharer
// only keeps a link whose offer it verified.
func (l *link) sharing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.offerPrint != ""
}

// refused turns a leave carrying a refusal into the error to show: the
// remote's words when its signature holds, a warning about the host when
// it does not. A sharer hears it from a receiver that refused its answer.
func (l *link) refused(msg signal.Message) error {
	sentinel, ours := ErrRefused, "offer"
	if l.sharing() {
		sentinel, ours = ErrReceiverRefused, "answer"
	}
	var r refusal
	if json.Unmarshal(msg.Meta, &r) != nil || r.Sig == "" {
		return fmt.Errorf("%w: %s ended the connection", sentinel, msg.Name)
	}
	st := identity.Statement{Kind: identity.KindRefuse, From: msg.Name, To: l.cfg.Name, Fingerprint: r.Print, Reason: r.Refuse}
	key, err := identity.Verify(r.Proof, st)
	if err == nil && l.cfg.Pins != nil {
		_, err = l.cfg.Pins.Check(msg.Name, key)
	}
	if err != nil {
		return fmt.Errorf("%w: a refusal in the name of %s could not be verified; the signaling host may be interfering", identity.ErrUnverified, msg.Name)
	}
	if r.Print != "" && !strings.EqualFold(r.Print, l.peer.LocalFingerprint()) {
		return fmt.Errorf("%w: %s refused our %s because it arrived altered; the signaling host is interfering",
			identity.ErrUnverified, msg.Name, ours)
	}
	return fmt.Errorf("%w: %s", sentinel, transfer.DisplayName(r.Refuse))
}
