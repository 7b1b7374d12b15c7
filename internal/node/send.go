package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/names"
	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/transfer"
)

// SendConfig says what to send to whom.
type SendConfig struct {
	// To is the target's name (as names.Same compares names).
	To string
	// Wait is how long to wait for the target to come online (10s).
	Wait time.Duration
	// Source holds the files; nil for a text.
	Source *transfer.Source
	// Text is a text to send (at most MaxPushText bytes) when Source is nil.
	Text string
	// AnswerWait bounds the wait for the target's decision (PushAnswerWait).
	AnswerWait time.Duration
}

// SendResult is a send that was accepted and completed.
type SendResult struct {
	Peer, Device string
	Path         Path
	// Bytes moved, and the bytes in all (the target may have had some).
	Bytes, Total int64
}

// Send logs in, finds the device named sc.To among those that take sends
// (lanft up, pages), offers it the files or the text and, once accepted,
// sends them. Each way it can fail has its error: ErrNotOnline,
// ErrDeclined, ErrTimedOut, ErrBusy, ErrPushRefused.
func Send(ctx context.Context, cfg Config, sc SendConfig) (*SendResult, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if sc.Wait == 0 {
		sc.Wait = 10 * time.Second
	}
	if sc.AnswerWait == 0 {
		sc.AnswerWait = PushAnswerWait
	}
	offer := PushOffer{Text: sc.Text}
	if sc.Source != nil {
		m := sc.Source.Manifest()
		offer = PushOffer{Files: m.Files(), Bytes: m.TotalSize(), Title: title(m),
			Stream: slices.ContainsFunc(m.Entries, func(e transfer.Entry) bool { return e.Kind == transfer.KindStream })}
	}
	if err := offer.check(); err != nil {
		return nil, fmt.Errorf("node: cannot send %w", err)
	}
	return online(ctx, &cfg, RoleSend, func(ctx context.Context, sess *session, peers *peerSet) (*SendResult, error) {
		target, err := findTarget(ctx, &cfg, sess, sc.To, sc.Wait)
		if err != nil {
			return nil, err
		}
		if offer.Stream && target.Meta.Role != RoleUp {
			// A page takes files of known size only (web/static/push.js).
			return nil, fmt.Errorf("node: %s is a page, which does not take standard input (a stream of unknown size): save it to a file and send that",
				target.Name)
		}
		// A connection that ended before the target's preamble (dialPeer:
		// nothing was offered, so nothing can arrive twice) is dialed again.
		res, err := sendOnce(ctx, &cfg, sess, peers, target.Name, offer, sc)
		for attempt := 1; attempt < sendAttempts && errors.As(err, new(noPreamble)) && ctx.Err() == nil; attempt++ {
			cfg.Logger.Info("node: connection lost before the offer; dialing again", "attempt", attempt, "err", err)
			cfg.Events(Event{Kind: EventInfo, Peer: target.Name, Text: fmt.Sprintf("%s; trying again", explain(err))})
			res, err = sendOnce(ctx, &cfg, sess, peers, target.Name, offer, sc)
		}
		if c := sess.client(); c != nil {
			_ = c.Send(signal.Message{Type: signal.TypeLeave, OtherName: target.Name})
		}
		return res, err
	})
}

func sendOnce(ctx context.Context, cfg *Config, sess *session, peers *peerSet, to string, offer PushOffer, sc SendConfig) (*SendResult, error) {
	l, stream, done, err := dialPeer(ctx, cfg, sess, peers, to, true)
	if err != nil {
		return nil, refusedSend(err)
	}
	defer done()
	defer l.peer.Close()
	if err := l.pin(); err != nil {
		return nil, refusedSend(err)
	}
	device, code, first := l.verification()
	text := fmt.Sprintf("offering %s to %s", offer.Describe(), to) + compareCode(to, code, first)
	cfg.Events(Event{Kind: EventAsk, Peer: to, Device: device, Code: code, Text: text})
	ans, err := offerPush(ctx, stream, offer, sc.AnswerWait)
	if err == nil {
		err = ans.err(to)
	}
	if err != nil {
		stream.Close()
		return nil, err
	}
	res := &SendResult{Peer: to, Device: device}
	if offer.IsText() {
		stream.Close()
		return res, nil
	}
	conn, path, err := l.shareVia(ctx, stream, sc.Source)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	res.Path = path
	cfg.Events(Event{Kind: EventPeer, Peer: to, Path: path, Text: "connected"})
	var last transfer.Progress
	err = serveOver(ctx, conn, sc.Source, transfer.SendOptions{
		Logger: cfg.Logger.With("peer", to),
		Progress: func(pr transfer.Progress) {
			last = pr
			cfg.Events(Event{Kind: EventProgress, Peer: to, File: pr.File, Done: pr.Done, Size: pr.Total, Transferred: pr.Done - pr.Skipped, Path: path})
		},
	})
	if err != nil {
		return nil, err
	}
	res.Bytes, res.Total = last.Done-last.Skipped, sc.Source.Manifest().TotalSize()
	if offer.Stream {
		res.Total = res.Bytes
	}
	return res, nil
}

// sendAttempts is how many connections a send dials when each ends
// before the target's preamble.
const sendAttempts = 3

// refusedSend is a refusal of the connection itself (a signed refusal
// from the target: it knows this name from another device; or the
// target's own key changed) as a send's ErrPushRefused.
func refusedSend(err error) error {
	switch {
	case errors.Is(err, ErrRefused):
		return fmt.Errorf("%w: %s", ErrPushRefused, strings.TrimPrefix(err.Error(), ErrRefused.Error()+": "))
	case errors.Is(err, identity.ErrKeyChanged):
		return fmt.Errorf("%w: %w", ErrPushRefused, err)
	}
	return err
}

// findTarget waits up to wait for the device named to (as names.Same
// compares names) to be online and take sends.
func findTarget(ctx context.Context, cfg *Config, sess *session, to string, wait time.Duration) (Peer, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	told := false
	for {
		var takers []string
		var named *Peer
		if c := sess.client(); c != nil {
			for _, p := range peersFrom(c.Peers()) {
				if p.Name == c.Name() {
					continue
				}
				if p.TakesSends() {
					takers = append(takers, p.Name)
				}
				if names.Same(p.Name, to) {
					named = &p
				}
			}
		}
		switch {
		case named != nil && named.TakesSends() && named.Meta.Proof < identity.ProofVersion:
			return Peer{}, fmt.Errorf("%w: %s runs an older lanft, whose verification code a host in the middle could steer; update lanft on %s",
				identity.ErrOutdated, named.Name, named.Name)
		case named != nil && named.TakesSends():
			return *named, nil
		case named != nil:
			return Peer{}, fmt.Errorf("%w: %s is online but does not take sends (it must run `lanft up`, or be a lanft page); devices that do: %s",
				ErrNotOnline, named.Name, listOrNone(takers))
		}
		if !told && sess.client() != nil {
			told = true
			cfg.Events(Event{Kind: EventInfo, Text: fmt.Sprintf("waiting up to %s for %q to come online (devices that take sends: %s)", wait, to, listOrNone(takers))})
		}
		select {
		case <-sess.changed:
		case <-timer.C:
			return Peer{}, fmt.Errorf("%w: no device named %q came online within %s (devices that take sends: %s)", ErrNotOnline, to, wait, listOrNone(takers))
		case <-ctx.Done():
			return Peer{}, ctx.Err()
		}
	}
}
