package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/lanft/lanft/signal"
)

// slowFirstLogin is how long a first login may take before the user is
// told that no host was found yet.
const slowFirstLogin = 8 * time.Second

// session keeps a node logged in at the signaling host, logging in again
// (at the same host, or the newly elected one) whenever the connection ends.
type session struct {
	cfg     *Config
	meta    Meta
	current atomic.Pointer[signal.Client]
	changed chan struct{} // the user list changed or a new login happened
}

func newSession(cfg *Config, meta Meta) *session {
	return &session{cfg: cfg, meta: meta, changed: make(chan struct{}, 1)}
}

// client is the live connection, or nil between connections.
func (s *session) client() *signal.Client { return s.current.Load() }

func (s *session) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// run stays online until ctx ends (then it returns nil), calling handle for
// every relayed message. The outcome of the first login is sent on first
// when it is not nil; a first login that fails for good (a refused name, an
// unreachable fixed URL) is returned.
func (s *session) run(ctx context.Context, first chan<- error, handle func(signal.Message)) error {
	cfg := s.cfg
	isFirst := true
	report := func(err error) {
		if isFirst && first != nil {
			first <- err
		}
		isFirst = false
	}
	backoff := 250 * time.Millisecond
	// A caller waiting for the first login (a receive) hears of a host it
	// cannot reach after this long; a share keeps trying.
	giveUp := time.Now().Add(20 * time.Second)
	// Whoever waits long for a first host is told what is going on.
	slow := time.AfterFunc(slowFirstLogin, func() {
		cfg.Events(Event{Kind: EventInfo, Text: fmt.Sprintf("no signaling host yet after %s; still looking (`lanft doctor` checks what discovery needs)", slowFirstLogin)})
	})
	defer slow.Stop()
	for ctx.Err() == nil {
		c, url, stale, err := dial(ctx, cfg, s.meta)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			_, static := cfg.Hosts.(StaticHost)
			if isFirst && (static || errors.Is(err, signal.ErrLoginRefused) || first != nil && time.Now().After(giveUp)) {
				report(err)
				return err
			}
			cfg.Logger.Warn("node: cannot reach the signaling host; retrying", "url", url, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 250 * time.Millisecond
		slow.Stop()
		s.current.Store(c)
		report(nil)
		s.notify()
		cfg.Events(Event{Kind: EventOnline, Host: url, Peer: cfg.Name})
		err = s.runClient(ctx, c, stale, handle)
		s.current.Store(nil)
		if ctx.Err() != nil {
			break
		}
		cfg.Hosts.Lost(url)
		cfg.Logger.Info("node: signaling host changed or lost; logging in again", "url", url, "err", err)
		cfg.Events(Event{Kind: EventInfo, Host: url, Text: "signaling host lost; transfers already running carry on"})
	}
	report(ctx.Err())
	return nil
}

// runClient runs c and dispatches its messages until ctx ends, the host goes
// stale, or the connection is lost.
func (s *session) runClient(ctx context.Context, c *signal.Client, stale <-chan struct{}, handle func(signal.Message)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	for {
		select {
		case msg := <-c.Messages():
			handle(msg)
		case <-c.Changes():
			s.notify()
		case <-stale:
			cancel()
			<-errc
			return errors.New("node: another signaling host was elected")
		case err := <-errc:
			return err
		}
	}
}
