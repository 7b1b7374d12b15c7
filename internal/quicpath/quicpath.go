// Package quicpath moves a transfer's bytes between two lanft peers over
// QUIC on a hole-punched UDP address pair, bound to identities the peers
// have already verified on another channel (lanft's WebRTC data channel),
// as internal/direct binds its TCP path: each side's certificate is a
// fresh direct.Cert whose fingerprint came over that channel, and TLS 1.3
// requires exactly it (direct.Cert.TLSConfig).
//
// QUIC pays per datagram what SCTP over DTLS pays per 1.2 KB packet, but
// its datagrams are as large as the path allows, sent in batches (GSO),
// and its windows are large: it runs at the link's speed where the data
// channel does not.
//
// Each side opens a fresh UDP socket on the interface of ICE's route
// (Open), learns its public mapping with one STUN binding request to the
// signaling host's STUN server (Socket.Mapping), and sends a Candidate
// over the verified channel. Both then punch (Socket.Punch): datagrams to
// the other's mapping until each has heard the other. The sharer then
// listens and the receiver dials (Socket.Accept, Socket.Dial) on those
// sockets:
//
//	receiver                       verified channel                    sharer
//	  ◀──── Candidate {v, addr: STUN mapping, nonce} ───────────────────
//	  ───── Candidate {v, addr, nonce}  (or {v, why}) ─────────────────▶
//	  punch ◀═════ "LFP1" flags nonce (UDP, both ways) ═════▶ punch
//	  Dial ═════ QUIC + TLS 1.3, both certificates checked ═════▶ Accept
//	       ═════ stream: 'H' ══════════════════════════════════▶
//	       ◀════ 'K' ═══════════════════════════════════════════
//
// A punch datagram is the magic "LFP1", one flag byte (bit 0: the sender
// has heard the peer) and the sender's 16-byte nonce from its Candidate;
// anything else is ignored. A side is done punching once it has heard the
// peer say it heard us (or sees the peer's first QUIC packet). A peer
// whose datagrams arrive from another address than its Candidate's (a NAT
// that maps per destination on that side only) is answered there: the
// nonce says it is the peer, and TLS says it again.
package quicpath

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/pion/stun/v4"
)

// Version is the version of the Candidate message.
const Version = 1

const (
	// PunchTimeout bounds punching: a pair that has not heard each other
	// by then is taken to be behind a NAT that maps per destination.
	PunchTimeout = 1500 * time.Millisecond
	// stunTimeout bounds the binding request (with retransmissions).
	stunTimeout     = 1500 * time.Millisecond
	stunRetransmit  = 200 * time.Millisecond
	punchInterval   = 20 * time.Millisecond
	nonceLen        = 16
	punchLen        = 4 + 1 + nonceLen
	flagHeard       = 1
	finalPunches    = 3
	socketBuffer    = 7 << 20 // what quic-go asks for
	maxDatagramRead = 1500
)

var punchMagic = []byte("LFP1")

// ErrNoPunch is returned by Punch when the peer was not heard in time.
var ErrNoPunch = errors.New("quicpath: the peer's punch datagrams never arrived (a NAT that maps per destination, or a firewall)")

// Candidate is what each side sends the other over the verified channel.
type Candidate struct {
	V     int    `json:"v"`
	Addr  string `json:"addr,omitempty"`  // ip:port, the STUN mapping
	Local string `json:"local,omitempty"` // ip:port, the socket's own address
	Nonce string `json:"nonce,omitempty"` // hex, 16 bytes, in punch datagrams
	Why   string `json:"why,omitempty"`   // no Addr: why this side cannot
}

// Socket is one side's UDP socket for one transfer.
type Socket struct {
	udp    *net.UDPConn
	nonce  [nonceLen]byte
	logger *slog.Logger
}

// Open opens a UDP socket on local (port 0) and sizes its buffers for
// QUIC, logging when the system allows less.
func Open(local netip.Addr, logger *slog.Logger) (*Socket, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if !local.IsValid() {
		return nil, errors.New("quicpath: open: no local address")
	}
	udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		return nil, fmt.Errorf("quicpath: open: %w", err)
	}
	s := &Socket{udp: udp, logger: logger}
	if _, err := rand.Read(s.nonce[:]); err != nil {
		udp.Close()
		return nil, fmt.Errorf("quicpath: nonce: %w", err)
	}
	if rcv, snd := setBuffers(udp, socketBuffer); rcv < socketBuffer || snd < socketBuffer {
		logger.Warn("quicpath: UDP buffers smaller than QUIC wants; raise net.core.rmem_max and wmem_max for full speed",
			"receive", rcv, "send", snd, "want", socketBuffer)
		// Said once in our log, where --log-level shows it: quic-go would
		// also print it on stderr, in the middle of lanft's own output.
		os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	}
	return s, nil
}

