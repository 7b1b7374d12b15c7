package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/names"
	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/transfer"
)

// Share keeps cfg.Name logged in at the signaling host, announcing src,
// and serves src to every receiver that offers a connection, several at
// once, until ctx is cancelled (it then returns nil). A lost host is
// re-dialled (or, with discovery, replaced) while transfers already
// running carry on peer to peer. Only a failure to log in the very first
// time is returned as an error.
func Share(ctx context.Context, cfg Config, src *transfer.Source) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	m := src.Manifest()
	meta := Meta{V: MetaVersion, Role: RoleShare, Files: m.Files(), Bytes: m.TotalSize(), Title: title(m), Ask: cfg.Ask != nil,
		Proof: identity.ProofVersion}

	peers := newPeerSet()
	contacts := newContactLimiter()
	var wg sync.WaitGroup
	defer wg.Wait()
	sess := newSession(&cfg, meta)
	return sess.run(ctx, nil, func(msg signal.Message) {
		handleShareMessage(ctx, &cfg, func(l *link) { serve(ctx, &cfg, src, l) }, peers, contacts, &wg, sess.client, msg)
	})
}

// handleShareMessage answers offers as a sharer does (lanft share, lanft
// up): a verified offer gets a link that serveLink runs in a goroutine.
func handleShareMessage(ctx context.Context, cfg *Config, serveLink func(*link), peers *peerSet,
	contacts *contactLimiter, wg *sync.WaitGroup, current func() *signal.Client, msg signal.Message) {
	log := cfg.Logger
	switch msg.Type {
	case signal.TypeOffer:
		l, err := newLink(ctx, cfg, msg.Name, current)
		if err != nil {
			log.Error("node: new peer", "peer", msg.Name, "err", err)
			cfg.Events(Event{Kind: EventError, Peer: msg.Name, Text: err.Error()})
			return
		}
		if old := peers.put(msg.Name, l); old != nil {
			old.peer.Close() // the receiver started over
		}
		l.contacts = contacts
		l.handle(msg)
		if err := l.err(); err != nil {
			peers.remove(msg.Name, l)
			cfg.Events(Event{Kind: EventRefused, Peer: msg.Name, Text: err.Error()})
			l.refuse(msg.Offer, refusalReason(cfg.Name, msg.Name, "offer", err))
			return
		}
		if !allowed(cfg.To, msg.Name) {
			peers.remove(msg.Name, l)
			l.peer.Close()
			cfg.Events(Event{Kind: EventRefused, Peer: msg.Name, Text: "not one of the receivers named with --to"})
			l.refuse(msg.Offer, fmt.Sprintf("%s shares only with the receivers it named (--to)", cfg.Name))
			return
		}
		wg.Go(func() {
			defer peers.remove(msg.Name, l)
			serveLink(l)
		})
	case signal.TypeError:
		log.Debug("node: signaling host reports an error", "message", msg.Message)
	default:
		if l := peers.get(msg.Name); l != nil {
			l.handle(msg)
		}
	}
}

// refusalReason is what one end tells the other whose offer (or answer,
// what) it could not verify: words the other can act on, and nothing the
// host could use.
func refusalReason(me, them, what string, err error) string {
	if errors.Is(err, identity.ErrOutdated) {
		return fmt.Sprintf("%s runs a newer lanft, whose verification code a host in the middle cannot steer, and no longer accepts older ones: update lanft on %s",
			me, them)
	}
	if errors.Is(err, ErrTooManyFirstContacts) {
		return fmt.Sprintf("%s has answered too many first contacts in the last minute (someone may be trying to steer the verification code): try again in a minute", me)
	}
	if errors.Is(err, identity.ErrKeyChanged) {
		return fmt.Sprintf("%s knows the name %s from another device; if this one is a new install, %s must run with --accept-new-key",
			me, them, me)
	}
	return fmt.Sprintf("%s could not verify the %s", me, what)
}

// allowed reports whether name may receive under --to (names compare as
// the signaling host compares them).
func allowed(to []string, name string) bool {
	return len(to) == 0 || slices.ContainsFunc(to, func(n string) bool { return names.Same(n, name) })
}

