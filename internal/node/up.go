package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/rtc"
	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/transfer"
)

// The kinds only lanft up reports.
const (
	EventPush EventKind = "push" // a send was offered: who, what, and the decision
	EventText EventKind = "text" // a text arrived; Text holds it in full
)

// maxPushes bounds the sends lanft up handles at once; more are answered
// busy.
const maxPushes = 16

// UpConfig says where lanft up saves what it is sent, and how it decides.
type UpConfig struct {
	// Dir is the folder sends are saved into; it must exist.
	Dir string
	// Names is transfer.ReceiveOptions.Names.
	Names transfer.NameRule
	// Decide is asked about each send from a device that is not trusted;
	// nil declines them all. It may be called from several goroutines.
	Decide func(ctx context.Context, r PushRequest) Decision
	// OnlyTrusted refuses every device that is not trusted, unasked.
	OnlyTrusted bool
	// Received is told about every accepted send once it ended, done or
	// failed. It may be called from several goroutines.
	Received func(Received)
}

// PushRequest is a send offered to lanft up by a verified device.
type PushRequest struct {
	Request
	Offer PushOffer
}

// Decision is what Decide settled.
type Decision struct {
	Accept   bool
	TimedOut bool // nobody answered in time (declined)
}

// Received is one accepted send, as the history keeps it.
type Received struct {
	Peer, Device string
	Trusted      bool
	Offer        PushOffer
	// Manifest and Result are the files' (nil for a text or a transfer
	// that failed before its manifest).
	Manifest *transfer.Manifest
	Result   *transfer.Result
	Path     Path
	Err      error
}

// Up keeps cfg.Name logged in as a device that takes sends (Meta.Push)
// until ctx is cancelled (it then returns nil), and takes each send that
// is offered: trusted devices' at once, others' when Decide accepts.
// Several sends run at once. A lost host is re-dialled or replaced as for
// a share.
func Up(ctx context.Context, cfg Config, uc UpConfig) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	meta := Meta{V: MetaVersion, Role: RoleUp, Push: true, Proof: identity.ProofVersion}
	u := &upNode{cfg: &cfg, uc: &uc, locks: newNameLocks()}
	peers := newPeerSet()
	contacts := newContactLimiter()
	var wg sync.WaitGroup
	defer wg.Wait()
	sess := newSession(&cfg, meta)
	return sess.run(ctx, nil, func(msg signal.Message) {
		handleShareMessage(ctx, &cfg, func(l *link) { u.take(ctx, l) }, peers, contacts, &wg, sess.client, msg)
	})
}

type upNode struct {
	cfg     *Config
	uc      *UpConfig
	locks   *nameLocks
	running atomic.Int32
}

// take runs one connection offered to lanft up.
func (u *upNode) take(ctx context.Context, l *link) {
	cfg, who := u.cfg, l.remote
	connectCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	stream, err := l.peer.Accept(connectCtx)
	cancel()
	if err == nil {
		err = l.secure(ctx, stream, false)
	}
	if err != nil {
		l.peer.Close()
		if verr := l.err(); verr != nil {
			err = verr
		}
		cfg.Events(Event{Kind: EventError, Peer: who, Text: "connect: " + explain(err)})
		return
	}
	defer l.peer.Close()
	defer stream.Close()
	if !l.remotePushes() {
		_ = transfer.Decline(stream, fmt.Sprintf("%s takes sends (lanft up) and shares nothing", cfg.Name))
		_ = stream.Linger(2 * time.Second)
		return
	}
	offer, err := readPush(ctx, stream)
	if err != nil {
		cfg.Events(Event{Kind: EventError, Peer: who, Text: err.Error()})
		return
	}
	if u.running.Add(1) > maxPushes {
		u.running.Add(-1)
		cfg.Events(Event{Kind: EventRefused, Peer: who, Text: "busy: too many sends at once"})
		_ = answerPush(stream, PushAnswer{Reason: ReasonBusy, Message: fmt.Sprintf("%s is taking %d sends already; try again in a moment", cfg.Name, maxPushes)})
		_ = stream.Linger(2 * time.Second)
		return
	}
	defer u.running.Add(-1)

	device, code, first := l.verification()
	l.mu.Lock()
	key := l.remoteKey
	l.mu.Unlock()
	trusted := !first && cfg.Pins != nil && cfg.Pins.Trusted(who, key)
	req := PushRequest{Request: Request{Peer: who, Device: device, Code: code, First: first}, Offer: offer}
	// A sender that goes away while its send is asked about takes the
	// question with it.
	askCtx, stopAsk := context.WithCancel(ctx)
	go func() {
		select {
		case <-l.peer.Done():
			stopAsk()
		case <-askCtx.Done():
		}
	}()
	ans := u.decide(askCtx, req, trusted)
	gone := askCtx.Err() != nil && ctx.Err() == nil
	stopAsk()
	if gone {
		cfg.Events(Event{Kind: EventInfo, Peer: who, Text: fmt.Sprintf("%s went away before its send was answered", transfer.DisplayName(who))})
		return
	}
	if ans.Accept {
		if err := l.pin(); err != nil {
			ans = PushAnswer{Reason: ReasonRefused, Message: fmt.Sprintf("%s could not record the device: %v", cfg.Name, err)}
		}
	}
	if err := answerPush(stream, ans); err != nil {
		cfg.Events(Event{Kind: EventError, Peer: who, Text: explain(err)})
		return
	}
	if !ans.Accept {
		cfg.Events(Event{Kind: EventRefused, Peer: who, Device: device, Code: code, Text: ans.Reason})
		_ = stream.Linger(2 * time.Second)
		return
	}
	rec := Received{Peer: who, Device: device, Trusted: trusted, Offer: offer}
	if offer.IsText() {
		u.received(rec) // in the history before anyone is told
		cfg.Events(Event{Kind: EventText, Peer: who, Device: device, Text: offer.Text})
		_ = stream.Linger(2 * time.Second)
		return
	}
	u.receive(ctx, l, stream, &rec)
}

