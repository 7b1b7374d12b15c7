package discovery

import (
	"slices"
	"sync"
)

// addrBook holds the addresses of the mDNS source's interfaces as last
// read (before each query, every query interval) and tells of changes, so
// that what must listen on exactly those addresses follows the same poll.
type addrBook struct {
	order []string // the interfaces, in the order discovery was given them

	mu      sync.Mutex
	byIface map[string][]LocalAddr
	changed chan struct{} // closed and replaced on every change
}

// newAddrBook starts with the interfaces' addresses read now.
func newAddrBook(ifaces []string) *addrBook {
	b := &addrBook{order: slices.Clone(ifaces), byIface: make(map[string][]LocalAddr), changed: make(chan struct{})}
	for _, a := range InterfaceAddrs(ifaces) {
		b.byIface[a.Iface] = append(b.byIface[a.Iface], a)
	}
	return b
}

// set records iface's addresses (nil: it has none, or is gone). A nil
// book ignores it.
func (b *addrBook) set(iface string, addrs []LocalAddr) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if slices.Equal(b.byIface[iface], addrs) {
		return
	}
	b.byIface[iface] = addrs
	close(b.changed)
	b.changed = make(chan struct{})
}

// get returns every address and a channel closed at the next change.
func (b *addrBook) get() ([]LocalAddr, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []LocalAddr
	for _, name := range b.order {
		out = append(out, b.byIface[name]...)
	}
	return out, b.changed
}