func serve(ctx context.Context, cfg *Config, src *transfer.Source, l *link) {
	who := l.remote
	connectCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	stream, err := l.peer.Accept(connectCtx)
	cancel()
	if err == nil {
		err = l.secure(ctx, stream, false)
	}
	var conn transport
	var path Path
	var origin string
	page := err == nil && l.pathPlan().page
	switch {
	case page:
		// A page learns its HTTP capability only once it may have the
		// files (--ask): until then the data channel is its transport.
		origin, err = l.readPageHello(ctx, stream)
		conn, path = stream, l.pathPlan().taken(false)
	case err == nil:
		conn, path, err = l.sharePath(ctx, stream)
	}
	if err != nil {
		l.peer.Close()
		cfg.Logger.Debug("node: connection to receiver failed", "peer", who, "err", err)
		if verr := l.err(); verr != nil {
			// The receiver refused our answer and said why.
			cfg.Events(Event{Kind: EventError, Peer: who, Text: verr.Error()})
			return
		}
		cfg.Events(Event{Kind: EventError, Peer: who, Text: "connect: " + explain(err)})
		return
	}
	defer conn.Close()
	if cfg.Ask != nil {
		device, code, first := l.verification()
		if !cfg.Ask(ctx, Request{Peer: who, Device: device, Code: code, First: first}) {
			cfg.Events(Event{Kind: EventRefused, Peer: who, Device: device, Code: code, Text: "declined"})
			if page {
				_ = l.refusePage(stream, "declined")
			}
			_ = transfer.Decline(conn, fmt.Sprintf("%s declined to send to %s", cfg.Name, who))
			_ = conn.Linger(2 * time.Second)
			return
		}
	}
	if err := l.pin(); err != nil {
		cfg.Events(Event{Kind: EventError, Peer: who, Text: err.Error()})
		return
	}
	if page {
		if conn, path, err = l.grantPage(ctx, stream, origin, src); err != nil {
			cfg.Events(Event{Kind: EventError, Peer: who, Text: "connect: " + explain(err)})
			return
		}
		defer conn.Close()
	}
	cfg.Events(Event{Kind: EventPeer, Peer: who, Path: path, Text: "connected"})
	start := time.Now()
	var last transfer.Progress
	err = serveOver(ctx, conn, src, transfer.SendOptions{
		Logger: cfg.Logger.With("peer", who),
		Progress: func(pr transfer.Progress) {
			last = pr
			cfg.Events(Event{Kind: EventProgress, Peer: who, File: pr.File, Done: pr.Done, Size: pr.Total, Transferred: pr.Done - pr.Skipped, Path: path})
		},
	})
	if err != nil {
		text := explain(err)
		if errors.Is(err, transfer.ErrInterrupted) && !errors.Is(err, transfer.ErrRemote) {
			text = fmt.Sprintf("the connection was lost after %s of %s; a new receive resumes from there",
				transfer.FormatSize(last.Done), transfer.FormatSize(src.Manifest().TotalSize()))
		}
		cfg.Events(Event{Kind: EventError, Peer: who, Done: last.Done, Size: last.Total, Transferred: last.Done - last.Skipped, Path: path, Text: text})
		return
	}
	total, moved, took := src.Manifest().TotalSize(), last.Done-last.Skipped, time.Since(start)
	cfg.Events(Event{Kind: EventDone, Peer: who, Done: total, Size: total, Transferred: moved, Path: path,
		Text: tookText(moved, took)})
}

func title(m *transfer.Manifest) string {
	var top []string
	seen := map[string]bool{}
	for _, e := range m.Entries {
		name := e.Path
		for i := 0; i < len(name); i++ {
			if name[i] == '/' {
				name = name[:i]
				break
			}
		}
		if !seen[name] {
			seen[name] = true
			top = append(top, name)
		}
	}
	switch len(top) {
	case 0:
		return ""
	case 1:
		return top[0]
	default:
		return fmt.Sprintf("%s and %d more", top[0], len(top)-1)
	}
}
