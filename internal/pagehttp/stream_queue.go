package pagehttp

import "sync"

// piece is bytes of the page's stream in a buffer read from a POST body.
type piece struct {
	b    []byte
	back *[postChunk]byte // the buffer b is in, for the pool; nil if not pooled
}

// queue is bytes of the stream in pieces: moving bytes in and out of it
// copies nothing but what Read hands out.
type queue struct {
	ps []piece
	n  int // bytes in all
}

func (q *queue) push(p piece) {
	q.ps = append(q.ps, p)
	q.n += len(p.b)
}

// read copies the first bytes into b and drops them.
func (q *queue) read(b []byte, pool *sync.Pool) int {
	n := 0
	for n < len(b) && len(q.ps) > 0 {
		k := copy(b[n:], q.ps[0].b)
		n += k
		q.discardFirst(k, pool)
	}
	q.n -= n
	return n
}

// skip drops the first n bytes.
func (q *queue) skip(n int, pool *sync.Pool) {
	q.n -= n
	for n > 0 && len(q.ps) > 0 {
		k := min(n, len(q.ps[0].b))
		n -= k
		q.discardFirst(k, pool)
	}
}

// discardFirst drops k bytes of the first piece, and the piece once empty.
// q.n is the caller's.
func (q *queue) discardFirst(k int, pool *sync.Pool) {
	q.ps[0].b = q.ps[0].b[k:]
	if len(q.ps[0].b) == 0 {
		recycle(q.ps[0], pool)
		q.ps[0] = piece{}
		q.ps = q.ps[1:]
		if len(q.ps) == 0 {
			q.ps = nil
		}
	}
}

// moveTo moves every piece to dst.
func (q *queue) moveTo(dst *queue) {
	for _, p := range q.ps {
		dst.push(p)
	}
	q.ps, q.n = nil, 0
}

// clear drops everything.
func (q *queue) clear(pool *sync.Pool) {
	for _, p := range q.ps {
		recycle(p, pool)
	}
	q.ps, q.n = nil, 0
}

func recycle(p piece, pool *sync.Pool) {
	if p.back != nil {
		pool.Put(p.back)
	}
}

// newPool returns a pool of POST read buffers.
func newPool() *sync.Pool {
	return &sync.Pool{New: func() any { return new([postChunk]byte) }}
}
