package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/rtc"
	"github.com/lanft/lanft/signal"
)

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

	mu          sync.Mutex
	offerPrint  string // the fingerprint of the offer being answered
	remotePrint string // the verified fingerprint of the remote
	remoteKey   ed25519.PublicKey
	firstSeen   bool
	verifyErr   error
	remoteFlags byte // of the remote's preamble
}

func newLink(cfg *Config, remote string, current func() *signal.Client) (*link, error) {
	l := &link{cfg: cfg, remote: remote, current: current}
	p, err := rtc.NewPeer(cfg.RTC, l.send)
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
// connection is closed with the reason kept for err.
func (l *link) handle(msg signal.Message) {
	s, ok := rtcSignal(msg)
	if !ok {
		if msg.Type == signal.TypeLeave {
			l.peer.Close()
		}
		return
	}
	if s.Kind == rtc.KindOffer || s.Kind == rtc.KindAnswer {
		if err := l.verify(msg, s); err != nil {
			l.mu.Lock()
			l.verifyErr = err
			l.mu.Unlock()
			l.cfg.Logger.Warn("node: refusing peer", "peer", l.remote, "err", err)
			l.peer.Close()
			return
		}
	}
	if err := l.peer.Handle(s); err != nil {
		l.cfg.Logger.Debug("node: signal from peer", "peer", l.remote, "err", err)
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
		st.OfferPrint = l.peer.LocalFingerprint()
	}
	key, err := identity.Verify(proof, st)
	if err != nil {
		return err
	}
	first := false
	if l.cfg.Pins != nil {
		first, err = l.cfg.Pins.Check(msg.Name, key)
		if errors.Is(err, identity.ErrKeyChanged) && l.cfg.AcceptNewKey {
			err = l.cfg.Pins.Replace(msg.Name, key)
			first = true
		}
		if err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remotePrint, l.remoteKey, l.firstSeen = fp, key, first
	if msg.Type == signal.TypeOffer {
		l.offerPrint = fp
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
// one it proved, and tells the user the verification code at first contact.
func (l *link) checkConnected() error {
	got, err := l.peer.RemoteFingerprint()
	if err != nil {
		return fmt.Errorf("%w: %v", identity.ErrUnverified, err)
	}
	l.mu.Lock()
	want, key, first := l.remotePrint, l.remoteKey, l.firstSeen
	l.mu.Unlock()
	if want == "" || got != want {
		return fmt.Errorf("%w: %s presented a certificate other than the one it proved (someone is in the middle)", identity.ErrUnverified, l.remote)
	}
	if first {
		code := identity.VerificationCode(l.cfg.Identity.Public(), key, l.peer.LocalFingerprint(), got)
		l.cfg.Events(Event{Kind: "verify", Peer: l.remote, Text: fmt.Sprintf(
			"first contact with %s (device %s): verification code %s; it must match on the other side", l.remote, identity.DeviceID(key), code)})
	}
	return nil
}
