//go:build js && wasm

package main

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall/js"

	"golang.org/x/crypto/chacha20poly1305"
)

// The relay path between two pages (web/static/relay.js) seals each record
// of its byte stream with ChaCha20-Poly1305 under a key only the two pages
// hold. The 12-byte nonce is the direction (4 bytes big-endian: 0 from the
// page that shares, 1 from the page that receives) then the record's index
// (8 bytes big-endian); the same 12 bytes are the associated data. A record
// reordered, replayed, moved to the other direction or changed fails to
// open; a cut stream ends before the transfer's END and OK.

// sealer holds the AEADs of the relay streams by number (the page refers
// to them so, as to the CPace parties).
type sealer struct {
	next  int
	aeads map[int]cipher.AEAD
}

// relayNonce is the nonce and associated data of record index in
// direction dir.
func relayNonce(dir, index int) ([]byte, error) {
	if dir != 0 && dir != 1 || index < 0 {
		return nil, fmt.Errorf("lanft: relay record %d of direction %d", index, dir)
	}
	n := make([]byte, chacha20poly1305.NonceSize)
	binary.BigEndian.PutUint32(n, uint32(dir))
	binary.BigEndian.PutUint64(n[4:], uint64(index))
	return n, nil
}

// relayKey(key Uint8Array(32)) number: an AEAD for seal and open.
func (s *sealer) relayKey(args []js.Value) (any, error) {
	a, err := chacha20poly1305.New(bytesOf(args[0]))
	if err != nil {
		return nil, fmt.Errorf("lanft: relay key: %w", err)
	}
	s.next++
	s.aeads[s.next] = a
	return s.next, nil
}

// relayForget(number): the stream ended; drop its AEAD.
func (s *sealer) relayForget(args []js.Value) (any, error) {
	delete(s.aeads, args[0].Int())
	return nil, nil
}

func (s *sealer) aead(v js.Value) (cipher.AEAD, error) {
	a := s.aeads[v.Int()]
	if a == nil {
		return nil, errors.New("lanft: no such relay key")
	}
	return a, nil
}

// relaySeal(key number, dir, index, plaintext Uint8Array) Uint8Array: the
// record, plaintext's length plus 16 bytes.
func (s *sealer) relaySeal(args []js.Value) (any, error) {
	a, err := s.aead(args[0])
	if err != nil {
		return nil, err
	}
	n, err := relayNonce(args[1].Int(), args[2].Int())
	if err != nil {
		return nil, err
	}
	return toJS(a.Seal(nil, n, bytesOf(args[3]), n)), nil
}

// relayOpen(key number, dir, index, record Uint8Array) Uint8Array: the
// plaintext, or an error when the record is not the one sealed there.
func (s *sealer) relayOpen(args []js.Value) (any, error) {
	a, err := s.aead(args[0])
	if err != nil {
		return nil, err
	}
	n, err := relayNonce(args[1].Int(), args[2].Int())
	if err != nil {
		return nil, err
	}
	p, err := a.Open(nil, n, bytesOf(args[3]), n)
	if err != nil {
		return nil, fmt.Errorf("record %d was changed, reordered or forged on the way", args[2].Int())
	}
	return toJS(p), nil
}
