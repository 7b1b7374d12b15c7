package pagehttp

import (
	"context"
	"time"
)

// Bounds of the POSTs a page keeps in flight ahead of the stream.
const (
	// maxAhead bounds how far past what the CLI has a POST may carry
	// bytes, and the bytes held ahead of it in all; a POST that starts
	// farther is a gap (409). The page keeps less in flight (4 × 6 MiB).
	maxAhead = 32 << 20
	// maxHeld bounds the POSTs that started past what the CLI has and are
	// still running; one more is a gap (409).
	maxHeld = 8
)

// post is one POST's bytes held ahead of the stream: they start past what
// the CLI has, and join the stream, in order, once the bytes before them
// arrive (from the POSTs before this one, or their retries).
type post struct {
	start  int64 // stream offset of its first byte
	buf    queue // bytes from start, not yet in the stream
	queued bool  // in Stream.ahead
}

// admit admits a POST from offset off: at or before what the CLI has it
// joins the stream directly; past it, it is held if it is within the
// window and fewer than maxHeld are; else it is a gap. release, when not
// nil, must be called when the POST ends.
func (s *Stream) admit(off int64) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.err != nil:
		return nil, s.err
	case off <= s.have:
		return func() {}, nil
	case off-s.have > maxAhead || s.holding >= maxHeld:
		return nil, errGap
	}
	s.holding++
	s.changed()
	return func() {
		s.mu.Lock()
		s.holding--
		s.mu.Unlock()
	}, nil
}

// take adds the bytes pc that p carries at stream offset pos: to the stream
// when it has the bytes before them, else held in p until it does. It waits
// while too much is buffered or held, and gives up with errGap once the
// stream has not grown for Config.Hold.
// It owns pc.
func (s *Stream) take(ctx context.Context, p *post, pos int64, pc piece) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int64(len(pc.b))
	for {
		switch {
		case s.err != nil:
			recycle(pc, s.pool)
			return s.err
		case pos <= s.have && s.in.n < maxInBuffered:
			s.append(pos, pc)
			return nil
		case pos > s.have && pos+n-s.have <= maxAhead && s.aheadBytes+n <= maxAhead:
			if !p.queued {
				p.start, p.queued = pos, true
				s.ahead = append(s.ahead, p)
			}
			p.buf.push(pc)
			s.aheadBytes += n
			s.changed()
			s.c.touch()
			return nil
		}
		if err := s.waitGrowth(ctx, pos > s.have); err != nil {
			recycle(pc, s.pool)
			s.drop(p)
			return err
		}
	}
}

// settle waits until the stream has every byte before end (a POST held
// ahead answers only once its bytes joined the stream), giving up with
// errGap once the stream has not grown for Config.Hold.
func (s *Stream) settle(ctx context.Context, p *post, end int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.have < end {
		if s.err != nil {
			return s.err
		}
		if err := s.waitGrowth(ctx, true); err != nil {
			s.drop(p)
			return err
		}
	}
	return nil
}

// waitGrowth waits for a change of the stream. Held ahead (ahead), it
// gives up with errGap once the stream has not grown for Config.Hold. s.mu is
// held; it is released while waiting.
func (s *Stream) waitGrowth(ctx context.Context, ahead bool) error {
	w := s.wake
	left := s.hold - time.Since(s.grew)
	if ahead && left <= 0 {
		return errGap
	}
	s.mu.Unlock()
	var timeout <-chan time.Time
	if ahead {
		t := time.NewTimer(left)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-w:
	case <-timeout:
	case <-ctx.Done():
	}
	s.mu.Lock()
	return ctx.Err()
}

// append adds the bytes of pc the stream lacks (pc is at offset pos, at or
// before what it has), then every held POST its bytes reach. It owns pc.
// s.mu is held.
func (s *Stream) append(pos int64, pc piece) {
	if skip := s.have - pos; skip < int64(len(pc.b)) {
		pc.b = pc.b[skip:]
		s.in.push(pc)
		s.have += int64(len(pc.b))
		s.grew = time.Now()
		s.joinAhead()
		s.changed()
	} else {
		recycle(pc, s.pool)
	}
	s.c.touch()
}

// joinAhead moves into the stream, in order, the held bytes that now
// follow what it has. s.mu is held.
func (s *Stream) joinAhead() {
	for moved := true; moved; {
		moved = false
		for _, p := range s.ahead {
			if p.start > s.have {
				continue
			}
			s.removeAhead(p)
			if end := p.start + int64(p.buf.n); end > s.have {
				p.buf.skip(int(s.have-p.start), s.pool)
				p.buf.moveTo(&s.in)
				s.have = end
			}
			p.buf.clear(s.pool)
			moved = true
			break
		}
	}
}

// drop forgets p's held bytes. s.mu is held.
func (s *Stream) drop(p *post) {
	s.removeAhead(p)
	p.buf.clear(s.pool)
}

// removeAhead takes p out of the held POSTs, keeping its bytes. s.mu is held.
func (s *Stream) removeAhead(p *post) {
	if !p.queued {
		return
	}
	for i, q := range s.ahead {
		if q == p {
			s.ahead = append(s.ahead[:i], s.ahead[i+1:]...)
			break
		}
	}
	s.aheadBytes -= int64(p.buf.n)
	p.queued = false
}
