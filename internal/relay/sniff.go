package relay

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Sniff shares ln between the relay and another server (the signaling
// server's HTTP): a connection whose first byte is Magic's goes to s, any
// other is returned by the listener's Accept with that byte put back. The
// first byte is awaited in a goroutine of its own for at most
// HandshakeTimeout, so a client that sends nothing stalls no one.
func (s *Server) Sniff(ln net.Listener) net.Listener {
	return &sniffer{ln: ln, s: s, conns: make(chan net.Conn), done: make(chan struct{}), pending: make(map[net.Conn]struct{})}
}

type sniffer struct {
	ln    net.Listener
	s     *Server
	conns chan net.Conn
	done  chan struct{}
	start sync.Once
	stop  sync.Once
	err   error // the listener's, once conns is no longer fed
	errMu sync.Mutex
	wg    sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]struct{}
}

func (l *sniffer) Accept() (net.Conn, error) {
	l.start.Do(func() { l.wg.Go(l.loop) })
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.errMu.Lock()
		defer l.errMu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// loop accepts until ln fails, and classifies each connection.
func (l *sniffer) loop() {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			l.errMu.Lock()
			l.err = err
			l.errMu.Unlock()
			l.shut()
			return
		}
		delay = 0
		if !l.track(c) {
			c.Close()
			continue
		}
		l.wg.Go(func() { l.classify(c) })
	}
}

func (l *sniffer) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return false
	default:
	}
	if len(l.pending) >= l.s.cfg.MaxHandshakes {
		l.s.refused[RefusedFull].Add(1)
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *sniffer) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
}

// classify reads c's first byte and hands c to the relay or to Accept.
func (l *sniffer) classify(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(l.s.cfg.HandshakeTimeout))
	var b [1]byte
	n, err := c.Read(b[:])
	l.untrack(c)
	if err != nil || n == 0 {
		c.Close()
		return
	}
	if b[0] == Magic[0] {
		l.s.ServeConn(c, b[:1])
		return
	}
	c.SetReadDeadline(time.Time{})
	select {
	case l.conns <- &prefixConn{Conn: c, head: b[:1]}:
	case <-l.done:
		c.Close()
	}
}

// Close closes the listener and every connection not classified yet, and
// waits for its goroutines.
func (l *sniffer) Close() error {
	err := l.ln.Close()
	l.shut()
	l.wg.Wait()
	return err
}

// shut ends Accept and the classifying of pending connections.
func (l *sniffer) shut() {
	l.stop.Do(func() {
		l.mu.Lock()
		close(l.done)
		for c := range l.pending {
			c.SetReadDeadline(time.Now())
		}
		l.mu.Unlock()
	})
}

func (l *sniffer) Addr() net.Addr { return l.ln.Addr() }

// prefixConn returns head before the rest of Conn.
type prefixConn struct {
	net.Conn
	head []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the connection where it can.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
