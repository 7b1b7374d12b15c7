package rtc

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/webrtc/v4"
)

// Stream is a detached, ordered, reliable data channel seen as a byte
// stream. Write splits into messages of at most 64 KiB and blocks while
// SCTP's send queue is full (real backpressure); Read returns bytes as they
// arrive, whatever the message boundaries were.
type Stream struct {
	peer *Peer
	dc   *webrtc.DataChannel
	raw  datachannel.ReadWriteCloser

	rmu  sync.Mutex
	buf  []byte // holds a message bigger than the caller's slice
	rest []byte // unread part of buf

	closeOnce sync.Once
	closeErr  error
}

func newStream(p *Peer, dc *webrtc.DataChannel, raw datachannel.ReadWriteCloser) *Stream {
	return &Stream{peer: p, dc: dc, raw: raw}
}

// Read implements io.Reader. It returns io.EOF once the remote has closed
// the channel.
func (s *Stream) Read(b []byte) (int, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if len(s.rest) > 0 {
		n := copy(b, s.rest)
		s.rest = s.rest[n:]
		return n, nil
	}
	if len(b) >= maxMessage {
		return s.readMessage(b)
	}
	if s.buf == nil {
		s.buf = make([]byte, maxMessage)
	}
	n, err := s.readMessage(s.buf)
	if n > 0 {
		m := copy(b, s.buf[:n])
		s.rest = s.buf[m:n]
		return m, nil
	}
	return 0, err
}

// ErrClosed is what a read or write on a Stream returns once the data
// channel has ended other than by a clean close from the remote (io.EOF):
// the remote aborted it, the network dropped it, or it was closed here.
// Pion's own error (SCTP abort chunks and the like) is logged at debug
// level, not shown: it says nothing a user can act on.
var ErrClosed = errors.New("the data channel closed")

// translate keeps Pion's internals out of the errors a Stream returns.
func (s *Stream) translate(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	s.peer.cfg.Logger.Debug("rtc: data channel ended", "err", err)
	return ErrClosed
}

func (s *Stream) readMessage(b []byte) (int, error) {
	for {
		n, err := s.raw.Read(b)
		if err != nil {
			return n, s.translate(err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// Write implements io.Writer.
func (s *Stream) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), maxMessage)]
		n, err := s.raw.Write(chunk)
		written += n
		if err != nil {
			return written, s.translate(err)
		}
		b = b[len(chunk):]
	}
	return written, nil
}

// Close waits briefly for what was written to leave (so a final message is
// not lost), then closes the channel and the peer connection. It is idempotent.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		deadline := time.Now().Add(3 * time.Second)
		for s.dc.BufferedAmount() > 0 && time.Now().Before(deadline) {
			select {
			case <-s.peer.done:
				deadline = time.Now()
			case <-time.After(10 * time.Millisecond):
			}
		}
		_ = s.raw.Close()
		s.closeErr = s.peer.Close()
	})
	return s.closeErr
}

// Linger waits up to d for the remote to close the channel first (reading
// and discarding anything more), then closes. The side that speaks last in
// a protocol uses it so that its last message is read before the
// connection goes: closing at once could reset the channel under it.
func (s *Stream) Linger(d time.Duration) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(io.Discard, s)
	}()
	select {
	case <-done:
	case <-s.peer.done:
	case <-time.After(d):
	}
	err := s.Close()
	<-done
	return err
}

var _ io.ReadWriteCloser = (*Stream)(nil)
