package discovery

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// fakeLAN is an in-memory LAN for Sources: every running node hears, on
// each of its queries, the current record of every running node in its
// partition, itself included (as mDNS loops our own answers back).
type fakeLAN struct {
	interval time.Duration

	mu    sync.Mutex
	nodes []*fakeNode
	group int // last partition number handed out
}

func newFakeLAN(interval time.Duration) *fakeLAN { return &fakeLAN{interval: interval} }

// fakeNode is one Source on a fakeLAN.
type fakeNode struct {
	lan  *fakeLAN
	addr netip.Addr

	probe chan struct{}

	// guarded by lan.mu
	txt     []string
	running bool
	group   int // nodes hear each other only within a group
}

func (l *fakeLAN) node() *fakeNode {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := &fakeNode{lan: l, probe: make(chan struct{}, 1), addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(len(l.nodes) + 1)})}
	l.nodes = append(l.nodes, n)
	return n
}

// cut isolates n from every other node; heal puts it back.
func (l *fakeLAN) cut(n *fakeNode) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.group++
	n.group = l.group
}

func (l *fakeLAN) heal(n *fakeNode) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n.group = 0
}

func (n *fakeNode) Publish(txt []string) error {
	n.lan.mu.Lock()
	defer n.lan.mu.Unlock()
	n.txt = slices.Clone(txt)
	return nil
}

func (n *fakeNode) Run(ctx context.Context, heard func(Sighting)) error {
	l := n.lan
	l.mu.Lock()
	n.running = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		n.running = false
		l.mu.Unlock()
	}()
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	for {
		l.mu.Lock()
		var answers []Sighting
		for _, m := range l.nodes {
			if m.running && m.group == n.group && m.txt != nil {
				answers = append(answers, Sighting{Iface: "fake0", Addrs: []netip.Addr{m.addr}, TXT: slices.Clone(m.txt)})
			}
		}
		l.mu.Unlock()
		for _, a := range answers {
			heard(a)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-n.probe:
		}
	}
}

func (n *fakeNode) Probe() {
	select {
	case n.probe <- struct{}{}:
	default:
	}
}
