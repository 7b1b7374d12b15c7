package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lanft/lanft/internal/cpace"
	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/rtc"
	"github.com/lanft/lanft/signal"
	"github.com/lanft/lanft/transfer"
)

// hostile is a signaling host that can put itself in the middle: in MITM
// mode it answers every offer with a WebRTC peer of its own, makes its own
// offer to the callee, and relays the bytes between the two connections
// (so each end sees the host's DTLS certificate). It forwards the proofs it
// has: the offer's, and the callee's answer proof recorded from an earlier,
// honest session.
type hostile struct {
	t    testing.TB
	mitm atomic.Bool
	// impersonate: in MITM mode, sign the host's own descriptions with the
	// host's own device key instead of forwarding or replaying proofs (the
	// first-contact attack, which only pins or a shared code stop).
	impersonate atomic.Bool
	// tamper: relay honestly, except that offers get another DTLS
	// fingerprint (the start of a MITM that the callee must refuse).
	tamper atomic.Bool
	// dropLeaves: swallow leave messages (and so the callee's refusal).
	dropLeaves atomic.Bool
	// grind: in impersonate mode, reveal to the caller not the nonce the
	// host committed to but one ground, once everything is known, to make
	// the caller's verification code equal the callee's.
	grind atomic.Bool
	// older: relay honestly, but make the proofs of this message type
	// ("offer" or "answer") or the sharer's login ("login") look as an
	// older lanft makes them: no version, no commitment.
	older atomic.Value
	id    *identity.Identity
	up    websocket.Upgrader

	mu                     sync.Mutex
	conns                  map[string]*hconn
	answers                map[string]json.RawMessage // last answer proof by sender
	middles                map[string]*middle         // by caller name
	relayed                bytes.Buffer               // plaintext the host saw pass
	fromCaller, fromCallee bytes.Buffer               // the same, by direction
	wg                     sync.WaitGroup
	ctx                    context.Context
}

type hconn struct {
	ws   *websocket.Conn
	wmu  sync.Mutex
	name string
	meta json.RawMessage
}

type middle struct {
	toCaller, toCallee *rtc.Peer
	callerKey          []byte // from the caller's offer proof
	callerPrint        string
	nonce              []byte // the host's Ns' toward the caller, committed in its answer

	mu        sync.Mutex
	calleeKey []byte // from the callee's answer proof
	codes     []string
}

func newHostile(t *testing.T) (*hostile, string) {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hostile{t: t, id: identity.New(), conns: map[string]*hconn{}, answers: map[string]json.RawMessage{}, middles: map[string]*middle{}, ctx: ctx}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		cancel()
		srv.CloseClientConnections()
		srv.Close()
		h.mu.Lock()
		for _, m := range h.middles {
			m.toCaller.Close()
			m.toCallee.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h, "ws" + strings.TrimPrefix(srv.URL, "http") + signal.Path
}

func (h *hostile) send(to string, m signal.Message) {
	h.mu.Lock()
	c := h.conns[to]
	h.mu.Unlock()
	if c == nil {
		return
	}
	b, _ := signal.Encode(m)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.WriteMessage(websocket.TextMessage, b)
}

func (h *hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &hconn{ws: ws}
	defer ws.Close()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		m, err := signal.Decode(data)
		if err != nil {
			continue
		}
		if m.Type == signal.TypeLogin {
			if h.older.Load() == "login" {
				m.Meta = withoutFields(h.t, m.Meta, "proof")
			}
			c.name, c.meta = m.Name, m.Meta
			h.mu.Lock()
			h.conns[c.name] = c
			var users []string
			var peers []signal.PeerInfo
			for _, o := range h.conns {
				users = append(users, o.name)
				peers = append(peers, signal.PeerInfo{Name: o.name, Meta: o.meta})
			}
			h.mu.Unlock()
			ok := true
			h.send(c.name, signal.Message{Type: signal.TypeLogin, Success: &ok})
			h.send(c.name, signal.Message{Type: signal.TypeUserlist, Users: users, Peers: peers})
			for _, other := range users {
				if other != c.name {
					h.send(other, signal.Message{Type: signal.TypeUpdata, Action: signal.ActionLogin, Name: c.name, Meta: c.meta})
				}
			}
			continue
		}
		m.Name = c.name
		if h.mitm.Load() {
			h.intercept(m)
			continue
		}
		if m.Type == signal.TypeAnswer {
			h.mu.Lock()
			h.answers[m.Name] = m.Meta
			h.mu.Unlock()
		}
		if m.Type == signal.TypeOffer && h.tamper.Load() {
			m.Offer = swapFingerprint(h.t, m.Offer)
		}
		if m.Type == h.older.Load() {
			m.Meta = withoutFields(h.t, m.Meta, "v", "commit")
		}
		if m.Type == signal.TypeLeave && h.dropLeaves.Load() {
			continue
		}
		to := m.OtherName
		m.OtherName = ""
		h.send(to, m)
	}
}

