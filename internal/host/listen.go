package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lanft/lanft/bindif"
	"github.com/lanft/lanft/discovery"
)

// A LAN instance listens for signaling and its page only where the LAN is:
// on the addresses of the interfaces discovery works on (discovery decides
// which, ResolveInterfaces; it re-reads their addresses every query
// interval and tells of changes, LocalAddrs) and on loopback, for this
// machine's own CLI and browser. Each listener is bound to its interface
// too (SO_BINDTODEVICE on Linux), so that a packet for the LAN address
// that comes in over another link (a VPN, a container's) finds no socket
// either. All listeners share one port: the page's address (a browser's
// storage origin) is the same on each.

// retryListen is how soon an address that could not be listened on (an
// IPv6 address still tentative, a port another program holds there) is
// tried again when nothing else changed.
const retryListen = 2 * time.Second

// serveAddr is one address to listen on, bound to iface ("" for loopback).
type serveAddr struct {
	iface string
	addr  netip.Addr
}

// serveAddrs is where a LAN instance listens: the interfaces' addresses,
// then loopback's, each once.
func serveAddrs(local []discovery.LocalAddr, loopback []netip.Addr) []serveAddr {
	var out []serveAddr
	seen := make(map[netip.Addr]bool)
	add := func(iface string, a netip.Addr) {
		if !seen[a] {
			seen[a] = true
			out = append(out, serveAddr{iface: iface, addr: a})
		}
	}
	for _, la := range local {
		add(la.Iface, la.Addr)
	}
	for _, a := range loopback {
		add("", a)
	}
	return out
}

// loopbackAddrs are this machine's loopback addresses (127.0.0.1, ::1
// where IPv6 is on), read from its loopback interfaces.
func loopbackAddrs() []netip.Addr {
	var names []string
	ifs, _ := net.Interfaces()
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 && ifi.Flags&net.FlagUp != 0 {
			names = append(names, ifi.Name)
		}
	}
	var out []netip.Addr
	for _, la := range discovery.InterfaceAddrs(names) {
		if la.Addr.IsLoopback() {
			out = append(out, la.Addr.WithZone(""))
		}
	}
	return out
}

// listenSet is the net.Listener a LAN instance serves on: one TCP listener
// per serveAddr, all on one port, whose accept loops feed one queue. set
// adds and removes listeners while it is served.
type listenSet struct {
	port  int
	log   *slog.Logger
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	mu     sync.Mutex
	lns    map[netip.Addr]net.Listener
	failed map[netip.Addr]string // why an address has no listener (logged once)
}

func newListenSet(log *slog.Logger) *listenSet {
	return &listenSet{log: log, conns: make(chan net.Conn), done: make(chan struct{}),
		lns: make(map[netip.Addr]net.Listener), failed: make(map[netip.Addr]string)}
}

// open listens on want with one port: prefer when it is free on all of
// them, else one the system picks (tried a few times, in case the picked
// port is taken on another address). An address that cannot be listened
// on for another reason is left for set to retry; at least one must work.
func (s *listenSet) open(want []serveAddr, prefer int) error {
	ports := []int{0, 0, 0, 0}
	if prefer != 0 {
		ports = append([]int{prefer}, ports...)
	}
	var err error
	for _, port := range ports {
		if err = s.openPort(want, port); err == nil {
			return nil
		}
	}
	return fmt.Errorf("node: listen for signaling: %w", err)
}

// openPort tries to listen on every address of want at port (0: the one
// the system picks for the first); a port in use anywhere fails it all.
func (s *listenSet) openPort(want []serveAddr, port int) error {
	var errs []error
	for _, a := range want {
		ln, err := listenAt(a, port)
		if errors.Is(err, syscall.EADDRINUSE) {
			s.closeListeners()
			return err
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		port = ln.Addr().(*net.TCPAddr).Port
		s.lns[a.addr] = ln
	}
	if len(s.lns) == 0 {
		if len(errs) == 0 {
			return errors.New("no address to listen on")
		}
		return errors.Join(errs...)
	}
	s.port = port
	for _, err := range errs {
		s.log.Debug("node: cannot listen yet; retrying later", "err", err)
	}
	return nil
}

func (s *listenSet) closeListeners() {
	for a, ln := range s.lns {
		ln.Close()
		delete(s.lns, a)
	}
}

// listenAt listens on a at port, bound to a's interface.
func listenAt(a serveAddr, port int) (net.Listener, error) {
	lc := net.ListenConfig{Control: bindif.Control(a.iface)}
	return lc.Listen(context.Background(), "tcp", net.JoinHostPort(a.addr.String(), strconv.Itoa(port)))
}

// serve starts accepting on the listeners open so far.
func (s *listenSet) serve() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.lns {
		s.wg.Go(func() { s.accept(ln) })
	}
}

