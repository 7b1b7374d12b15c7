// Package rtc connects two lanft peers directly with a WebRTC data channel
// (Pion) and exposes that channel as a byte stream with backpressure.
//
// A Peer knows nothing of the signaling server: it hands the SDP offer or
// answer and its ICE candidates to a SendFunc and is fed the remote ones
// through Handle. Payloads are the browser's JSON shapes
// (RTCSessionDescriptionInit {"type","sdp"} and RTCIceCandidateInit
// {"candidate","sdpMid","sdpMLineIndex","usernameFragment"}), so a browser
// client of the original protocol could be a peer.
//
//	offerer (receiver)                      answerer (sharer)
//	  NewPeer, Dial ──── offer ─────────────▶ NewPeer, Handle(offer), Accept
//	                ◀─── answer ────────────
//	                ◀──▶ candidate (trickled both ways, queued until the
//	                     remote description is set)
//	  Stream ◀═══════ data channel "lanft" (DTLS, SCTP) ═══════▶ Stream
//
// ICE is restricted to the configured interfaces (and loopback only when it
// is named), Pion's own mDNS responder is off, and DTLS fingerprint checking
// is Pion's default and never disabled.
//
// The CPU, not the link, limits a data channel: SCTP over DTLS moves
// datagrams of about 1.2 KB, each once a system call and a trip through the
// network stack. ICE's UDP sockets therefore get 4 MiB buffers and, on
// Linux, send runs of datagrams with UDP GSO and read them with GRO
// (batch_linux.go); the datagrams on the wire are the same.
package rtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// Signal kinds, named as in the signaling protocol.
const (
	KindOffer     = "offer"
	KindAnswer    = "answer"
	KindCandidate = "candidate"
)

// Signal is one message for the remote peer's signaling.
type Signal struct {
	Kind    string
	Payload json.RawMessage
}

// SendFunc delivers a Signal to the remote peer.
type SendFunc func(Signal) error

// ErrPeerGone is returned when the connection fails or closes before it is up.
var ErrPeerGone = errors.New("peer connection closed")

// Config tunes the peer connection.
type Config struct {
	// Interfaces restricts ICE to these interface names; empty means all.
	// Naming "lo" (or any loopback interface) enables loopback candidates.
	Interfaces []string
	Logger     *slog.Logger
	// ReceiveBuffer is the SCTP receive buffer in bytes (8 MiB).
	ReceiveBuffer uint32
	// ICEServers are STUN and TURN servers: with them ICE gathers
	// server-reflexive and relay candidates besides host ones.
	ICEServers []ICEServer
	// NoRelay, when set, is why the signaling host relays nothing (its
	// own words), said when ICE finds no path.
	NoRelay string
	// RelayOnly restricts ICE to relay candidates (transport policy
	// "relay"): every byte goes through a TURN server.
	RelayOnly bool
	// WAN selects ICE timeouts for a path across the Internet or a relay
	// (a peer silent for 15 s is gone) instead of the LAN's 5 s. Either
	// way a connection that finds no path fails after that long.
	WAN bool
	// Net is the network ICE uses: the machine's when nil (with lanft's
	// socket buffers and batching), or another, such as Pion's virtual
	// network in tests.
	Net transport.Net
}

// ICEServer is one STUN or TURN server (as the browser's RTCIceServer).
type ICEServer struct {
	URLs       []string
	Username   string
	Credential string
}

// Candidate types, as ICE names them.
const (
	CandidateHost  = "host"
	CandidateSrflx = "srflx"
	CandidatePrflx = "prflx"
	CandidateRelay = "relay"
)

const (
	label = "lanft"
	// maxMessage is the largest data-channel message lanft sends: Pion's
	// default limit on the receiving side.
	maxMessage = 64 << 10
)

// acceptRelay is how long ICE checks before it nominates a relay pair
// (NewPeer).
const acceptRelay = 800 * time.Millisecond

