package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/transfer"
)

// Errors of Receive that the CLI turns into clear messages.
var (
	ErrNoShare    = errors.New("no share found")
	ErrManyShares = errors.New("several shares are online")
)

// ReceiveConfig says what to receive and where.
type ReceiveConfig struct {
	// From is the sharer's name; empty picks the only share online.
	From string
	// Wait is how long to wait for a share to appear (15s).
	Wait time.Duration
	// RetryFor is how long a dropped connection is retried before giving up (60s).
	RetryFor time.Duration
	// Transfer receives the files. Its Accept is asked once, however often
	// the connection is retried.
	Transfer transfer.ReceiveOptions
}

// Receive logs in, finds the share, connects to the sharer and receives
// its files. A dropped connection is retried (the transfer resumes from the
// .part files) while the sharer is still online, for up to RetryFor.
func Receive(ctx context.Context, cfg Config, rc ReceiveConfig) (*transfer.Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if rc.Wait == 0 {
		rc.Wait = 15 * time.Second
	}
	if rc.RetryFor == 0 {
		rc.RetryFor = 60 * time.Second
	}
	accept := rc.Transfer.Accept
	var acceptOnce sync.Once
	var acceptErr error
	rc.Transfer.Accept = func(ctx context.Context, m *transfer.Manifest) error {
		acceptOnce.Do(func() {
			if accept != nil {
				acceptErr = accept(ctx, m)
			}
		})
		return acceptErr
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sess := newSession(&cfg, Meta{V: MetaVersion, Role: RoleReceive})
	peers := newPeerSet()
	first := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		_ = sess.run(ctx, first, func(msg signal.Message) {
			if l := peers.get(msg.Name); l != nil {
				l.handle(msg)
			} else if msg.Type == signal.TypeError {
				cfg.Logger.Warn("node: signaling host reports an error", "message", msg.Message)
			}
		})
	})
	if err := <-first; err != nil {
		return nil, err
	}

	sharer, err := findSharer(ctx, sess, rc.From, rc.Wait)
	if err != nil {
		return nil, err
	}
	// The retry window opens at a failure and opens again after any
	// attempt that moved bytes: a long transfer that drops late still gets
	// its full RetryFor.
	var deadline time.Time
	for attempt := 1; ; attempt++ {
		res, err := receiveOnce(ctx, &cfg, sess, peers, sharer, rc.Transfer)
		if err == nil {
			return res, nil
		}
		if deadline.IsZero() || res != nil && res.Bytes > 0 {
			deadline = time.Now().Add(rc.RetryFor)
		}
		if !retryable(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return nil, err
		}
		cfg.Logger.Info("node: transfer interrupted; retrying", "attempt", attempt, "err", err)
		cfg.Events(Event{Kind: "info", Peer: sharer, Text: fmt.Sprintf("connection lost (%v); resuming", err)})
		// Wait for the sharer to be online again (it may be restarting).
		waitCtx, cancelWait := context.WithDeadline(ctx, deadline)
		_, err = findSharer(waitCtx, sess, sharer, time.Until(deadline))
		cancelWait()
		if err != nil {
			return nil, fmt.Errorf("node: %s did not come back: %w", sharer, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(time.Duration(attempt)*250*time.Millisecond, 2*time.Second)):
		}
	}
}

// retryable reports whether err is a lost connection rather than a
// verdict (refused, unsafe, corrupt, no space) that a retry cannot change.
func retryable(err error) bool {
	for _, final := range []error{
		transfer.ErrRejected, transfer.ErrUnsafeName, transfer.ErrIntegrity,
		transfer.ErrNoSpace, transfer.ErrProtocol, transfer.ErrConflict,
		transfer.ErrSourceChanged, transfer.ErrRemote, context.Canceled,
		identity.ErrUnverified, identity.ErrKeyChanged, ErrCode,
	} {
		if errors.Is(err, final) {
			return false
		}
	}
	return true
}

func receiveOnce(ctx context.Context, cfg *Config, sess *session, peers *peerSet, sharer string,
	opts transfer.ReceiveOptions) (*transfer.Result, error) {
	l, err := newLink(cfg, sharer, sess.client)
	if err != nil {
		return nil, err
	}
	if old := peers.put(sharer, l); old != nil {
		old.peer.Close()
	}
	defer peers.remove(sharer, l)
	connectCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	stream, err := l.peer.Dial(connectCtx)
	cancel()
	if verr := l.err(); verr != nil {
		err = verr
	}
	if err == nil {
		err = l.secure(ctx, stream, true)
	}
	var conn transport
	var path Path
	if err == nil {
		conn, path, err = l.receivePath(ctx, stream)
	}
	if err != nil {
		l.peer.Close()
		return nil, fmt.Errorf("connect to %s: %w", sharer, err)
	}
	cfg.Events(Event{Kind: "peer", Peer: sharer, Text: "connected via " + path.Describe(), Path: path})
	if opts.Progress == nil {
		opts.Progress = func(pr transfer.Progress) {
			cfg.Events(Event{Kind: "progress", Peer: sharer, File: pr.File, Done: pr.Done, Size: pr.Total, Path: path})
		}
	}
	res, err := transfer.Receive(ctx, conn, opts)
	// The sharer closes once it has read our final OK or ERROR.
	_ = conn.Linger(2 * time.Second)
	if c := sess.client(); c != nil {
		_ = c.Send(signal.Message{Type: signal.TypeLeave, OtherName: sharer})
	}
	return res, err
}

// findSharer waits up to wait for the share named from (or the only share)
// to be online.
func findSharer(ctx context.Context, sess *session, from string, wait time.Duration) (string, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		var shares []string
		if c := sess.client(); c != nil {
			for _, p := range peersFrom(c.Peers()) {
				if p.Name != c.Name() && p.Sharing() {
					shares = append(shares, p.Name)
				}
			}
		}
		switch {
		case from != "" && slices.Contains(shares, from):
			return from, nil
		case from == "" && len(shares) == 1:
			return shares[0], nil
		case from == "" && len(shares) > 1:
			return "", fmt.Errorf("%w: %s; pick one with --from", ErrManyShares, strings.Join(shares, ", "))
		}
		select {
		case <-sess.changed:
		case <-timer.C:
			if from != "" {
				return "", fmt.Errorf("%w: %q is not sharing (online shares: %s)", ErrNoShare, from, listOrNone(shares))
			}
			return "", fmt.Errorf("%w within %s", ErrNoShare, wait)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