// set makes the listeners those of want: new addresses get one, addresses
// no longer wanted lose theirs (connections already made stay). It reports
// whether some address of want has none (it is worth trying again later).
func (s *listenSet) set(want []serveAddr) (missing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return false
	default:
	}
	keep := make(map[netip.Addr]bool)
	for _, a := range want {
		keep[a.addr] = true
		if _, ok := s.lns[a.addr]; ok {
			continue
		}
		ln, err := listenAt(a, s.port)
		if err != nil {
			missing = true
			s.noteFailure(a.addr, err)
			continue
		}
		delete(s.failed, a.addr)
		s.log.Info("node: listening", "addr", ln.Addr().String(), "iface", a.iface)
		s.lns[a.addr] = ln
		s.wg.Go(func() { s.accept(ln) })
	}
	for a, ln := range s.lns {
		if !keep[a] {
			s.log.Info("node: address gone; not listening there any more", "addr", ln.Addr().String())
			ln.Close()
			delete(s.lns, a)
		}
	}
	for a := range s.failed {
		if !keep[a] {
			delete(s.failed, a)
		}
	}
	return missing
}

// noteFailure logs why a has no listener, once per reason: a warning when
// another program holds our port there, else (an address not usable yet)
// at debug level.
func (s *listenSet) noteFailure(a netip.Addr, err error) {
	if s.failed[a] == err.Error() {
		return
	}
	s.failed[a] = err.Error()
	if errors.Is(err, syscall.EADDRINUSE) {
		s.log.Warn("node: another program uses this instance's port on an address of the LAN; the page and signaling are not reachable there", "addr", a, "port", s.port, "err", err)
		return
	}
	s.log.Debug("node: cannot listen yet; retrying", "addr", a, "err", err)
}

// accept feeds ln's connections to Accept until ln or s is closed.
func (s *listenSet) accept(ln net.Listener) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors and the like: back off as
			// net/http's Serve does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("node: accept failed; retrying", "addr", ln.Addr().String(), "err", err, "in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-s.done:
				return
			}
		}
		delay = 0
		select {
		case s.conns <- c:
		case <-s.done:
			c.Close()
			return
		}
	}
}

// Accept implements net.Listener.
func (s *listenSet) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener: it closes every listener. It is
// idempotent.
func (s *listenSet) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		close(s.done)
		s.closeListeners()
		s.mu.Unlock()
		s.wg.Wait()
	})
	return nil
}

// Addr implements net.Listener: the port on no address in particular.
func (s *listenSet) Addr() net.Addr { return &net.TCPAddr{Port: s.port} }

// addrs are the addresses listened on now: the LAN's (IPv4 first), then
// loopback's.
func (s *listenSet) addrs() []netip.Addr {
	s.mu.Lock()
	out := make([]netip.Addr, 0, len(s.lns))
	for a := range s.lns {
		out = append(out, a)
	}
	s.mu.Unlock()
	rank := func(a netip.Addr) int {
		r := 0
		if a.IsLoopback() {
			r += 2
		}
		if a.Is6() {
			r++
		}
		return r
	}
	slices.SortFunc(out, func(a, b netip.Addr) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return a.Compare(b)
	})
	return out
}

// Interfaces are the interfaces discovery works on, which the listeners
// follow (nil with an injected Source).
func (l *LAN) Interfaces() []string { return slices.Clone(l.ifaces) }

// HelloPort is the port this instance answers unicast probes on besides
// its signaling port (hello.go), or 0 when it has none.
func (l *LAN) HelloPort() int {
	if l.hello == nil {
		return 0
	}
	return l.hello.port
}

// DialContext opens a TCP connection that stays on the LAN: to an
// address of a discovery interface's subnet, from that interface's
// address and bound to it, so that a VPN route over the LAN's range does
// not take it (discovery.LANDialer); elsewhere as the routes say. The
// signaling client's connection to the elected host, and the page
// bridge's, should use it.
func (l *LAN) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return discovery.LANDialer(l.ifaces)(ctx, network, addr)
}