// decide is the one place lanft up settles a send: trusted devices at
// once, others refused with OnlyTrusted, else asked.
func (u *upNode) decide(ctx context.Context, r PushRequest, trusted bool) PushAnswer {
	me, who := u.cfg.Name, r.Peer
	what := r.Offer.Describe()
	switch {
	case trusted:
		u.cfg.Events(Event{Kind: EventPush, Peer: who, Device: r.Device, Code: r.Code, Text: fmt.Sprintf(
			"%s (device %s, trusted) sends %s: accepted", transfer.DisplayName(who), r.Device, what)})
		return PushAnswer{Accept: true}
	case u.uc.OnlyTrusted:
		return PushAnswer{Reason: ReasonRefused, Message: fmt.Sprintf(
			"%s takes sends only from devices it trusts; its owner can trust %s with `lanft trust %s` after a first contact", me, who, who)}
	case u.uc.Decide == nil:
		return PushAnswer{Reason: ReasonDeclined, Message: fmt.Sprintf("%s declined", me)}
	}
	d := u.uc.Decide(ctx, r)
	switch {
	case d.Accept:
		return PushAnswer{Accept: true}
	case d.TimedOut:
		return PushAnswer{Reason: ReasonTimeout, Message: fmt.Sprintf("nobody answered on %s in time", me)}
	}
	return PushAnswer{Reason: ReasonDeclined, Message: fmt.Sprintf("%s declined", me)}
}

// receive takes the accepted files: the path with lanft up in the
// receiver's place, then transfer.Receive into Dir.
// It tells Received once, as soon as the outcome is known: before the
// linger and the done event, so that the history has the send when the
// sender is told.
func (u *upNode) receive(ctx context.Context, l *link, stream *rtc.Stream, rec *Received) {
	cfg, who := u.cfg, l.remote
	recorded := false
	record := func() {
		if !recorded {
			recorded = true
			u.received(*rec)
		}
	}
	defer record()
	conn, path, err := l.receiveVia(ctx, stream)
	if err != nil {
		rec.Err = err
		cfg.Events(Event{Kind: EventError, Peer: who, Text: "connect: " + explain(err)})
		return
	}
	rec.Path = path
	cfg.Events(Event{Kind: EventPeer, Peer: who, Path: path, Text: "connected"})
	var release func()
	defer func() {
		if release != nil {
			release()
		}
	}()
	start := time.Now()
	res, err := transfer.Receive(ctx, conn, bindManifest(conn, transfer.ReceiveOptions{
		Dir:    u.uc.Dir,
		Names:  u.uc.Names,
		Logger: cfg.Logger.With("peer", who),
		Accept: func(ctx context.Context, m *transfer.Manifest) error {
			if m.Files() != rec.Offer.Files || m.TotalSize() != rec.Offer.Bytes {
				return fmt.Errorf("the files (%d, %s) are not those offered (%d, %s)",
					m.Files(), transfer.FormatSize(m.TotalSize()), rec.Offer.Files, transfer.FormatSize(rec.Offer.Bytes))
			}
			rec.Manifest = m
			var err error
			release, err = u.locks.acquire(ctx, topNames(m))
			return err
		},
		Progress: func(pr transfer.Progress) {
			cfg.Events(Event{Kind: EventProgress, Peer: who, File: pr.File, Done: pr.Done, Size: pr.Total, Transferred: pr.Done - pr.Skipped, Path: path})
		},
	}))
	rec.Result, rec.Err = res, err
	record()
	_ = conn.Linger(2 * time.Second)
	if err != nil {
		cfg.Events(Event{Kind: EventError, Peer: who, Path: path, Text: explain(err)})
		return
	}
	took := time.Since(start)
	cfg.Events(Event{Kind: EventDone, Peer: who, Done: res.Bytes + res.Skipped, Size: res.Bytes + res.Skipped, Transferred: res.Bytes, Path: path,
		Text: tookText(res.Bytes, took)})
}

func (u *upNode) received(r Received) {
	if u.uc.Received != nil {
		u.uc.Received(r)
	}
}

// topNames are the top-level names of m's entries.
func topNames(m *transfer.Manifest) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range m.Entries {
		top, _, _ := strings.Cut(e.Path, "/")
		if !seen[top] {
			seen[top] = true
			out = append(out, top)
		}
	}
	return out
}

// nameLocks keeps two sends that carry the same top-level name from
// writing at once into one folder (their .part files would meet): the
// second waits, then finds the first's file and is saved beside it.
type nameLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

func newNameLocks() *nameLocks { return &nameLocks{held: map[string]chan struct{}{}} }

// acquire waits until none of names is held, holds them all, and returns
// the func that lets them go.
func (n *nameLocks) acquire(ctx context.Context, names []string) (func(), error) {
	keys := make([]string, len(names))
	for i, s := range names {
		keys[i] = strings.ToLower(s) // case-insensitive file systems
	}
	for {
		n.mu.Lock()
		var busy chan struct{}
		for _, k := range keys {
			if ch, ok := n.held[k]; ok {
				busy = ch
				break
			}
		}
		if busy == nil {
			done := make(chan struct{})
			for _, k := range keys {
				n.held[k] = done
			}
			n.mu.Unlock()
			return func() {
				n.mu.Lock()
				for _, k := range keys {
					if n.held[k] == done {
						delete(n.held, k)
					}
				}
				n.mu.Unlock()
				close(done)
			}, nil
		}
		n.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
