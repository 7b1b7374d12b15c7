package node

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lanft/lanft/internal/cpace"
	"github.com/lanft/lanft/internal/identity"
)

// ErrCode is returned when the shared code does not match or only one
// side has one.
var ErrCode = errors.New("shared code")

// The preamble opens every lanft data channel, before the transfer
// protocol:
//
//	both ──▶ "LANFT" 0x02 FLAGS          FLAGS bit 0: "I have a --code"
//	                                     FLAGS bit 1: "I speak the direct path" (direct.go)
//	receiver ──▶ Nr (32 bytes)           fresh
//	sharer ──▶ Ns (32 bytes)             opens the commitment its answer carried
//	(both with a code)
//	receiver ──▶ u16 len | CPace Ya     sharer ──▶ u16 len | CPace Yb
//	both ──▶ u16 len | HMAC-SHA-512(ISK, role, fp(receiver), fp(sharer))
//
// Each side fills the fingerprints from its own view: its certificate and
// the one the DTLS handshake showed it. A host in the middle, terminating
// DTLS on both sides, makes those views differ (and does not know the code),
// so the confirmation fails; it has seen only Ya and Yb, random group
// elements that give no way to test a guess of the code offline.
//
// The nonces make the verification code (identity.VerificationCode), which
// a host in the middle cannot steer: the sharer committed to Ns in its
// answer before it saw Nr. The receiver refuses a reveal that does not open
// the commitment. Version 1 of the preamble had no nonces.
var preambleMagic = []byte("LANFT\x02")

// nonceWait bounds the exchange of the nonces, which no person waits on:
// a host in the middle that holds the receiver's Nr cannot take its time
// trying sharers for a code that matches.
const nonceWait = 10 * time.Second

// helloWait bounds the wait for the remote's first bytes: every lanft
// writes its preamble as its channel opens, so a channel still silent
// after this long will stay so. Chromium 156 could hold a page's first
// message for good (1 connection in 40 to 100 from a CLI under load,
// TestSilentChannelIsALostConnection): the dialer gives up on the
// connection, which nothing was decided on, and dials again.
const helloWait = 5 * time.Second

// noPreamble is the failure of a connection that ended before the
// remote's preamble: nothing was said on it, so it may be dialed again.
type noPreamble struct{ error }

func (e noPreamble) Unwrap() error { return e.error }

// The preamble's FLAGS bits (flagDirect is in direct.go). The HTTP path
// for pages and the push offer use the others; nothing new is exchanged unless both sides set the matching bit.
const (
	flagCode       = 1
	flagPage       = 4  // set by a browser page: it takes bytes over HTTP
	flagServesPage = 8  // set by a CLI that serves pages over HTTP
	flagPush       = 16 // set by an initiator that sends to the responder
	// 32 is a page's (web/static/relay.js: it offers the relay between two
	// pages through a lanft); a CLI never sets it and ignores it.
)

// authenticate runs the preamble on a freshly connected stream.
func authenticate(ctx context.Context, cfg *Config, rw io.ReadWriteCloser, l *link, initiator bool) error {
	stop := context.AfterFunc(ctx, func() { rw.Close() })
	defer stop()
	if _, err := rw.Write(append(append([]byte{}, preambleMagic...), l.preambleFlags())); err != nil {
		return fmt.Errorf("node: send preamble: %w", err)
	}
	hello := make([]byte, len(preambleMagic)+1)
	helloCtx, cancel := context.WithTimeout(ctx, helloWait)
	defer cancel()
	closeLate := context.AfterFunc(helloCtx, func() { rw.Close() })
	_, err := io.ReadFull(rw, hello)
	closeLate()
	if err != nil {
		// Nothing was decided yet: a lost connection, which a receiver
		// and a sender try again.
		if helloCtx.Err() == context.DeadlineExceeded {
			return noPreamble{fmt.Errorf("%w: %s sent no lanft preamble within %s of the connection", ErrConnect, l.remote, helloWait)}
		}
		return noPreamble{fmt.Errorf("%w: the connection to %s closed before lanft's preamble: %w", ErrConnect, l.remote, err)}
	}
	if err := checkMagic(hello, l.remote); err != nil {
		return err
	}
	theirs := hello[len(preambleMagic)]&flagCode != 0
	l.setRemoteFlags(hello[len(preambleMagic)])
	if err := l.exchangeNonces(ctx, rw, initiator); err != nil {
		return err
	}
	switch {
	case cfg.Code == "" && !theirs:
		return nil
	case cfg.Code == "" && theirs:
		return fmt.Errorf("%w: %s requires a shared code: run again with --code", ErrCode, l.remote)
	case !theirs:
		return fmt.Errorf("%w: %s did not give the shared code (it must run with the same --code)", ErrCode, l.remote)
	}

	remotePrint, err := l.peer.RemoteFingerprint()
	if err != nil {
		return err
	}
	local := l.peer.LocalFingerprint()
	printI, printR := local, remotePrint
	if !initiator {
		printI, printR = remotePrint, local
	}
	channel := []byte("lanft-code-v1")
	party, msg, err := cpace.Start([]byte(cfg.Code), channel, nil, nil, rand.Reader)
	if err != nil {
		return fmt.Errorf("node: start code exchange: %w", err)
	}
	if err := writeChunk(rw, msg); err != nil {
		return err
	}
	peerMsg, err := readChunk(rw)
	if err != nil {
		return err
	}
	isk, err := party.Finish(peerMsg, nil, initiator)
	if err != nil {
		return fmt.Errorf("%w: %s sent an invalid code exchange: %v", ErrCode, l.remote, err)
	}
	role, peerRole := "receiver", "sharer"
	if !initiator {
		role, peerRole = peerRole, role
	}
	mine := cpace.Confirm(isk, "lanft-confirm-"+role, []byte(printI), []byte(printR))
	if err := writeChunk(rw, mine); err != nil {
		return err
	}
	got, err := readChunk(rw)
	if err != nil {
		return fmt.Errorf("%w: %s closed the connection during the code check (codes differ?)", ErrCode, l.remote)
	}
	want := cpace.Confirm(isk, "lanft-confirm-"+peerRole, []byte(printI), []byte(printR))
	if !hmac.Equal(got, want) {
		return fmt.Errorf("%w: the code does not match %s's, or someone is in the middle", ErrCode, l.remote)
	}
	return nil
}

