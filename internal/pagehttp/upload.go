package pagehttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Stream bounds.
const (
	// maxInBuffered bounds the page's bytes received in order and not yet
	// Read; a POST beyond it waits (TCP pushes back on the page). Bytes held
	// ahead (maxAhead, stream_ahead.go) may join past it: at most
	// maxInBuffered + maxAhead are kept per stream.
	maxInBuffered = 4 << 20
	// MaxWritten bounds what the CLI writes to the page over a whole
	// stream (it is all kept, for a page that GETs again after a cut).
	// The transfer protocol's receiver writes a PLAN and an OK: far less.
	MaxWritten = 16 << 20
	// postChunk is how much of a POST body is read at a time.
	postChunk = 64 << 10
)

// HeaderHave names the response header that says how many bytes of the
// page's stream the CLI has (on up) or has written (on a refused down).
const HeaderHave = "X-Lanft-Have"

// errStreamClosed is what Read and Write return after Close.
var errStreamClosed = fmt.Errorf("pagehttp: the page's stream is closed: %w", net.ErrClosed)

// errGap: a POST starts after the bytes the CLI has.
var errGap = errors.New("pagehttp: a gap in the page's stream")

func errIdle(d time.Duration) error {
	return fmt.Errorf("pagehttp: the page sent nothing for %v, so the transfer stopped; was the page closed or the network cut? Try again", d)
}

// Stream is the byte stream of an upload: Read returns what the page
// POSTs, in order, each byte once; Write queues bytes for the page's GET
// down. It is an io.ReadWriteCloser for transfer.Receive. Read and Write
// fail once the stream is closed or its capability ended (revoked, or idle
// for the Server's Idle).
type Stream struct {
	c       *Capability
	maxBody int64
	hold    time.Duration // Config.Hold

	mu      sync.Mutex
	wake    chan struct{} // closed and replaced on every change
	in      queue         // received and not yet read
	pool    *sync.Pool    // POST read buffers
	have    int64         // bytes received in all
	out     []byte        // everything written
	flushed int64         // bytes of out flushed to the page
	downs   int           // GET down responses under way
	closing bool          // Linger: nothing more will be written
	err     error         // why the stream ended

	ahead      []*post   // POSTs holding bytes past have (stream_ahead.go)
	aheadBytes int64     // their bytes
	holding    int       // POSTs running that started past have
	grew       time.Time // when have last grew
}

// Upload makes a capability whose POST up and GET down requests form a
// byte stream with the page, which the transfer protocol runs over
// unchanged. The capability ends when the stream is closed, when it is
// revoked or idle, or when ctx is done.
func (s *Server) Upload(ctx context.Context, g Grant) (*Capability, *Stream, error) {
	var st *Stream
	c, err := s.mint(ctx, g, PurposeUpload, func(c *Capability) {
		st = &Stream{c: c, maxBody: s.cfg.MaxBody, hold: s.cfg.Hold, pool: newPool(), wake: make(chan struct{}), grew: time.Now()}
		c.stream = st
	})
	if err != nil {
		return nil, nil, err
	}
	return c, st, nil
}

// changed wakes every waiter. s.mu is held.
func (s *Stream) changed() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// Read returns the page's next bytes, waiting for them.
func (s *Stream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.in.n == 0 {
		if s.err != nil {
			return 0, s.err
		}
		w := s.wake
		s.mu.Unlock()
		<-w
		s.mu.Lock()
	}
	n := s.in.read(p, s.pool)
	s.changed()
	return n, nil
}

// Write queues p for the page. It fails past MaxWritten in all.
func (s *Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.err != nil:
		return 0, s.err
	case s.closing:
		return 0, errStreamClosed
	case len(s.out)+len(p) > MaxWritten:
		return 0, fmt.Errorf("pagehttp: more than %d bytes for the page in one transfer; this is not a lanft page", MaxWritten)
	}
	s.out = append(s.out, p...)
	s.changed()
	return len(p), nil
}

// Close ends the stream and revokes its capability; what the page sent and
// was not read is dropped. It is idempotent.
func (s *Stream) Close() error {
	s.fail(errStreamClosed)
	s.mu.Lock()
	s.in.clear(s.pool)
	for len(s.ahead) > 0 {
		s.drop(s.ahead[0])
	}
	s.mu.Unlock()
	s.c.Revoke()
	return nil
}

// Linger stops writing, waits up to d for the page to take what was
// written, then closes the stream. It says so if the page did not.
func (s *Stream) Linger(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	s.mu.Lock()
	s.closing = true
	// A stream closed already (transfer.Receive closes it once it wrote
	// its ERROR frame) still gives a GET down under way its last bytes.
	for s.flushed < int64(len(s.out)) && (s.err == nil || s.downs > 0) {
		w := s.wake
		s.mu.Unlock()
		select {
		case <-w:
		case <-t.C:
			s.mu.Lock()
			left := int64(len(s.out)) - s.flushed
			s.mu.Unlock()
			s.Close()
			return fmt.Errorf("pagehttp: the page did not take lanft's last %d bytes within %v", left, d)
		}
		s.mu.Lock()
	}
	err := s.err
	left := int64(len(s.out)) - s.flushed
	s.mu.Unlock()
	s.Close()
	if left > 0 {
		return fmt.Errorf("pagehttp: the page did not take lanft's last %d bytes: %w", left, err)
	}
	s.endDowns(t.C)
	return nil
}

