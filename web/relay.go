package web

// The relay between two pages: the page that shares asks its own instance
// (this handler, same origin) for a relay, and both pages then run the
// transfer protocol over it, sealed end to end with a key only they hold
// (web/static/relay.js). The instance moves the bytes from one page's
// POSTs to the other page's GET in memory, a bounded window at a time,
// and never writes them anywhere.
//
//	POST /lanft/relay  {"origin":"http://PEER-PAGE-ORIGIN"}  → {"a":"TOKEN","b":"TOKEN"}
//	     (from the sharing page; "a" is its own end, "b" the peer's)
//	GET  /lanft/relay/TOKEN/hello          → 204 (the peer's probe)
//	POST /lanft/relay/TOKEN/up?off=N       the end's bytes from stream offset N
//	     (bytes already had are skipped; it waits while the bytes before N
//	     are on their way in another POST, and while the window is full);
//	     200 with X-Lanft-Have: the bytes this direction has taken in all
//	GET  /lanft/relay/TOKEN/down?off=N     the other end's bytes from N, as
//	     they come; N must be where the last GET stopped (bytes read are
//	     gone: a cut GET ends the relay)
//
// Each end is bound to one client address: the creating page's, and for
// "b" the first address that uses it. An Origin header must be the end's
// origin (the creating page's, or the one it named for "b"); POSTs need
// one. Every refusal is the same empty 404. Relays are bounded in number
// in all and per creating address, expire when unused for relayIdle and
// after relayMaxAge in all.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Relay bounds.
const (
	relayWindow   = 8 << 20 // bytes held per direction, not yet read
	relayMaxBody  = 8 << 20 // one POST body
	relayMax      = 16      // relays alive at once
	relayPerAddr  = 4       // relays alive at once per creating address
	relayIdle     = 60 * time.Second
	relayMaxAge   = 6 * time.Hour
	relayWait     = 30 * time.Second // a POST waits this long for bytes before it, or for room
	relayPiece    = 64 << 10
	headerHave    = "X-Lanft-Have"
	relayPrefix   = "/lanft/relay"
	relayTokenLen = 32
)

// relays is every relay of one handler.
type relays struct {
	admits func(*http.Request) bool // the Host (and Origin) checks of the page itself
	mu     sync.Mutex
	ends   map[string]*relayEnd
	count  map[netip.Addr]int
	closed bool
}

func newRelays(admits func(*http.Request) bool) *relays {
	return &relays{admits: admits, ends: map[string]*relayEnd{}, count: map[netip.Addr]int{}}
}

// relay is one pair of ends and the two directions between them.
type relay struct {
	from    netip.Addr // the creating page's address
	tokens  [2]string
	started time.Time
	dirs    [2]*relayDir // 0: a→b, 1: b→a
}

// relayEnd is one page's end: it POSTs into dirs[up] and GETs dirs[1-up].
type relayEnd struct {
	r      *relay
	up     int
	origin string
	addr   netip.Addr // zero until first used (end b)
}

// relayDir is one direction's bytes in memory: [rd, have) are held.
type relayDir struct {
	mu      sync.Mutex
	buf     []byte
	rd      int64
	have    int64
	gen     int // the GET down being served
	closed  bool
	last    time.Time
	active  int
	changed chan struct{}
}

func newDir() *relayDir { return &relayDir{changed: make(chan struct{}), last: time.Now()} }

// signal wakes every waiter, under d.mu.
func (d *relayDir) signal() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// wait waits, under d.mu (released meanwhile), for a change or ctx.
func (d *relayDir) wait(ctx context.Context) error {
	ch := d.changed
	d.mu.Unlock()
	defer d.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *relayDir) close() {
	d.mu.Lock()
	d.closed, d.buf = true, nil
	d.signal()
	d.mu.Unlock()
}

// idle reports whether d had no request for relayIdle.
func (d *relayDir) idle(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.active == 0 && now.Sub(d.last) > relayIdle
}

func (d *relayDir) enter() {
	d.mu.Lock()
	d.active++
	d.mu.Unlock()
}

