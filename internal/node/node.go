// Package node is lanft's orchestration: it logs in to a signaling host,
// connects to peers with rtc, and runs transfer over the resulting streams.
// signal, rtc and transfer know nothing of each other; this package is the
// only place they meet (besides cmd/lanft, which only wires flags to it).
//
// Shares are announced additively in the login's "lanft" object (see
// Meta): a receiver picks a peer whose Meta.Role is "share", offers it a
// WebRTC connection, and the sharer answers and serves its files over it.
// A client of the original protocol sees lanft users as plain users.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/internal/pagehttp"
	"github.com/lanft/lanft/rtc"
	"github.com/lanft/lanft/signal"
)

// Roles a lanft user announces.
const (
	RoleShare   = "share"
	RoleReceive = "receive"
	RoleWatch   = "peers"
	RoleUp      = "up"   // lanft up: takes sends (Meta.Push)
	RoleSend    = "send" // lanft send
)

// MetaVersion is the version of the Meta object.
const MetaVersion = 1

// Meta is the additive "lanft" object a lanft client sends with login.
type Meta struct {
	V     int    `json:"v"`
	Role  string `json:"role"`
	Files int    `json:"files,omitempty"`
	Bytes int64  `json:"bytes,omitempty"`
	Title string `json:"title,omitempty"`
	// Ask: the sharer decides about each receiver (lanft share --ask); a
	// receiver shows its verification code while it waits.
	Ask bool `json:"ask,omitempty"`
	// Proof is the version of the proofs it makes (identity.ProofVersion;
	// absent before version 2): a receiver tells the user to update an
	// older sharer rather than be refused for reasons it cannot tell.
	Proof int `json:"proof,omitempty"`
	// Push: this user takes sends (lanft up, every page): a sender may
	// offer it a connection with the preamble's flagPush (push.go).
	Push bool `json:"push,omitempty"`
}

// Peer is a user online at the signaling host, as lanft sees it.
type Peer struct {
	Name string `json:"name"`
	// Meta is nil for a user of another client of the protocol.
	Meta *Meta `json:"lanft,omitempty"`
}

// Sharing reports whether p announces a share.
func (p Peer) Sharing() bool { return p.Meta != nil && p.Meta.Role == RoleShare }

// TakesSends reports whether p takes sends (lanft up, a page).
func (p Peer) TakesSends() bool { return p.Meta != nil && p.Meta.Push }

func peersFrom(infos []signal.PeerInfo) []Peer {
	out := make([]Peer, 0, len(infos))
	for _, in := range infos {
		p := Peer{Name: in.Name}
		if len(in.Meta) > 0 {
			var m Meta
			if json.Unmarshal(in.Meta, &m) == nil && m.V >= 1 {
				p.Meta = &m
			}
		}
		out = append(out, p)
	}
	return out
}

// Hosts tells a node which signaling host to log in to.
type Hosts interface {
	// Host blocks until a host is known. The returned channel is closed
	// when that host is no longer the one to use (nil: never).
	Host(ctx context.Context) (url string, stale <-chan struct{}, err error)
	// Lost reports that the connection to url ended.
	Lost(url string)
}

// hostDialer is a Hosts that dials its hosts itself (LAN: on the
// interfaces discovery works on).
type hostDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// StaticHost is a fixed signaling URL (the --signal flag).
type StaticHost string

// Host returns the URL.
func (h StaticHost) Host(context.Context) (string, <-chan struct{}, error) {
	return string(h), nil, nil
}

// Lost does nothing: there is no other host to try.
func (StaticHost) Lost(string) {}

// Config is what every node needs.
type Config struct {
	Hosts  Hosts
	Name   string
	RTC    rtc.Config
	Logger *slog.Logger
	// PingInterval is the signaling client's ping interval (2s).
	PingInterval time.Duration
	// Events receives what the CLI shows. It is called from several goroutines.
	Events func(Event)
	// Identity is this device's key (nil: a fresh one for this run).
	Identity *identity.Identity
	// Pins remembers peers' keys; nil: every contact is a first contact.
	Pins *identity.Pins
	// AcceptNewKey accepts a known name presenting a new key (and re-pins it).
	AcceptNewKey bool
	// Code is the shared code (--code); both ends must know the same one.
	Code string
	// Mode is how the bytes may move (--path, ParseMode): empty is
	// ModeAuto. Which Path they take is decided by decidePath.
	Mode Mode
	// Pages, when set, serves browser pages the bytes of a transfer over
	// HTTP (pagepath.go); one per process, which closes it. Nil: pages
	// get them on the data channel.
	Pages *pagehttp.Server

	// Share only. To names the only receivers allowed (--to); empty: all.
	To []string
	// Ask, if set, is asked about every receiver once its connection is
	// verified (--ask); false declines it. It may be called from several
	// goroutines at once.
	Ask func(ctx context.Context, r Request) bool
}

// Request is a receiver asking a sharer that runs with --ask.
type Request struct {
	Peer   string // the receiver's name
	Device string // its device id
	Code   string // the verification code of this connection
	First  bool   // never seen before
}

