package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/names"
	"github.com/lanft/lanft/rtc"
	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/transfer"
)

// Errors of Receive that the CLI turns into clear messages.
var (
	ErrNoShare    = errors.New("no share found")
	ErrManyShares = errors.New("several shares are online")
	// ErrNoAnswer: the sharer sent no verified answer in time (it refused
	// and the host dropped the refusal, or the host is interfering).
	ErrNoAnswer = errors.New("no verified answer")
	// ErrConnect: no peer-to-peer connection could be made (ICE found no
	// path, or the peer went away while connecting). Retried.
	ErrConnect = errors.New("no connection")
)

// AnswerWait bounds the wait for a verified answer to an offer.
const AnswerWait = 10 * time.Second

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
	return online(ctx, &cfg, RoleReceive, func(ctx context.Context, sess *session, peers *peerSet) (*transfer.Result, error) {
		return receiveFrom(ctx, &cfg, sess, peers, rc)
	})
}

// receiveFrom finds the share and receives it, retrying as Receive says.
func receiveFrom(ctx context.Context, cfg *Config, sess *session, peers *peerSet, rc ReceiveConfig) (*transfer.Result, error) {
	share, err := findSharer(ctx, cfg, sess, rc.From, rc.Wait)
	if err != nil {
		return nil, err
	}
	sharer := share.Name
	if share.Meta.Proof < identity.ProofVersion {
		return nil, fmt.Errorf("%w: %s announces a share from an older lanft, whose verification code a host in the middle could steer; update lanft on %s",
			identity.ErrOutdated, sharer, sharer)
	}
	// The retry window opens at a failure and opens again after any
	// attempt that moved bytes: a long transfer that drops late still gets
	// its full RetryFor.
	var deadline time.Time
	for attempt := 1; ; attempt++ {
		res, err := receiveOnce(ctx, cfg, sess, peers, share, rc.Transfer)
		if err == nil {
			return res, nil
		}
		if deadline.IsZero() || res != nil && res.Bytes > 0 {
			deadline = time.Now().Add(rc.RetryFor)
		}
		// No path at the first attempt is the networks' verdict (a
		// symmetric NAT without a relay), not a dropped connection.
		noPath := attempt == 1 && (errors.Is(err, rtc.ErrNoPair) || errors.Is(err, ErrNoRelay))
		// After a lost connection, no answer may be the sharer's old
		// session, gone but still listed while it restarts: worth another
		// try until the deadline. At the first attempt it is a verdict.
		again := retryable(err) || attempt > 1 && errors.Is(err, ErrNoAnswer)
		if noPath || !again || ctx.Err() != nil || time.Now().After(deadline) {
			return nil, err
		}
		cfg.Logger.Info("node: transfer interrupted; retrying", "attempt", attempt, "err", err)
		cfg.Events(Event{Kind: EventInfo, Peer: sharer, Text: fmt.Sprintf("%s; trying again", explain(err))})
		// Wait for the sharer to be online again (it may be restarting).
		waitCtx, cancelWait := context.WithDeadline(ctx, deadline)
		_, err = findSharer(waitCtx, nil, sess, sharer, time.Until(deadline))
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

// online logs in as role for a node that offers connections (a receiver,
// a sender) and, once the first login is done, runs f with the session and
// the links it dials. The session runs in a goroutine, routing messages to
// those links, until f returns; online returns f's result once that
// goroutine is done.
func online[T any](ctx context.Context, cfg *Config, role string,
	f func(ctx context.Context, sess *session, peers *peerSet) (T, error)) (T, error) {
	ctx, cancel := context.WithCancel(ctx)
	peers := newPeerSet()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	sess := newSession(cfg, Meta{V: MetaVersion, Role: role, Proof: identity.ProofVersion})
	first := make(chan error, 1)
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
		var none T
		return none, err
	}
	return f(ctx, sess, peers)
}

// retryable reports whether err is a lost connection, the only failure a
// retry can mend. Verdicts (refused, unverified, declined, unsafe, corrupt)
// and local failures (permissions, a file in the way, no space) are final.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	for _, final := range []error{transfer.ErrRemote, identity.ErrUnverified, identity.ErrOutdated, identity.ErrKeyChanged, ErrCode, ErrRefused, ErrNoAnswer} {
		if errors.Is(err, final) {
			return false
		}
	}
	return errors.Is(err, transfer.ErrInterrupted) || errors.Is(err, ErrConnect)
}

// errNoAnswer cancels a dial whose offer got no verified answer in time.
var errNoAnswer = errors.New("no answer")