// preambleFlags is the one place this side's FLAGS byte is made.
func (l *link) preambleFlags() byte {
	var flags byte
	if l.cfg.Code != "" {
		flags |= flagCode
	}
	return flags | directFlag(l.cfg) | pageFlag(l.cfg) | l.pushFlag()
}

// checkMagic checks the start of the remote's preamble.
func checkMagic(hello []byte, remote string) error {
	n := len(preambleMagic) - 1
	switch {
	case string(hello[:n]) != string(preambleMagic[:n]):
		return fmt.Errorf("node: %s does not speak lanft's data-channel protocol", remote)
	case hello[n] < preambleMagic[n]:
		return fmt.Errorf("%w: %s speaks version %d of lanft's data-channel protocol, without a safe verification code; update lanft on %s",
			identity.ErrOutdated, remote, hello[n], remote)
	case hello[n] != preambleMagic[n]:
		return fmt.Errorf("node: %s speaks a newer version (%d) of lanft's data-channel protocol; update lanft here", remote, hello[n])
	}
	return nil
}

// exchangeNonces runs the nonces of the preamble and settles the
// verification code: the receiver sends Nr and checks that the sharer's
// Ns opens the commitment of its answer; the sharer settles the code
// before it reveals Ns.
func (l *link) exchangeNonces(ctx context.Context, rw io.ReadWriteCloser, initiator bool) error {
	ctx, cancel := context.WithTimeout(ctx, nonceWait)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { rw.Close() })
	defer stop()
	fail := func(err error) error {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("%w: %s did not complete the verification within %s (someone may be in the middle)", identity.ErrUnverified, l.remote, nonceWait)
		}
		return fmt.Errorf("%w: %s closed the connection during the verification (someone may be in the middle): %v", identity.ErrUnverified, l.remote, err)
	}
	theirs := make([]byte, identity.NonceSize)
	if initiator {
		mine := identity.NewNonce()
		if _, err := rw.Write(mine); err != nil {
			return fmt.Errorf("node: send nonce: %w", err)
		}
		if _, err := io.ReadFull(rw, theirs); err != nil {
			return fail(err)
		}
		l.mu.Lock()
		commit := l.sasCommit
		l.mu.Unlock()
		if !identity.Opens(commit, theirs) {
			return fmt.Errorf("%w: %s revealed a nonce that does not open the commitment of its answer: someone is in the middle, trying to steer the verification code", identity.ErrUnverified, l.remote)
		}
		l.settle(mine, theirs)
		return nil
	}
	if _, err := io.ReadFull(rw, theirs); err != nil {
		return fail(err)
	}
	l.mu.Lock()
	mine := l.sasNonce
	l.mu.Unlock()
	if mine == nil {
		return fmt.Errorf("node: no answer nonce for %s", l.remote) // cannot happen: we answered
	}
	l.settle(theirs, mine)
	if _, err := rw.Write(mine); err != nil {
		return fmt.Errorf("node: send nonce: %w", err)
	}
	return nil
}

func writeChunk(w io.Writer, b []byte) error {
	var hdr [2]byte
	binary.BigEndian.PutUint16(hdr[:], uint16(len(b)))
	if _, err := w.Write(append(hdr[:], b...)); err != nil {
		return fmt.Errorf("node: code exchange: %w", err)
	}
	return nil
}

func readChunk(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("node: code exchange: %w", err)
	}
	n := binary.BigEndian.Uint16(hdr[:])
	if n > 1024 {
		return nil, fmt.Errorf("%w: code exchange message of %d bytes", ErrCode, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("node: code exchange: %w", err)
	}
	return b, nil
}