// withoutFields removes fields from a JSON object.
func withoutFields(t testing.TB, obj json.RawMessage, fields ...string) json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Errorf("not a JSON object: %s", obj)
		return obj
	}
	for _, f := range fields {
		delete(m, f)
	}
	b, _ := json.Marshal(m)
	return b
}

// swapFingerprint replaces the DTLS fingerprint of an SDP payload with
// another one, as a host putting itself in the middle must.
func swapFingerprint(t testing.TB, payload json.RawMessage) json.RawMessage {
	var d struct {
		Type string `json:"type"`
		SDP  string `json:"sdp"`
	}
	if err := json.Unmarshal(payload, &d); err != nil {
		t.Errorf("offer payload: %v", err)
		return payload
	}
	lines := strings.Split(d.SDP, "\r\n")
	swapped := false
	for i, line := range lines {
		if strings.HasPrefix(line, "a=fingerprint:sha-256 ") {
			fp := []byte(line)
			last := len(fp) - 1
			if fp[last] == '0' {
				fp[last] = '1'
			} else {
				fp[last] = '0'
			}
			lines[i], swapped = string(fp), true
		}
	}
	if !swapped {
		t.Errorf("no fingerprint in the offer")
	}
	d.SDP = strings.Join(lines, "\r\n")
	b, _ := json.Marshal(d)
	return b
}