// Peer is one WebRTC connection to one remote peer.
type Peer struct {
	cfg         Config
	pc          *webrtc.PeerConnection
	fingerprint string // of our DTLS certificate
	send        SendFunc

	mu            sync.Mutex
	remoteSet     bool
	remoteCands   []webrtc.ICECandidateInit // before the remote description
	localSent     bool
	localCands    []webrtc.ICECandidateInit // before our description is sent
	sendErr       error
	remoteDesc    chan webrtc.SessionDescription
	doneOnce      sync.Once
	done          chan struct{}
	dataChannelCh chan *webrtc.DataChannel
	localTypes    []string // types of the candidates gathered here
	remoteTypes   []string // types of the candidates the remote sent
	remoteHosts   []string // "ip port" of the remote's host candidates
	iceConnected  atomic.Bool
}

func isLoopbackName(name string) bool { return name == "lo" || name == "lo0" }

// NewPeer creates a peer connection; nothing is sent until Dial or Accept.
func NewPeer(cfg Config, send SendFunc) (*Peer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReceiveBuffer == 0 {
		cfg.ReceiveBuffer = 8 << 20
	}
	var se webrtc.SettingEngine
	se.DetachDataChannels()
	se.EnableDataChannelBlockWrite(true)
	se.EnableSCTPZeroChecksum(true)
	se.SetSCTPMaxReceiveBufferSize(cfg.ReceiveBuffer)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if cfg.WAN {
		// Across the Internet or through a relay, a loaded path may go
		// quiet for seconds without being gone.
		se.SetICETimeouts(5*time.Second, 10*time.Second, time.Second)
	} else {
		// A LAN peer that is silent for 5 s is gone: fail fast so that a
		// receive can resume from another attempt instead of hanging.
		se.SetICETimeouts(2*time.Second, 5*time.Second, 500*time.Millisecond)
	}
	// ICE nominates a pair of a kind only after checking that long, so
	// that a better pair may still succeed; Pion waits 0.5 s for a
	// server-reflexive pair, 1 s for a peer-reflexive and 2 s for a relay
	// one. Whoever waits is the user: across the Internet lanft takes its
	// byte path from the pair (a relay pair: the TCP relay), and the data
	// channel carries only the checks before that. A punched pair
	// succeeds a round trip or two after the candidates arrive, so a
	// shorter relay wait still lets it win at Internet round trips
	// (TestDistantHomesPunchBeforeTheRelay: 200 and 400 ms). On a LAN the
	// waits stay Pion's: with a LAN instance's TURN on offer, a 0.8 s
	// relay wait left a browser page's data channel deaf one way in about
	// 1 of 10 runs under load (TestPageAndLanftUp); Chromium holding the
	// page's first message (node's helloWait) may be why, not re-measured.
	// With relay candidates alone there is nothing to wait for.
	if cfg.WAN && !cfg.RelayOnly {
		se.SetRelayAcceptanceMinWait(acceptRelay)
	}
	if cfg.Net != nil {
		se.SetNet(cfg.Net)
	} else if n, err := newBufferedNet(cfg.Interfaces); err == nil {
		se.SetNet(n)
	}
	se.LoggerFactory = PionLogs(cfg.Logger)
	if len(cfg.Interfaces) > 0 {
		names := slices.Clone(cfg.Interfaces)
		se.SetInterfaceFilter(func(name string) bool { return slices.Contains(names, name) })
		if slices.ContainsFunc(names, isLoopbackName) {
			se.SetIncludeLoopbackCandidate(true)
		}
	}
	cert, fingerprint, err := newCertificate()
	if err != nil {
		return nil, err
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	conf := webrtc.Configuration{Certificates: []webrtc.Certificate{*cert}}
	for _, s := range cfg.ICEServers {
		conf.ICEServers = append(conf.ICEServers, webrtc.ICEServer{
			URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	if cfg.RelayOnly {
		conf.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(conf)
	if err != nil {
		return nil, fmt.Errorf("rtc: new peer connection: %w", err)
	}
	p := &Peer{
		cfg:           cfg,
		pc:            pc,
		fingerprint:   fingerprint,
		send:          send,
		remoteDesc:    make(chan webrtc.SessionDescription, 1),
		done:          make(chan struct{}),
		dataChannelCh: make(chan *webrtc.DataChannel, 1),
	}
	pc.OnICECandidate(p.onLocalCandidate)
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateConnected || s == webrtc.ICEConnectionStateCompleted {
			p.iceConnected.Store(true)
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		cfg.Logger.Debug("rtc: connection state", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateFailed:
			p.markDone()
			go pc.Close() // unblocks stream reads; cannot close from inside the callback
		case webrtc.PeerConnectionStateClosed:
			p.markDone()
		}
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != label {
			cfg.Logger.Warn("rtc: ignoring unknown data channel", "label", dc.Label())
			return
		}
		select {
		case p.dataChannelCh <- dc:
		default:
		}
	})
	return p, nil
}

func (p *Peer) markDone() { p.doneOnce.Do(func() { close(p.done) }) }

// Done is closed when the connection has failed or been closed.
func (p *Peer) Done() <-chan struct{} { return p.done }

func (p *Peer) onLocalCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return // gathering complete
	}
	init := c.ToJSON()
	p.mu.Lock()
	if t := c.Typ.String(); !slices.Contains(p.localTypes, t) {
		p.localTypes = append(p.localTypes, t)
	}
	if !p.localSent {
		p.localCands = append(p.localCands, init)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.sendCandidate(init)
}

func (p *Peer) sendCandidate(init webrtc.ICECandidateInit) {
	b, err := json.Marshal(init)
	if err == nil {
		err = p.send(Signal{Kind: KindCandidate, Payload: b})
	}
	if err != nil {
		p.cfg.Logger.Debug("rtc: send candidate", "err", err)
	}
}

// sendDescription sends our offer or answer, then the candidates gathered
// meanwhile, so the remote sees the description first.
func (p *Peer) sendDescription(kind string, d webrtc.SessionDescription) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("rtc: encode %s: %w", kind, err)
	}
	if err := p.send(Signal{Kind: kind, Payload: b}); err != nil {
		return fmt.Errorf("rtc: send %s: %w", kind, err)
	}
	p.mu.Lock()
	p.localSent = true
	held := p.localCands
	p.localCands = nil
	p.mu.Unlock()
	for _, c := range held {
		p.sendCandidate(c)
	}
	return nil
}

// Handle feeds a signal from the remote peer: an offer (for Accept), an
// answer (for Dial) or a trickled candidate.
func (p *Peer) Handle(s Signal) error {
	switch s.Kind {
	case KindOffer, KindAnswer:
		var d webrtc.SessionDescription
		if err := json.Unmarshal(s.Payload, &d); err != nil {
			return fmt.Errorf("rtc: decode %s: %w", s.Kind, err)
		}
		if d.Type.String() != s.Kind {
			return fmt.Errorf("rtc: %s carries a description of type %q", s.Kind, d.Type.String())
		}
		select {
		case p.remoteDesc <- d:
			return nil
		default:
			return fmt.Errorf("rtc: unexpected second %s", s.Kind)
		}
	case KindCandidate:
		var c webrtc.ICECandidateInit
		if err := json.Unmarshal(s.Payload, &c); err != nil {
			return fmt.Errorf("rtc: decode candidate: %w", err)
		}
		if c.Candidate == "" {
			return nil // end-of-candidates marker
		}
		p.mu.Lock()
		p.noteRemote(c.Candidate)
		if !p.remoteSet {
			if len(p.remoteCands) < 256 {
				p.remoteCands = append(p.remoteCands, c)
			}
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
		if err := p.pc.AddICECandidate(c); err != nil {
			return fmt.Errorf("rtc: add candidate: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("rtc: unknown signal %q", s.Kind)
	}
}

func (p *Peer) setRemote(d webrtc.SessionDescription) error {
	if err := p.pc.SetRemoteDescription(d); err != nil {
		return fmt.Errorf("rtc: set remote %s: %w", d.Type, err)
	}
	p.mu.Lock()
	p.remoteSet = true
	queued := p.remoteCands
	p.remoteCands = nil
	p.mu.Unlock()
	for _, c := range queued {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.cfg.Logger.Debug("rtc: add queued candidate", "err", err)
		}
	}
	return nil
}

func (p *Peer) waitDescription(ctx context.Context, kind string) (webrtc.SessionDescription, error) {
	select {
	case d := <-p.remoteDesc:
		return d, nil
	case <-p.done:
		return webrtc.SessionDescription{}, fmt.Errorf("rtc: waiting for %s: %w", kind, ErrPeerGone)
	case <-ctx.Done():
		return webrtc.SessionDescription{}, fmt.Errorf("rtc: waiting for %s: %w", kind, ctx.Err())
	}
}

// Dial makes the offer, waits for the answer and for the data channel to
// open. It is the receiving side's call.
func (p *Peer) Dial(ctx context.Context) (*Stream, error) {
	ordered := true
	dc, err := p.pc.CreateDataChannel(label, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		return nil, fmt.Errorf("rtc: create data channel: %w", err)
	}
	open := p.onOpen(dc)
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("rtc: create offer: %w", err)
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return nil, fmt.Errorf("rtc: set local offer: %w", err)
	}
	if err := p.sendDescription(KindOffer, offer); err != nil {
		return nil, err
	}
	answer, err := p.waitDescription(ctx, KindAnswer)
	if err != nil {
		return nil, err
	}
	if err := p.setRemote(answer); err != nil {
		return nil, err
	}
	return p.waitOpen(ctx, dc, open)
}

// Accept waits for the remote offer (delivered through Handle), answers it
// and waits for the remote's data channel to open. It is the sharing side's call.
func (p *Peer) Accept(ctx context.Context) (*Stream, error) {
	offer, err := p.waitDescription(ctx, KindOffer)
	if err != nil {
		return nil, err
	}
	if err := p.setRemote(offer); err != nil {
		return nil, err
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return nil, fmt.Errorf("rtc: create answer: %w", err)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return nil, fmt.Errorf("rtc: set local answer: %w", err)
	}
	if err := p.sendDescription(KindAnswer, answer); err != nil {
		return nil, err
	}
	var dc *webrtc.DataChannel
	select {
	case dc = <-p.dataChannelCh:
	case <-p.done:
		return nil, p.failed("waiting for data channel", ErrPeerGone)
	case <-ctx.Done():
		return nil, p.failed("waiting for data channel", ctx.Err())
	}
	return p.waitOpen(ctx, dc, p.onOpen(dc))
}

// opened is a data channel that opened, detached.
type opened struct {
	raw datachannel.ReadWriteCloser
	err error
}

// onOpen must be registered before the channel can open. It detaches the
// channel in Pion's OnOpen callback, where Pion wants it (detached later,
// it warns "didn't Detach" on every connection).
func (p *Peer) onOpen(dc *webrtc.DataChannel) <-chan opened {
	ch := make(chan opened, 1)
	var once sync.Once
	open := func() {
		once.Do(func() {
			raw, err := dc.Detach()
			ch <- opened{raw, err}
		})
	}
	dc.OnOpen(open)
	if dc.ReadyState() == webrtc.DataChannelStateOpen {
		open()
	}
	return ch
}

func (p *Peer) waitOpen(ctx context.Context, dc *webrtc.DataChannel, open <-chan opened) (*Stream, error) {
	var o opened
	select {
	case o = <-open:
	case <-p.done:
		return nil, p.failed("waiting for data channel to open", ErrPeerGone)
	case <-ctx.Done():
		return nil, p.failed("waiting for data channel to open", ctx.Err())
	}
	if o.err != nil {
		return nil, fmt.Errorf("rtc: detach data channel: %w", o.err)
	}
	return newStream(p, dc, o.raw), nil
}

// failed is the error of a connection that did not come up: when ICE
// never connected, it says why no path was found.
func (p *Peer) failed(what string, cause error) error {
	if !p.iceConnected.Load() && p.pc.RemoteDescription() != nil {
		// Why no path was found says it all; what we were waiting for
		// and Pion's closing are internals.
		return p.explain()
	}
	return fmt.Errorf("rtc: %s: %w", what, cause)
}

// Close tears the connection down. It is idempotent.
func (p *Peer) Close() error {
	err := p.pc.Close()
	p.markDone()
	if err != nil {
		return fmt.Errorf("rtc: close: %w", err)
	}
	return nil
}