func receiveOnce(ctx context.Context, cfg *Config, sess *session, peers *peerSet, share Peer,
	opts transfer.ReceiveOptions) (*transfer.Result, error) {
	sharer := share.Name
	l, stream, done, err := dialPeer(ctx, cfg, sess, peers, sharer, false)
	if err != nil {
		return nil, err
	}
	defer done()
	err = l.pin()
	var conn transport
	var path Path
	if err == nil {
		conn, path, err = l.receiveVia(ctx, stream)
	}
	if err != nil {
		l.peer.Close()
		return nil, err
	}
	cfg.Events(Event{Kind: EventPeer, Peer: sharer, Path: path, Text: "connected"})
	if share.Meta != nil && share.Meta.Ask {
		device, code, first := l.verification()
		text := fmt.Sprintf("waiting for %s to accept", sharer) + compareCode(sharer, code, first)
		cfg.Events(Event{Kind: EventAsk, Peer: sharer, Device: device, Code: code, Text: text})
	}
	if opts.Progress == nil {
		opts.Progress = func(pr transfer.Progress) {
			cfg.Events(Event{Kind: EventProgress, Peer: sharer, File: pr.File, Done: pr.Done, Size: pr.Total, Transferred: pr.Done - pr.Skipped, Path: path})
		}
	}
	res, err := transfer.Receive(ctx, conn, bindManifest(conn, opts))
	// The sharer closes once it has read our final OK or ERROR.
	_ = conn.Linger(2 * time.Second)
	if c := sess.client(); c != nil {
		_ = c.Send(signal.Message{Type: signal.TypeLeave, OtherName: sharer})
	}
	if errors.Is(err, transfer.ErrRemote) && errors.Is(err, transfer.ErrRejected) {
		err = fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return res, err
}

// dialPeer offers remote a connection, as a receiver (or a sender, with
// push) does, and returns the link once its data channel is verified and
// the preamble done. done forgets the link; on an error the link is
// closed and forgotten.
func dialPeer(ctx context.Context, cfg *Config, sess *session, peers *peerSet, remote string, push bool) (
	l *link, stream *rtc.Stream, done func(), err error) {
	l, err = newLink(ctx, cfg, remote, sess.client)
	if err != nil {
		return nil, nil, nil, err
	}
	l.push = push
	if old := peers.put(remote, l); old != nil {
		old.peer.Close()
	}
	done = func() { peers.remove(remote, l) }
	connectCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	connectTimer := time.AfterFunc(30*time.Second, func() { cancel(context.DeadlineExceeded) })
	defer connectTimer.Stop()
	answerTimer := time.AfterFunc(AnswerWait, func() {
		select {
		case <-l.answered:
		default:
			cancel(errNoAnswer)
		}
	})
	defer answerTimer.Stop()
	stream, err = l.peer.Dial(connectCtx)
	switch verr, cause := l.err(), context.Cause(connectCtx); {
	case verr != nil:
		err = verr
	case err == nil:
	case ctx.Err() != nil:
		err = ctx.Err()
	case errors.Is(cause, errNoAnswer):
		err = fmt.Errorf("%w from %s within %s: it may have refused this connection, or the signaling host may be interfering",
			ErrNoAnswer, remote, AnswerWait)
	case errors.Is(cause, context.DeadlineExceeded):
		err = fmt.Errorf("%w to %s within 30s: no network path between the two machines (a firewall, or different networks)", ErrConnect, remote)
	case errors.Is(err, rtc.ErrNoPair):
		err = fmt.Errorf("%w to %s: %w", ErrConnect, remote, err)
	default:
		err = fmt.Errorf("%w to %s: the connection failed while it was being set up", ErrConnect, remote)
	}
	if err == nil {
		err = l.secure(ctx, stream, true)
	}
	if err != nil {
		l.peer.Close()
		done()
		return nil, nil, nil, err
	}
	return l, stream, done, nil
}

// findSharer waits up to wait for the share named from (or the only share)
// to be online. Names compare as the host compares them (--from Alice finds
// "alice"). With cfg set, a user who is online but not sharing fails at
// once, and the user hears what it waits for.
func findSharer(ctx context.Context, cfg *Config, sess *session, from string, wait time.Duration) (Peer, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	told := false
	for {
		var shares []Peer
		var online []string
		var named *Peer
		if c := sess.client(); c != nil {
			for _, p := range peersFrom(c.Peers()) {
				if p.Name == c.Name() {
					continue
				}
				online = append(online, p.Name)
				if from != "" && names.Same(p.Name, from) {
					named = &p
				}
				if p.Sharing() {
					shares = append(shares, p)
				}
			}
		}
		switch {
		case named != nil && named.Sharing():
			return *named, nil
		case named != nil && cfg != nil:
			return Peer{}, fmt.Errorf("%w: %s is online but not sharing (online shares: %s)", ErrNoShare, named.Name, listOrNone(peerNames(shares)))
		case from == "" && len(shares) == 1:
			return shares[0], nil
		case from == "" && len(shares) > 1:
			return Peer{}, fmt.Errorf("%w: %s; pick one with --from", ErrManyShares, strings.Join(peerNames(shares), ", "))
		}
		if cfg != nil && !told && sess.client() != nil {
			told = true
			what := "a share"
			if from != "" {
				what = fmt.Sprintf("%q", from)
			}
			cfg.Events(Event{Kind: EventInfo, Text: fmt.Sprintf("waiting up to %s for %s to come online (online now: %s)", wait, what, listOrNone(online))})
		}
		select {
		case <-sess.changed:
		case <-timer.C:
			if from != "" {
				return Peer{}, fmt.Errorf("%w: nobody named %q came online within %s (online shares: %s)", ErrNoShare, from, wait, listOrNone(peerNames(shares)))
			}
			return Peer{}, fmt.Errorf("%w within %s (online: %s)", ErrNoShare, wait, listOrNone(online))
		case <-ctx.Done():
			return Peer{}, ctx.Err()
		}
	}
}

func peerNames(ps []Peer) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