// LocalAddr is the socket's own address.
func (s *Socket) LocalAddr() netip.AddrPort { return s.udp.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close closes the socket (not needed once a Conn owns it).
func (s *Socket) Close() error { return s.udp.Close() }

// Candidate is this side's Candidate for mapping.
func (s *Socket) Candidate(mapping netip.AddrPort) Candidate {
	return Candidate{V: Version, Addr: mapping.String(), Local: s.LocalAddr().String(), Nonce: hex.EncodeToString(s.nonce[:])}
}

// Mapping asks the STUN server for this socket's public address and port.
func (s *Socket) Mapping(ctx context.Context, server netip.AddrPort) (netip.AddrPort, error) {
	ctx, cancel := context.WithTimeout(ctx, stunTimeout)
	defer cancel()
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("quicpath: STUN request: %w", err)
	}
	defer s.udp.SetReadDeadline(time.Time{})
	to := net.UDPAddrFromAddrPort(server)
	buf := make([]byte, maxDatagramRead)
	for {
		if _, err := s.udp.WriteToUDP(req.Raw, to); err != nil {
			return netip.AddrPort{}, fmt.Errorf("quicpath: STUN request to %s: %w", server, err)
		}
		next := time.Now().Add(stunRetransmit)
		if dl, _ := ctx.Deadline(); dl.Before(next) {
			next = dl
		}
		s.udp.SetReadDeadline(next)
		for {
			n, from, err := s.udp.ReadFromUDPAddrPort(buf)
			if err != nil {
				if ctx.Err() != nil {
					return netip.AddrPort{}, fmt.Errorf("quicpath: no STUN answer from %s within %s", server, stunTimeout)
				}
				break // retransmit
			}
			if from.Addr().Unmap() != server.Addr() || from.Port() != server.Port() {
				continue
			}
			if a, ok := stunAnswer(buf[:n], req.TransactionID); ok {
				return a, nil
			}
		}
	}
}

// stunAnswer returns the mapped address of a binding success response to
// the transaction id.
func stunAnswer(b []byte, id [stun.TransactionIDSize]byte) (netip.AddrPort, bool) {
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil || m.TransactionID != id || m.Type != stun.BindingSuccess {
		return netip.AddrPort{}, false
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(m); err != nil {
		return netip.AddrPort{}, false
	}
	a, ok := netip.AddrFromSlice(xor.IP)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(xor.Port)), true
}

// Punch sends punch datagrams to the peer's Candidate until each side has
// heard the other, within PunchTimeout, and returns the address the peer's
// datagrams come from (its mapping, as a rule).
func (s *Socket) Punch(ctx context.Context, peer Candidate) (netip.AddrPort, error) {
	to, err := netip.ParseAddrPort(peer.Addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("quicpath: the peer's address %q: %w", peer.Addr, err)
	}
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	nonce, err := hex.DecodeString(peer.Nonce)
	if err != nil || len(nonce) != nonceLen {
		return netip.AddrPort{}, errors.New("quicpath: the peer's nonce is malformed")
	}
	ctx, cancel := context.WithTimeout(ctx, PunchTimeout)
	defer cancel()
	// The read deadline, not a context.AfterFunc: one that fired late
	// would leave the socket timed out for QUIC after Punch returned.
	deadline, _ := ctx.Deadline()
	s.udp.SetReadDeadline(deadline)
	defer s.udp.SetReadDeadline(time.Time{})

	p := &puncher{s: s, to: to, peerNonce: nonce}
	sent := make(chan struct{})
	go func() { defer close(sent); p.sendUntil(ctx) }()
	defer func() { cancel(); <-sent }()
	buf := make([]byte, maxDatagramRead)
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
				return netip.AddrPort{}, fmt.Errorf("%w: nothing within %s from %s", ErrNoPunch, PunchTimeout, to)
			}
			return netip.AddrPort{}, fmt.Errorf("quicpath: punch: %w", err)
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		switch heard, ok := p.parse(buf[:n]); {
		case ok:
			p.heardFrom(from)
			if heard {
				cancel()
				<-sent
				p.finish()
				return p.peerAddr(), nil
			}
		case from == p.peerAddr() && p.hasHeard():
			// The peer is done punching: this is its first QUIC packet
			// (lost to us; QUIC sends it again).
			return from, nil
		}
	}
}

// puncher is one Punch's state, shared by its reader and sender.
type puncher struct {
	s         *Socket
	peerNonce []byte

	mu    sync.Mutex
	to    netip.AddrPort
	heard bool
}

func (p *puncher) parse(b []byte) (heard, ok bool) {
	if len(b) != punchLen || !bytes.Equal(b[:4], punchMagic) || !bytes.Equal(b[5:], p.peerNonce) {
		return false, false
	}
	return b[4]&flagHeard != 0, true
}

func (p *puncher) heardFrom(from netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if from != p.to {
		p.s.logger.Info("quicpath: the peer's datagrams come from another address than its mapping; answering there",
			"mapping", p.to, "from", from)
		p.to = from
	}
	p.heard = true
}

func (p *puncher) hasHeard() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.heard
}

func (p *puncher) peerAddr() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.to
}

func (p *puncher) datagram() ([]byte, netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := append(append([]byte(nil), punchMagic...), 0)
	if p.heard {
		b[4] = flagHeard
	}
	return append(b, p.s.nonce[:]...), p.to
}

func (p *puncher) send() {
	b, to := p.datagram()
	if _, err := p.s.udp.WriteToUDPAddrPort(b, to); err != nil {
		p.s.logger.Debug("quicpath: punch datagram", "to", to, "err", err)
	}
}

// sendUntil sends a punch datagram every punchInterval until ctx ends.
func (p *puncher) sendUntil(ctx context.Context) {
	t := time.NewTicker(punchInterval)
	defer t.Stop()
	for {
		p.send()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// finish tells the peer a few more times that we heard it, for the case
// it has not heard that yet.
func (p *puncher) finish() {
	for range finalPunches {
		p.send()
	}
}
