// Package discoverytest is an in-memory LAN for tests of discovery and of
// what runs on it: Sources (discovery.Source) that hear each other
// without a socket, and partitions to cut them apart.
//
// A LAN is generic in the answer its Sources hear, discovery.Sighting,
// so that this package imports nothing of discovery (nor of internal/)
// and discovery's own tests can use it:
//
//	lan := discoverytest.New(time.Second, func(n int, txt []string) discovery.Sighting {
//		return discovery.Sighting{Iface: "fake0", Addrs: []netip.Addr{addrOf(n)}, TXT: txt}
//	})
//	d, err := discovery.New(discovery.Config{Source: lan.Source(), ...})
package discoverytest

import (
	"context"
	"slices"
	"sync"
	"time"
)

// LAN is an in-memory LAN: every running Source hears, on each of its
// queries, the current record of every running Source in its partition,
// its own included (as mDNS loops our own answers back).
type LAN[S any] struct {
	interval time.Duration
	sighting func(n int, txt []string) S

	mu      sync.Mutex
	sources []*Source[S]
	group   int // the last partition handed out
}

// New returns a LAN whose Sources query every interval (and when probed)
// and hear the record txt of the Source numbered n (1 for the first
// Source made, 2 for the next, ...) as sighting(n, txt) makes it.
func New[S any](interval time.Duration, sighting func(n int, txt []string) S) *LAN[S] {
	return &LAN[S]{interval: interval, sighting: sighting}
}

// Source is one instance's view of a LAN: a discovery.Source.
type Source[S any] struct {
	lan   *LAN[S]
	n     int // its number, from 1
	probe chan struct{}

	// guarded by lan.mu
	txt     []string
	running bool
	group   int // Sources hear each other only within a group
}

// Source adds a Source to l, numbered one more than the last.
func (l *LAN[S]) Source() *Source[S] {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &Source[S]{lan: l, n: len(l.sources) + 1, probe: make(chan struct{}, 1)}
	l.sources = append(l.sources, s)
	return s
}

// Cut isolates s from every other Source; Heal puts it back.
func (l *LAN[S]) Cut(s *Source[S]) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.group++
	s.group = l.group
}

// Heal puts s back in the LAN's main partition.
func (l *LAN[S]) Heal(s *Source[S]) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s.group = 0
}

// Publish replaces the record s advertises.
func (s *Source[S]) Publish(txt []string) error {
	s.lan.mu.Lock()
	defer s.lan.mu.Unlock()
	s.txt = slices.Clone(txt)
	return nil
}

// Probe asks for a query now; it does not block.
func (s *Source[S]) Probe() {
	select {
	case s.probe <- struct{}{}:
	default:
	}
}

// Run advertises s's record and hears the records of its partition,
// every interval and when probed, until ctx is done; it returns nil.
func (s *Source[S]) Run(ctx context.Context, heard func(S)) error {
	l := s.lan
	l.mu.Lock()
	s.running = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		s.running = false
		l.mu.Unlock()
	}()
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	for {
		for _, a := range l.answers(s) {
			heard(a)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.probe:
		}
	}
}

// answers is what a query of s hears now: its partition's records.
func (l *LAN[S]) answers(s *Source[S]) []S {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []S
	for _, m := range l.sources {
		if m.running && m.group == s.group && m.txt != nil {
			out = append(out, l.sighting(m.n, slices.Clone(m.txt)))
		}
	}
	return out
}