func (d *relayDir) leave() {
	d.mu.Lock()
	d.active--
	d.last = time.Now()
	d.mu.Unlock()
}

// ServeHTTP serves everything under relayPrefix.
func (rs *relays) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path == relayPrefix {
		rs.create(w, r)
		return
	}
	token, what, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, relayPrefix+"/"), "/")
	e := rs.admit(r, token)
	if e == nil {
		refuse(w)
		return
	}
	if o := r.Header.Get("Origin"); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Expose-Headers", headerHave)
		h.Set("Vary", "Origin")
	}
	switch {
	case r.Method == http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, POST")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && what == "hello":
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && what == "up" && r.Header.Get("Origin") != "":
		rs.up(w, r, e.r.dirs[e.up])
	case r.Method == http.MethodGet && what == "down":
		rs.down(w, r, e.r.dirs[1-e.up])
	default:
		refuse(w)
	}
}

// refuse is every refusal: an empty 404.
func refuse(w http.ResponseWriter) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNotFound)
}

// clientAddr is the address r comes from.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// hostAdmitted applies the page's Host check alone (the Origin of the
// peer's page is checked against the end's).
func (rs *relays) hostAdmitted(r *http.Request) bool {
	r2 := r.Clone(r.Context())
	r2.Header.Del("Origin")
	return rs.admits(r2)
}

// admit returns the end of token for r, or nil: unknown or expired token,
// another address, another origin, or a Host not ours.
func (rs *relays) admit(r *http.Request, token string) *relayEnd {
	if !rs.hostAdmitted(r) || len(token) != base64.RawURLEncoding.EncodedLen(relayTokenLen) {
		return nil
	}
	from := clientAddr(r)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.sweepLocked()
	e := rs.ends[token]
	if e == nil || time.Since(e.r.started) > relayMaxAge || !from.IsValid() {
		return nil
	}
	if o := r.Header.Get("Origin"); o != "" && o != e.origin {
		return nil
	}
	if !e.addr.IsValid() {
		e.addr = from // end b: bound to the first address that uses it
	}
	if e.addr != from {
		return nil
	}
	return e
}

// create makes a relay for the page that asks (same origin only).
func (rs *relays) create(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	var req struct{ Origin string }
	if r.Method != http.MethodPost || origin == "" || !rs.admits(r) ||
		json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req) != nil || !isOrigin(req.Origin) || !isOrigin(origin) {
		refuse(w)
		return
	}
	from := clientAddr(r)
	rel := &relay{from: from, started: time.Now(), dirs: [2]*relayDir{newDir(), newDir()}}
	rel.tokens = [2]string{newToken(), newToken()}
	rs.mu.Lock()
	rs.sweepLocked()
	if rs.closed || !from.IsValid() || len(rs.ends)/2 >= relayMax || rs.count[from] >= relayPerAddr {
		rs.mu.Unlock()
		http.Error(w, "this lanft relays as many transfers as it takes now: try again when one ends", http.StatusServiceUnavailable)
		return
	}
	rs.count[from]++
	rs.ends[rel.tokens[0]] = &relayEnd{r: rel, up: 0, origin: origin, addr: from}
	rs.ends[rel.tokens[1]] = &relayEnd{r: rel, up: 1, origin: req.Origin}
	rs.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"a": rel.tokens[0], "b": rel.tokens[1]})
}

// sweepLocked ends the relays that expired, under rs.mu.
func (rs *relays) sweepLocked() {
	now := time.Now()
	for _, e := range rs.ends {
		rel := e.r
		if e.up == 0 && (now.Sub(rel.started) > relayMaxAge || rel.dirs[0].idle(now) && rel.dirs[1].idle(now)) {
			rs.endLocked(rel)
		}
	}
}

// endLocked forgets rel and ends its directions, under rs.mu.
func (rs *relays) endLocked(rel *relay) {
	if rs.ends[rel.tokens[0]] == nil {
		return
	}
	delete(rs.ends, rel.tokens[0])
	delete(rs.ends, rel.tokens[1])
	if rs.count[rel.from]--; rs.count[rel.from] <= 0 {
		delete(rs.count, rel.from)
	}
	rel.dirs[0].close()
	rel.dirs[1].close()
}