func (h *hostile) intercept(m signal.Message) {
	cfg := rtc.Config{Interfaces: []string{"lo"}}
	caller, callee := m.Name, m.OtherName
	switch m.Type {
	case signal.TypeOffer:
		offerProof := m.Meta
		h.mu.Lock()
		replayed := h.answers[callee]
		h.mu.Unlock()
		offerPrint, _ := rtc.SDPFingerprint(m.Offer)
		var callerProof identity.Proof
		json.Unmarshal(offerProof, &callerProof)
		callerKey, _ := base64.StdEncoding.DecodeString(callerProof.Key)
		mid := &middle{callerKey: callerKey, callerPrint: offerPrint, nonce: identity.NewNonce()}
		var toCaller, toCallee *rtc.Peer
		var err error
		toCaller, err = rtc.NewPeer(cfg, func(s rtc.Signal) error {
			msg := signal.Message{Type: s.Kind, Name: callee}
			switch s.Kind {
			case rtc.KindAnswer:
				msg.Answer, msg.Meta = s.Payload, replayed
				if h.impersonate.Load() {
					msg.Meta, _ = json.Marshal(h.id.Prove(identity.Statement{Kind: s.Kind, From: callee, To: caller,
						Fingerprint: toCaller.LocalFingerprint(), OfferPrint: offerPrint, Commit: identity.Commit(mid.nonce)}))
				}
			case rtc.KindCandidate:
				msg.Candidate = s.Payload
			}
			h.send(caller, msg)
			return nil
		})
		if err != nil {
			h.t.Error(err)
			return
		}
		toCallee, err = rtc.NewPeer(cfg, func(s rtc.Signal) error {
			msg := signal.Message{Type: s.Kind, Name: caller}
			switch s.Kind {
			case rtc.KindOffer:
				msg.Offer, msg.Meta = s.Payload, offerProof
				if h.impersonate.Load() {
					msg.Meta, _ = json.Marshal(h.id.Prove(identity.Statement{Kind: s.Kind, From: caller, To: callee,
						Fingerprint: toCallee.LocalFingerprint()}))
				}
			case rtc.KindCandidate:
				msg.Candidate = s.Payload
			}
			h.send(callee, msg)
			return nil
		})
		if err != nil {
			h.t.Error(err)
			return
		}
		mid.toCaller, mid.toCallee = toCaller, toCallee
		h.mu.Lock()
		h.middles[caller] = mid
		h.mu.Unlock()
		toCaller.Handle(rtc.Signal{Kind: rtc.KindOffer, Payload: m.Offer})
		h.wg.Go(func() {
			ctx, cancel := context.WithTimeout(h.ctx, 20*time.Second)
			defer cancel()
			var a, b *rtc.Stream
			var ea, eb error
			var wg sync.WaitGroup
			wg.Go(func() { a, ea = toCaller.Accept(ctx) })
			wg.Go(func() { b, eb = toCallee.Dial(ctx) })
			wg.Wait()
			if ea != nil || eb != nil {
				toCaller.Close()
				toCallee.Close()
				return
			}
			if h.impersonate.Load() && !h.terminate(mid, a, b) {
				a.Close()
				b.Close()
				return
			}
			// Relay, keeping what passes: the host reads everything.
			var relay sync.WaitGroup
			relay.Go(func() { io.Copy(b, io.TeeReader(a, h.sink(&h.fromCaller))); b.Close() })
			relay.Go(func() { io.Copy(a, io.TeeReader(b, h.sink(&h.fromCallee))); a.Close() })
			relay.Wait()
		})
	case signal.TypeAnswer, signal.TypeCandidate:
		h.mu.Lock()
		mid, fromCaller := h.middles[m.Name], true
		if mid == nil {
			mid, fromCaller = h.middles[m.OtherName], false
		}
		h.mu.Unlock()
		if mid == nil {
			return
		}
		s, _ := rtcSignal(m)
		if m.Type == signal.TypeAnswer {
			var p identity.Proof
			json.Unmarshal(m.Meta, &p)
			key, _ := base64.StdEncoding.DecodeString(p.Key)
			mid.mu.Lock()
			mid.calleeKey = key
			mid.mu.Unlock()
		}
		if fromCaller {
			mid.toCaller.Handle(s)
		} else {
			mid.toCallee.Handle(s)
		}
	}
}

// terminate runs the start of the preamble on both of the host's
// connections as a host in the middle must, since the nonces do not pass
// through unchanged: the hellos are relayed, the caller's Nr goes on to
// the callee as the host's own Nr', and the callee's Ns is answered toward
// the caller with the host's committed nonce, or with grind set, the
// reveal that makes the caller's code equal the callee's. It records the
// codes the host computes for both ends.
func (h *hostile) terminate(mid *middle, caller, callee io.ReadWriter) bool {
	relay := func(from io.Reader, to io.Writer, n int, dir *bytes.Buffer) []byte {
		b := make([]byte, n)
		if _, err := io.ReadFull(from, b); err != nil {
			return nil
		}
		h.sink(dir).Write(b)
		if to != nil {
			if _, err := to.Write(b); err != nil {
				return nil
			}
		}
		return b
	}
	hello := len(preambleMagic) + 1
	if relay(caller, callee, hello, &h.fromCaller) == nil || relay(callee, caller, hello, &h.fromCallee) == nil {
		return false
	}
	nr := relay(caller, callee, identity.NonceSize, &h.fromCaller) // Nr' = Nr: any other choice is no better
	if nr == nil {
		return false
	}
	ns := relay(callee, nil, identity.NonceSize, &h.fromCallee)
	if ns == nil {
		return false
	}
	// Now the host knows every input of both codes.
	calleePrint, _ := mid.toCallee.RemoteFingerprint()
	mid.mu.Lock()
	calleeKey := mid.calleeKey
	mid.mu.Unlock()
	atCallee := identity.VerificationCode(calleeKey, h.id.Public(), calleePrint, mid.toCallee.LocalFingerprint(), nr, ns)
	atCaller := func(reveal []byte) string {
		return identity.VerificationCode(mid.callerKey, h.id.Public(), mid.callerPrint, mid.toCaller.LocalFingerprint(), nr, reveal)
	}
	reveal := mid.nonce
	if h.grind.Load() {
		// About 10^6 tries; bounded well within the caller's nonceWait
		// (a loaded machine may not find one in time: it then reveals
		// its best, which the caller refuses all the same).
		reveal = make([]byte, identity.NonceSize)
		deadline := time.Now().Add(nonceWait / 2)
		for k := uint64(1); atCaller(reveal) != atCallee && time.Now().Before(deadline); k++ {
			binary.BigEndian.PutUint64(reveal, k)
		}
	}
	mid.mu.Lock()
	mid.codes = []string{atCaller(reveal), atCallee}
	mid.mu.Unlock()
	_, err := caller.Write(reveal)
	return err == nil
}