// endDowns waits, until timeout fires, for the GET down responses to end
// (the stream is closed): a response cut by lanft's exit before its end
// is a network error for the page, which then tries again for a minute
// instead of reading lanft's last word.
func (s *Stream) endDowns(timeout <-chan time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.downs > 0 {
		w := s.wake
		s.mu.Unlock()
		select {
		case <-w:
		case <-timeout:
			s.mu.Lock()
			return
		}
		s.mu.Lock()
	}
}

// fail ends the stream with why, unless it has ended already.
func (s *Stream) fail(why error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = why
		s.changed()
	}
}

// parseOffset reads the off= query parameter.
func parseOffset(r *http.Request) (int64, bool) {
	v := r.URL.Query().Get("off")
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != v {
		return 0, false
	}
	return n, true
}

// serveUp takes the page's stream bytes from offset off, skipping those it
// has. A POST that starts past what the CLI has is held (within maxAhead
// and maxHeld) until the bytes before it arrive, so a page may keep several
// POSTs in flight; it answers once its bytes joined the stream. The answer
// says how many bytes the CLI has; a gap that does not fill is 409.
func (s *Stream) serveUp(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	off, ok := parseOffset(r)
	if !ok {
		empty(w, http.StatusBadRequest)
		return
	}
	if r.ContentLength > s.maxBody {
		s.answerUp(w, http.StatusRequestEntityTooLarge)
		return
	}
	release, err := s.admit(off)
	switch {
	case errors.Is(err, errGap):
		s.answerUp(w, http.StatusConflict)
		return
	case err != nil:
		refuse(w) // the stream ended: the capability is gone
		return
	}
	defer release()
	p := &post{}
	defer func() {
		s.mu.Lock()
		s.drop(p) // a POST that failed leaves nothing held
		s.mu.Unlock()
	}()
	body := http.MaxBytesReader(w, r.Body, s.maxBody)
	pos := off
	for {
		back := s.pool.Get().(*[postChunk]byte)
		n, err := body.Read(back[:])
		if n == 0 {
			s.pool.Put(back)
		} else {
			if terr := s.take(ctx, p, pos, piece{back[:n], back}); terr != nil {
				s.answerTaken(w, terr)
				return
			}
			pos += int64(n)
		}
		var tooBig *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			if serr := s.settle(ctx, p, pos); serr != nil {
				s.answerTaken(w, serr)
				return
			}
			s.answerUp(w, http.StatusOK)
			return
		case errors.As(err, &tooBig):
			s.answerUp(w, http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			return // the page's connection is gone; what joined the stream is kept
		}
	}
}

// answerTaken answers a POST whose bytes could not be taken: a gap that
// did not fill is 409; an ended stream is the refusal.
func (s *Stream) answerTaken(w http.ResponseWriter, err error) {
	if errors.Is(err, errGap) {
		s.answerUp(w, http.StatusConflict)
		return
	}
	refuse(w)
}

// accept adds the bytes b at stream offset pos that it lacks, waiting while
// too much is buffered; a pos past what the CLI has is a gap.
func (s *Stream) accept(ctx context.Context, pos int64, b []byte) error {
	s.mu.Lock()
	gap := pos > s.have
	s.mu.Unlock()
	if gap {
		return errGap
	}
	return s.take(ctx, &post{}, pos, piece{b: b})
}

func (s *Stream) answerUp(w http.ResponseWriter, status int) {
	s.mu.Lock()
	have := s.have
	s.mu.Unlock()
	w.Header().Set(HeaderHave, strconv.FormatInt(have, 10))
	empty(w, status)
}

// lastWord bounds how long a down GET may take the stream's last bytes
// once the stream has ended.
const lastWord = 5 * time.Second

// serveDown streams what the CLI writes, from offset off, as it is
// written, until the stream ends; the end of the capability does not cut
// it, so the page gets the last bytes (an ERROR frame, say).
func (s *Stream) serveDown(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	off, ok := parseOffset(r)
	if !ok {
		empty(w, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	written := int64(len(s.out))
	s.mu.Unlock()
	if off > written {
		w.Header().Set(HeaderHave, strconv.FormatInt(written, 10))
		empty(w, http.StatusConflict)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	s.mu.Lock()
	s.downs++
	s.mu.Unlock()
	defer func() {
		// The response ends on the wire (its last chunk) before Linger's
		// caller, lanft about to exit, hears it ended.
		rc.Flush()
		s.mu.Lock()
		s.downs--
		s.changed()
		s.mu.Unlock()
	}()
	for pos, lastCall := off, false; ; {
		s.mu.Lock()
		chunk, wake, ended := s.out[pos:], s.wake, s.err != nil
		s.mu.Unlock()
		if ended && !lastCall {
			// The stream ended: what is left goes now, or not at all.
			lastCall = true
			rc.SetWriteDeadline(time.Now().Add(lastWord))
		}
		if len(chunk) > 0 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			pos += int64(len(chunk))
			s.mu.Lock()
			if pos > s.flushed {
				s.flushed = pos
				s.changed()
			}
			s.mu.Unlock()
			s.c.touch()
			continue
		}
		if ended {
			return
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		}
	}
}