// close ends every relay; later requests are refused.
func (rs *relays) close() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.closed = true
	for _, e := range rs.ends {
		rs.endLocked(e.r)
	}
}

func newToken() string {
	b := make([]byte, relayTokenLen)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func isOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.String() == o
}

func parseOff(r *http.Request) (int64, bool) {
	v := r.URL.Query().Get("off")
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n >= 0 && strconv.FormatInt(n, 10) == v
}

var errRelayEnded = errors.New("web: the relay ended")

// up takes one POST's bytes into d from its offset on.
func (rs *relays) up(w http.ResponseWriter, r *http.Request, d *relayDir) {
	off, ok := parseOff(r)
	if !ok || r.ContentLength > relayMaxBody {
		refuse(w)
		return
	}
	d.enter()
	defer d.leave()
	ctx, cancel := context.WithTimeout(r.Context(), relayWait)
	defer cancel()
	d.mu.Lock()
	for d.have < off && !d.closed { // the bytes before ours are on their way
		if d.wait(ctx) != nil {
			break
		}
	}
	have, gap := d.have, d.have < off || d.closed
	d.mu.Unlock()
	if gap {
		w.Header().Set(headerHave, strconv.FormatInt(have, 10))
		w.WriteHeader(http.StatusConflict)
		return
	}
	pos, err := off, error(nil)
	body := http.MaxBytesReader(w, r.Body, relayMaxBody)
	piece := make([]byte, relayPiece)
	for err == nil {
		var n int
		n, err = io.ReadFull(body, piece)
		if n > 0 {
			if e := d.put(r.Context(), pos, piece[:n]); e != nil {
				err = e
			}
			pos += int64(n)
		}
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		refuse(w)
		return
	}
	d.mu.Lock()
	have = d.have
	d.mu.Unlock()
	w.Header().Set(headerHave, strconv.FormatInt(have, 10))
	w.WriteHeader(http.StatusOK)
}

// put adds the bytes b at stream offset pos (skipping those d has),
// waiting while the window is full, up to relayWait (the other page stopped
// reading).
func (d *relayDir) put(ctx context.Context, pos int64, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, relayWait)
	defer cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		if d.closed {
			return errRelayEnded
		}
		if pos > d.have {
			return errors.New("web: a gap in the relay's stream")
		}
		if skip := d.have - pos; skip >= int64(len(b)) {
			return nil
		}
		if len(d.buf) < relayWindow {
			break
		}
		if err := d.wait(ctx); err != nil {
			return err
		}
	}
	b = b[d.have-pos:]
	d.buf = append(d.buf, b...)
	d.have += int64(len(b))
	d.last = time.Now()
	d.signal()
	return nil
}

// down streams d's bytes from off as they come, until the relay ends, a
// newer GET takes over or the client goes.
func (rs *relays) down(w http.ResponseWriter, r *http.Request, d *relayDir) {
	off, ok := parseOff(r)
	d.mu.Lock()
	if !ok || off != d.rd || d.closed {
		d.mu.Unlock()
		refuse(w)
		return
	}
	d.gen++
	gen := d.gen
	d.active++
	d.mu.Unlock()
	defer d.leave()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	out := make([]byte, 256<<10)
	ctx := r.Context()
	for {
		d.mu.Lock()
		for len(d.buf) == 0 && !d.closed && d.gen == gen && ctx.Err() == nil {
			d.wait(ctx)
		}
		if d.closed || d.gen != gen || ctx.Err() != nil {
			d.mu.Unlock()
			return
		}
		n := copy(out, d.buf)
		d.buf = d.buf[n:]
		if len(d.buf) == 0 {
			d.buf = d.buf[:0:0] // let the old array go
		}
		d.rd += int64(n)
		d.last = time.Now()
		d.signal()
		d.mu.Unlock()
		if _, err := w.Write(out[:n]); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}
