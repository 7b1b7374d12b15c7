package rtc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
)

// ErrFingerprint is returned when a description's DTLS fingerprint is
// missing, ambiguous, or not the certificate the peer actually used.
var ErrFingerprint = errors.New("DTLS fingerprint")

// Fingerprints are written "sha-256 AB:CD:...", as in SDP's a=fingerprint.
func formatFingerprint(sum []byte) string {
	var b strings.Builder
	b.WriteString("sha-256 ")
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

func newCertificate() (*webrtc.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("rtc: generate DTLS key: %w", err)
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return nil, "", fmt.Errorf("rtc: generate DTLS certificate: %w", err)
	}
	fps, err := cert.GetFingerprints()
	if err != nil {
		return nil, "", fmt.Errorf("rtc: fingerprint DTLS certificate: %w", err)
	}
	for _, fp := range fps {
		if strings.EqualFold(fp.Algorithm, "sha-256") {
			return cert, "sha-256 " + strings.ToUpper(fp.Value), nil
		}
	}
	return nil, "", fmt.Errorf("rtc: %w: no sha-256 fingerprint for the certificate", ErrFingerprint)
}

// SDPFingerprint returns the sha-256 DTLS fingerprint that an offer or
// answer payload ({"type","sdp"}) declares. Several different ones, or
// none, are an error: lanft's proofs sign exactly one.
func SDPFingerprint(payload json.RawMessage) (string, error) {
	var d webrtc.SessionDescription
	if err := json.Unmarshal(payload, &d); err != nil {
		return "", fmt.Errorf("rtc: decode description: %w", err)
	}
	found := ""
	for _, line := range strings.Split(d.SDP, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fingerprint:")
		if !ok {
			continue
		}
		alg, value, _ := strings.Cut(v, " ")
		if !strings.EqualFold(alg, "sha-256") {
			return "", fmt.Errorf("rtc: %w: unsupported algorithm %q", ErrFingerprint, alg)
		}
		fp := "sha-256 " + strings.ToUpper(strings.TrimSpace(value))
		if found != "" && found != fp {
			return "", fmt.Errorf("rtc: %w: the description declares several", ErrFingerprint)
		}
		found = fp
	}
	if found == "" {
		return "", fmt.Errorf("rtc: %w: the description declares none", ErrFingerprint)
	}
	return found, nil
}

// LocalFingerprint is the fingerprint of this peer's DTLS certificate.
func (p *Peer) LocalFingerprint() string { return p.fingerprint }

// RemoteFingerprint is the fingerprint of the certificate the remote peer
// presented in the DTLS handshake (known once the stream is open).
func (p *Peer) RemoteFingerprint() (string, error) {
	der := p.pc.SCTP().Transport().GetRemoteCertificate()
	if len(der) == 0 {
		return "", fmt.Errorf("rtc: %w: no remote certificate yet", ErrFingerprint)
	}
	sum := sha256.Sum256(der)
	return formatFingerprint(sum[:]), nil
}