func (c *Config) defaults() error {
	if c.Hosts == nil {
		return errors.New("node: no signaling host configured")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.PingInterval == 0 {
		c.PingInterval = 2 * time.Second
	}
	if c.Events == nil {
		c.Events = func(Event) {}
	}
	if c.Identity == nil {
		c.Identity = identity.New()
	}
	return nil
}

// EventKind is what an Event reports; its JSON is the word of the
// README's "JSON events".
type EventKind string

// The kinds a node reports.
const (
	EventOnline   EventKind = "online"   // logged in to a signaling host (again after a change)
	EventInfo     EventKind = "info"     // something to know: a fallback, a wait, a retry
	EventVerify   EventKind = "verify"   // first contact with a device: its verification code
	EventAsk      EventKind = "ask"      // --ask: a receiver waits for the sharer's decision
	EventPeer     EventKind = "peer"     // connected and verified, with the Path
	EventProgress EventKind = "progress" // bytes moved
	EventDone     EventKind = "done"     // a transfer ended, verified
	EventRefused  EventKind = "refused"  // a receiver was refused or declined
	EventError    EventKind = "error"    // a transfer failed
)

// The kinds only the CLI reports, with fields of its own (the README
// lists them).
const (
	EventSharing  EventKind = "sharing"  // a share's files are hashed
	EventPage     EventKind = "page"     // the address of the browser page
	EventManifest EventKind = "manifest" // what the share holds, on a receive
	EventPeers    EventKind = "peers"    // the listing of `lanft peers`
)

// Event is something a user may want to see. The CLI's --json output
// prints it as it is, every field present whatever the kind (README: "JSON
// events").
type Event struct {
	// Kind is what happened, the "event" field.
	Kind EventKind `json:"event"`
	Peer string    `json:"peer"`
	Host string    `json:"host"`
	File string    `json:"file"`
	// Done and Size are the bytes of the whole transfer done so far and in
	// all; bytes the receiver already had count as done.
	Done int64 `json:"done"`
	Size int64 `json:"total"`
	// Transferred is what this connection moved (Done less what the
	// receiver already had).
	Transferred int64 `json:"transferred"`
	// Path is how the bytes move, on "peer", "progress" and "done".
	Path Path `json:"path"`
	// Device and Code identify the remote on "verify" and "ask".
	Device string `json:"device"`
	Code   string `json:"code"`
	Text   string `json:"message"`
}

// dial logs in to the current host as cfg.Name with meta.
func dial(ctx context.Context, cfg *Config, meta Meta) (*signal.Client, string, <-chan struct{}, error) {
	url, stale, err := cfg.Hosts.Host(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return nil, "", nil, err
	}
	ccfg := signal.ClientConfig{URL: url, Name: cfg.Name, Meta: raw, Logger: cfg.Logger, PingInterval: cfg.PingInterval}
	if d, ok := cfg.Hosts.(hostDialer); ok {
		// A LAN's host is reached on the LAN's interface, past a VPN
		// route that captures its address.
		ccfg.NetDialContext = d.DialContext
	}
	c, err := signal.Dial(ctx, ccfg)
	// Our own previous connection may hold the name for a moment after a
	// quick restart: try again briefly before calling the name taken.
	for deadline := time.Now().Add(3 * time.Second); errors.Is(err, signal.ErrNameTaken) && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return nil, url, nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		c, err = signal.Dial(ctx, ccfg)
	}
	if err != nil {
		cfg.Hosts.Lost(url)
		return nil, url, nil, err
	}
	return c, url, stale, nil
}

// peerSet routes signaling messages to the link of their sender.
type peerSet struct {
	mu    sync.Mutex
	peers map[string]*link
}

func newPeerSet() *peerSet { return &peerSet{peers: make(map[string]*link)} }

func (s *peerSet) get(name string) *link {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers[name]
}

// put registers p for name and returns the peer it replaces, if any.
func (s *peerSet) put(name string, p *link) *link {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.peers[name]
	s.peers[name] = p
	return old
}

// remove forgets name if it still maps to p.
func (s *peerSet) remove(name string, p *link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peers[name] == p {
		delete(s.peers, name)
	}
}

// rtcSignal converts a relayed message into an rtc.Signal.
func rtcSignal(m signal.Message) (rtc.Signal, bool) {
	switch m.Type {
	case signal.TypeOffer:
		return rtc.Signal{Kind: rtc.KindOffer, Payload: m.Offer}, true
	case signal.TypeAnswer:
		return rtc.Signal{Kind: rtc.KindAnswer, Payload: m.Answer}, true
	case signal.TypeCandidate:
		return rtc.Signal{Kind: rtc.KindCandidate, Payload: m.Candidate}, true
	}
	return rtc.Signal{}, false
}

// ListPeers logs in, returns who is online (without this node) and logs out.
func ListPeers(ctx context.Context, cfg Config) ([]Peer, string, error) {
	if err := cfg.defaults(); err != nil {
		return nil, "", err
	}
	c, url, _, err := dial(ctx, &cfg, Meta{V: MetaVersion, Role: RoleWatch, Proof: identity.ProofVersion})
	if err != nil {
		return nil, url, err
	}
	defer c.Close()
	var out []Peer
	for _, p := range peersFrom(c.Peers()) {
		if p.Name != cfg.Name {
			out = append(out, p)
		}
	}
	return out, url, nil
}
