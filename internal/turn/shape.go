package turn

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The relay shapes each credential's traffic to Config.Rate bytes a second
// in each direction by delay, as a link of that speed with a queue would:
// a datagram that finds its bucket empty waits, it is not dropped (a drop
// costs SCTP a retransmission and halves its window; a delay only slows
// its clock). Towards the client the wait happens in the allocation's own
// reading goroutine, so the relay socket's kernel buffer (udpBuffer) is the
// queue; towards the peer, Pion's shared read loop must not wait for one
// client, so datagrams queue in a shaper of their own (shapeQueue deep).
// Only a full queue drops, and says so at warn level.

// bucket is a token bucket that goes into debt instead of refusing: take
// returns how long the caller must wait for the tokens it took. Its zero
// value is not usable; see newBucket.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens (bytes) a second
	burst  float64
	tokens float64 // may be negative: owed
	last   time.Time
}

func newBucket(rate, burst int) *bucket {
	return &bucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst)}
}

// take removes n tokens at now and returns the wait before they are due
// (0 while the bucket holds them).
func (b *bucket) take(now time.Time, n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		if dt := now.Sub(b.last).Seconds(); dt > 0 {
			b.tokens = min(b.burst, b.tokens+dt*b.rate)
		}
	}
	if now.After(b.last) {
		b.last = now
	}
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// limits are one credential's buckets, one a direction.
type limits struct {
	toPeer, toClient *bucket
}

func newLimits(rate int) *limits {
	burst := max(rate/4, 256<<10)
	return &limits{toPeer: newBucket(rate, burst), toClient: newBucket(rate, burst)}
}

// minPause is the shortest wait: a debt under it is carried, not slept
// (the bucket keeps it, so the rate holds), so that a shaped flow sleeps
// once for a run of datagrams, which then leave together (one system call,
// see batched), not once a datagram.
const minPause = 2 * time.Millisecond

// pause waits d unless done closes first (then false). t is the caller's
// own timer, reused so that waiting allocates nothing.
func pause(t *time.Timer, d time.Duration, done <-chan struct{}) bool {
	if d < minPause {
		return true
	}
	t.Reset(d)
	select {
	case <-t.C:
		return true
	case <-done:
		t.Stop()
		return false
	}
}

// shapeQueue is how many datagrams wait in a shaper (about 1.2 MB of a
// data channel's: a tenth of a second at 12.5 MB/s). A shaper is made for
// an allocation only once its rate binds.
const shapeQueue = 1024

// slotSize is a queued datagram's buffer: Pion's TURN reads at most 1,600
// bytes (its inbound MTU); larger ones get a buffer of their own.
const slotSize = 1600

type queued struct {
	buf []byte
	to  net.Addr
	due time.Time // when the bucket lets it go
}

// shaper sends datagrams to peers at a bucket's rate, from a bounded queue
// and one goroutine; buffers are recycled, so a datagram costs one copy
// and no allocation.
type shaper struct {
	pc      net.PacketConn
	log     *slog.Logger
	q       chan queued
	free    chan []byte
	done    chan struct{} // closed by close: stop waiting
	stopped chan struct{} // closed when run returns
	once    sync.Once

	pending  atomic.Int64 // queued or being sent
	dropped  atomic.Int64 // datagrams a full queue dropped
	lastWarn atomic.Int64 // unix nanoseconds of the last warning
}

func newShaper(pc net.PacketConn, log *slog.Logger) *shaper {
	s := &shaper{pc: pc, log: log, q: make(chan queued, shapeQueue), free: make(chan []byte, shapeQueue),
		done: make(chan struct{}), stopped: make(chan struct{})}
	go s.run()
	return s
}

// idle reports whether nothing waits in s (a nil shaper is idle), so that
// a datagram due now may go straight out without overtaking one.
func (s *shaper) idle() bool { return s == nil || s.pending.Load() == 0 }

// send queues a copy of p for to, to leave at due; a full queue drops it.
// One goroutine sends through a shaper (Pion's read loop of the
// allocation's client), so a datagram never overtakes another.
func (s *shaper) send(p []byte, to net.Addr, due time.Time) {
	if len(s.q) == cap(s.q) { // only run shrinks it: this stays true
		s.drop()
		return
	}
	var buf []byte
	select {
	case buf = <-s.free:
	default:
		buf = make([]byte, 0, slotSize)
	}
	if cap(buf) < len(p) {
		buf = make([]byte, 0, len(p))
	}
	buf = append(buf[:0], p...)
	s.pending.Add(1)
	select {
	case s.q <- queued{buf: buf, to: to, due: due}:
	default:
		s.pending.Add(-1)
		s.recycle(buf)
		s.drop()
	}
}

func (s *shaper) recycle(buf []byte) {
	select {
	case s.free <- buf:
	default:
	}
}

// warnEvery spaces the warnings of a dropping queue.
const warnEvery = 10 * time.Second

func (s *shaper) drop() {
	n := s.dropped.Add(1)
	now := time.Now().UnixNano()
	if last := s.lastWarn.Load(); now-last >= int64(warnEvery) && s.lastWarn.CompareAndSwap(last, now) {
		s.log.Warn("turn: a client sends faster than the relay rate and its queue is full: datagrams dropped",
			"dropped", n, "queue", shapeQueue)
	}
}

func (s *shaper) run() {
	defer close(s.stopped)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-s.done:
			return
		case d := <-s.q:
			if !pause(t, time.Until(d.due), s.done) {
				return
			}
			_, _ = s.pc.WriteTo(d.buf, d.to)
			s.pending.Add(-1)
			s.recycle(d.buf)
		}
	}
}

// close stops the shaper (what is queued is not sent) and waits for it.
func (s *shaper) close() {
	s.once.Do(func() { close(s.done) })
	<-s.stopped
}