// codes are the verification codes the host computed for the caller and
// the callee of its last connection in the middle.
func (h *hostile) codes(caller string) (atCaller, atCallee string) {
	h.mu.Lock()
	mid := h.middles[caller]
	h.mu.Unlock()
	if mid == nil {
		return "", ""
	}
	mid.mu.Lock()
	defer mid.mu.Unlock()
	if len(mid.codes) != 2 {
		return "", ""
	}
	return mid.codes[0], mid.codes[1]
}

type lockedWriter struct {
	h   *hostile
	dir *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	if w.h.relayed.Len() < 1<<20 {
		w.h.relayed.Write(p)
		w.dir.Write(p)
	}
	return len(p), nil
}

func (h *hostile) sink(dir *bytes.Buffer) io.Writer { return lockedWriter{h, dir} }

func (h *hostile) saw(b []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return bytes.Contains(h.relayed.Bytes(), b)
}

var loopbackRTC = rtc.Config{Interfaces: []string{"lo"}}

func testShare(t *testing.T, url, name string, files map[string]string, mutate func(*Config)) {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for n, body := range files {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	src, err := transfer.NewSource(ctx, paths, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Hosts: StaticHost(url), Name: name, RTC: loopbackRTC}
	if mutate != nil {
		mutate(&cfg)
	}
	online := make(chan struct{}, 1)
	events := cfg.Events
	cfg.Events = func(e Event) {
		if events != nil {
			events(e)
		}
		if e.Kind == EventOnline {
			select {
			case online <- struct{}{}:
			default:
			}
		}
	}
	done := make(chan error, 1)
	go func() { done <- Share(ctx, cfg, src) }()
	select {
	case <-online:
	case err := <-done:
		t.Fatalf("share ended before logging in: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("share did not log in")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("share: %v", err)
		}
	})
}

func testReceive(t *testing.T, url, name, from, dir string, mutate func(*Config)) (*transfer.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := Config{Hosts: StaticHost(url), Name: name, RTC: loopbackRTC}
	if mutate != nil {
		mutate(&cfg)
	}
	return Receive(ctx, cfg, ReceiveConfig{From: from, Wait: 10 * time.Second, RetryFor: time.Second,
		Transfer: transfer.ReceiveOptions{Dir: dir}})
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("%s holds %d entries, want nothing written", dir, len(entries))
	}
}

