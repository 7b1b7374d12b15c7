package discovery

import (
	"net/netip"
	"slices"
	"testing"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestAddrBook: addresses come out in the order of the interfaces; a
// change closes the channel handed out before it, a repeat of the same
// addresses does not.
func TestAddrBook(t *testing.T) {
	b := &addrBook{order: []string{"v1", "v2"}, byIface: map[string][]LocalAddr{}, changed: make(chan struct{})}
	a := func(iface, s string) LocalAddr { return LocalAddr{Iface: iface, Addr: netip.MustParseAddr(s)} }
	steps := []struct {
		name    string
		iface   string
		addrs   []LocalAddr
		changed bool
		want    []LocalAddr
	}{
		{"second interface first", "v2", []LocalAddr{a("v2", "10.0.1.1")}, true, []LocalAddr{a("v2", "10.0.1.1")}},
		{"first interface", "v1", []LocalAddr{a("v1", "10.0.0.1")}, true, []LocalAddr{a("v1", "10.0.0.1"), a("v2", "10.0.1.1")}},
		{"same again", "v1", []LocalAddr{a("v1", "10.0.0.1")}, false, []LocalAddr{a("v1", "10.0.0.1"), a("v2", "10.0.1.1")}},
		{"address added", "v1", []LocalAddr{a("v1", "10.0.0.1"), a("v1", "10.0.0.9")}, true,
			[]LocalAddr{a("v1", "10.0.0.1"), a("v1", "10.0.0.9"), a("v2", "10.0.1.1")}},
		{"interface gone", "v2", nil, true, []LocalAddr{a("v1", "10.0.0.1"), a("v1", "10.0.0.9")}},
	}
	for _, s := range steps {
		_, ch := b.get()
		b.set(s.iface, s.addrs)
		if got := closed(ch); got != s.changed {
			t.Errorf("%s: changed %v, want %v", s.name, got, s.changed)
		}
		got, next := b.get()
		if !slices.Equal(got, s.want) {
			t.Errorf("%s: got %v, want %v", s.name, got, s.want)
		}
		if closed(next) {
			t.Errorf("%s: the new channel is already closed", s.name)
		}
	}
	var nilBook *addrBook
	nilBook.set("v1", nil) // a zone made without a book
}