// TestHostInTheMiddleWithoutChecks shows the attack is real: two plain
// WebRTC peers (no lanft identity) talk through the hostile host, which
// reads every byte, and neither notices (Pion's own fingerprint check
// passes, because the host rewrote the descriptions).
func TestHostInTheMiddleWithoutChecks(t *testing.T) {
	h, url := newHostile(t)
	h.mitm.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(name string) *signal.Client {
		c, err := signal.Dial(ctx, signal.ClientConfig{URL: url, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go c.Run(ctx)
		return c
	}
	alice, bob := dial("alice"), dial("bob")
	plain := func(c *signal.Client, to string) *rtc.Peer {
		p, err := rtc.NewPeer(loopbackRTC, func(s rtc.Signal) error {
			m := signal.Message{Type: s.Kind, OtherName: to}
			switch s.Kind {
			case rtc.KindOffer:
				m.Offer = s.Payload
			case rtc.KindAnswer:
				m.Answer = s.Payload
			default:
				m.Candidate = s.Payload
			}
			return c.Send(m)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		go func() {
			for {
				select {
				case m := <-c.Messages():
					if s, ok := rtcSignal(m); ok {
						p.Handle(s)
					}
				case <-ctx.Done():
					return
				}
			}
		}()
		return p
	}
	pa, pb := plain(alice, "bob"), plain(bob, "alice")
	var sb *rtc.Stream
	accepted := make(chan error, 1)
	go func() {
		var err error
		sb, err = pb.Accept(ctx)
		accepted <- err
	}()
	sa, err := pa.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	secret := []byte("the secret payload")
	if _, err := sa.Write(secret); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(secret))
	if _, err := io.ReadFull(sb, got); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("got %q, %v", got, err)
	}
	fa, _ := pa.RemoteFingerprint()
	if fa == pb.LocalFingerprint() {
		t.Fatal("alice is connected to bob's certificate: the host was not in the middle")
	}
	if !h.saw(secret) {
		t.Fatal("the host did not see the bytes it relayed")
	}
}

// TestHostInTheMiddleIsRefused: the same host against lanft nodes. It
// forwards the offer's proof and replays the sharer's answer proof from an
// earlier honest session; the receiver refuses, says why, writes nothing.
func TestHostInTheMiddleIsRefused(t *testing.T) {
	h, url := newHostile(t)
	testShare(t, url, "sharer", map[string]string{"a.txt": "the secret payload"}, nil)

	// An honest session first: it works, and the host records proofs.
	honest := t.TempDir()
	if _, err := testReceive(t, url, "r1", "sharer", honest, nil); err != nil {
		t.Fatalf("honest transfer: %v", err)
	}

	h.mitm.Store(true)
	dir := t.TempDir()
	_, err := testReceive(t, url, "r1", "sharer", dir, nil)
	if !errors.Is(err, identity.ErrUnverified) {
		t.Fatalf("got %v, want an error wrapping %v", err, identity.ErrUnverified)
	}
	if !strings.Contains(err.Error(), "could not be verified") {
		t.Fatalf("error %q does not say the peer could not be verified", err)
	}
	emptyDir(t, dir)
	if h.saw([]byte("the secret payload")) {
		t.Fatal("the host in the middle saw the file")
	}
}

// TestHostInTheMiddleCannotMatchTheCodes: a host in the middle at first
// contact (no pins, no shared code) terminates both connections with its
// own key and certificates, signs its own proofs, and does its best to
// make the two screens show the same verification code. It commits to its
// nonce toward the receiver before it sees the receiver's, so the honest
// reveal gives the receiver a code of its own: the two codes differ (each
// attempt matches with odds 10^-6, so three attempts fail falsely with
// odds 3*10^-6). Grinding the reveal once it knows every input makes the
// codes equal (about 10^6 tries, a second or so), and the receiver
// refuses it, since it does not open the commitment, and shows no code.
func TestHostInTheMiddleCannotMatchTheCodes(t *testing.T) {
	h, url := newHostile(t)
	var mu sync.Mutex
	var sharerCodes []string
	testShare(t, url, "sharer", map[string]string{"a.txt": "first contact"}, func(c *Config) {
		c.Mode = ModeDataChannel
		c.Events = func(e Event) {
			if e.Kind == EventVerify {
				mu.Lock()
				sharerCodes = append(sharerCodes, e.Code)
				mu.Unlock()
			}
		}
	})
	h.mitm.Store(true)
	h.impersonate.Store(true)
	lastSharerCode := func(n int) string {
		mu.Lock()
		defer mu.Unlock()
		if len(sharerCodes) != n {
			t.Fatalf("the sharer showed %d codes, want %d", len(sharerCodes), n)
		}
		return sharerCodes[n-1]
	}
	receive := func() (code string, err error) {
		var codes []string
		_, err = testReceive(t, url, "receiver", "sharer", t.TempDir(), func(c *Config) {
			c.Mode = ModeDataChannel
			c.Events = func(e Event) {
				if e.Kind == EventVerify {
					codes = append(codes, e.Code)
				}
			}
		})
		if len(codes) > 1 {
			t.Fatalf("the receiver showed %d codes in one attempt", len(codes))
		}
		if len(codes) == 1 {
			code = codes[0]
		}
		return code, err
	}

	n := 0
	for attempt := range 3 {
		code, err := receive()
		n++
		if err != nil {
			t.Fatalf("attempt %d: the host in the middle did not get through (the test shows nothing): %v", attempt, err)
		}
		atSharer := lastSharerCode(n)
		hostR, hostS := h.codes("receiver")
		if code == "" || code != hostR || atSharer != hostS {
			t.Fatalf("attempt %d: the receiver showed %q, the sharer %q; the host computed %q and %q", attempt, code, atSharer, hostR, hostS)
		}
		if code == atSharer {
			t.Fatalf("attempt %d: both screens show %s through a host in the middle", attempt, code)
		}
		t.Logf("attempt %d: the receiver shows %s, the sharer %s", attempt, code, atSharer)
	}

	h.grind.Store(true)
	for attempt := range 2 {
		code, err := receive()
		n++
		if !errors.Is(err, identity.ErrUnverified) || !strings.Contains(err.Error(), "does not open the commitment") {
			t.Fatalf("ground reveal %d: got %v, want %v saying the reveal does not open the commitment", attempt, err, identity.ErrUnverified)
		}
		if code != "" {
			t.Fatalf("ground reveal %d: the receiver showed code %s before refusing", attempt, code)
		}
		hostR, hostS := h.codes("receiver")
		atSharer := lastSharerCode(n)
		if hostS != atSharer {
			t.Fatalf("ground reveal %d: the sharer shows %q, the host computed %q", attempt, atSharer, hostS)
		}
		if hostR != atSharer {
			t.Logf("ground reveal %d: the host found no matching reveal in time; refused: %v", attempt, err)
			continue
		}
		t.Logf("ground reveal %d: would have shown %s on both screens; refused: %v", attempt, hostR, err)
	}
}

// TestChangedKeyIsRefusedUnlessAccepted: a sharer name seen before with
// another device key is refused, with both device ids in the message;
// --accept-new-key lets it through and re-pins.
func TestChangedKeyIsRefusedUnlessAccepted(t *testing.T) {
	url := testSignal(t)
	pinDir := t.TempDir()
	pins := func(c *Config) { c.Pins = identity.OpenPins(pinDir) }

	first := identity.New()
	testShare(t, url, "laptop", map[string]string{"a.txt": "one"}, func(c *Config) { c.Identity = first; c.Name = "laptop" })
	if _, err := testReceive(t, url, "desk", "laptop", t.TempDir(), pins); err != nil {
		t.Fatalf("first contact: %v", err)
	}

	// The same name comes back with another key (a new install, or an impostor).
	second := identity.New()
	testShare(t, url, "laptop2", map[string]string{"b.txt": "two"}, func(c *Config) { c.Identity = second; c.Name = "laptop2" })
	// Re-pin the second sharer's name to the first key to stage the change.
	p := identity.OpenPins(pinDir)
	if err := p.Replace("laptop2", first.Public()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err := testReceive(t, url, "desk", "laptop2", dir, pins)
	if !errors.Is(err, identity.ErrKeyChanged) {
		t.Fatalf("got %v, want %v", err, identity.ErrKeyChanged)
	}
	for _, want := range []string{first.DeviceID(), second.DeviceID(), "--accept-new-key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	emptyDir(t, dir)

	if _, err := testReceive(t, url, "desk", "laptop2", dir, func(c *Config) { pins(c); c.AcceptNewKey = true }); err != nil {
		t.Fatalf("with AcceptNewKey: %v", err)
	}
	if isNew, err := p.Check("laptop2", second.Public()); err != nil || isNew {
		t.Fatalf("after accepting, the new key is not pinned: new=%v err=%v", isNew, err)
	}
}

// TestSharedCode: the right code transfers; a wrong code or a missing one
// fails fast with a clear error and writes nothing.
func TestSharedCode(t *testing.T) {
	url := testSignal(t)
	testShare(t, url, "vault", map[string]string{"s.txt": "coded"}, func(c *Config) { c.Code = "purple-river-seven" })

	dir := t.TempDir()
	if _, err := testReceive(t, url, "ok", "vault", dir, func(c *Config) { c.Code = "purple-river-seven" }); err != nil {
		t.Fatalf("right code: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "s.txt")); err != nil || string(b) != "coded" {
		t.Fatalf("got %q, %v", b, err)
	}
	tests := []struct {
		name, code, want string
	}{
		{"wrong code", "purple-river-eight", "does not match"},
		{"no code", "", "requires a shared code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			start := time.Now()
			_, err := testReceive(t, url, "guess", "vault", dir, func(c *Config) { c.Code = tt.code })
			if !errors.Is(err, ErrCode) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %v saying %q", err, ErrCode, tt.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v to fail", d)
			}
			emptyDir(t, dir)
		})
	}
}

// TestCodeGivesTheHostNothingToTestOffline: a host in the middle of a
// --code transfer relays the whole code exchange (it terminated DTLS, so it
// reads Ya, Yb and both confirmations in clear). The transfer is refused,
// and the host cannot use what it saw to check a guess of the code offline,
// not even the right one: checking needs the shared point K = ya*Yb, and
// ya never leaves the receiver (see internal/cpace). Its only move is to
// run CPace itself with one guess per connection, which the peers see fail.
func TestCodeGivesTheHostNothingToTestOffline(t *testing.T) {
	const code = "amber-falcon-42"
	h, url := newHostile(t)
	testShare(t, url, "vault", map[string]string{"s.txt": "coded"}, func(c *Config) { c.Code = code })
	h.mitm.Store(true)
	h.impersonate.Store(true) // gets it past the identity check (first contact, no pins)
	dir := t.TempDir()
	_, err := testReceive(t, url, "guest", "vault", dir, func(c *Config) { c.Code = code })
	if !errors.Is(err, ErrCode) || !strings.Contains(err.Error(), "in the middle") {
		t.Fatalf("got %v, want the code check to fail and say someone may be in the middle", err)
	}
	emptyDir(t, dir)

	// What the host saw from the receiver: preamble, Nr, Ya, confirmation.
	h.mu.Lock()
	seen := bytes.Clone(h.fromCaller.Bytes())
	h.mu.Unlock()
	r := bytes.NewReader(seen)
	hello := make([]byte, len(preambleMagic)+1)
	if _, err := io.ReadFull(r, hello); err != nil || !bytes.HasPrefix(hello, preambleMagic) {
		t.Fatalf("host did not see the preamble (%d bytes seen)", len(seen))
	}
	if _, err := io.ReadFull(r, make([]byte, identity.NonceSize)); err != nil {
		t.Fatalf("host did not see the receiver's nonce: %v", err)
	}
	ya, err := readChunk(r)
	if err != nil {
		t.Fatalf("host did not see Ya: %v", err)
	}
	// The host's best offline check of a guess: derive an ISK with the
	// guess against the captured Ya and compare it with the receiver's
	// confirmation. No guess checks out, the right one included.
	mac, err := readChunk(r)
	if err != nil || len(mac) != cpace.ConfirmSize {
		t.Fatalf("host did not see the receiver's confirmation: %d bytes, %v", len(mac), err)
	}
	guesses := []string{"amber-falcon-41", code, "amber-falcon-43", ""}
	for _, g := range guesses {
		party, _, err := cpace.Start([]byte(g), []byte("lanft-code-v1"), nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		isk, err := party.Finish(ya, nil, false)
		if err != nil {
			continue
		}
		for _, label := range []string{"lanft-confirm-receiver", "lanft-confirm-sharer"} {
			if cpace.Equal(cpace.Confirm(isk, label), mac) {
				t.Fatalf("guess %q checks out offline", g)
			}
		}
	}
	if bytes.Contains(seen, []byte(code)) {
		t.Fatal("the code itself crossed the wire")
	}
}
