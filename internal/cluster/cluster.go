// Package cluster lets several signaling servers act as one service over
// NATS. It holds who is logged in where in a JetStream key-value bucket
// (names are claimed there atomically), carries logins, logouts and relays
// between nodes on one core NATS subject, and keeps each node's lease.
//
// Ordering: a node publishes a user's login, that user's relays and its
// logout on one subject from one connection, so every other node sees them
// in that order (NATS keeps the order of one publisher on one subject).
//
// Leases: a node renews its lease key every second (Config.Heartbeat says
// more) and publishes a heartbeat every Heartbeat (250ms). A node whose
// lease writes fail for LeaseTTL (it lost the JetStream quorum, a
// partition) calls the handler's Reset: its clients are closed and log in
// again elsewhere. A node is dead to the others when either
//
//   - it was not heard for DeadAfter (> LeaseTTL: it has fenced itself by
//     then, whatever happened to it), or
//   - it was not heard for GoneAfter (1s) and NATS says it is gone: a
//     request to its own subject <prefix>.node.<id>, which it answers, gets
//     "no responders" twice in a row, a heartbeat apart. NATS removes that
//     interest only when the node's connection closed (its process died,
//     its server's routes dropped): a node that is slow or paused (SIGSTOP),
//     a JetStream leader election, or a partition without a reset leave the
//     interest in place, so the request times out instead, and only the
//     lease's DeadAfter applies. The fast way is taken only by a node that
//     is itself part of the service (its lease renewed lately, or another
//     node heard), and only for nodes whose heartbeats say they answer.
//
// Each survivor then tells its own clients that the dead node's users went
// offline and deletes their names, so they can be taken again. A node
// declared dead while it lives sees its lease gone at its next renewal and
// fences itself. A node serves logins only once it holds its lease, has
// read the shared state and has heard every other lease holder since (or
// declared it dead): until then NATS may not carry their events to each
// other yet (Ready). Having read the state anew (at start, after a fence)
// it measures the others' silence from then, not from before: while it
// was cut off, their heartbeats could not reach it.
//
// Membership: a node is a member while it holds a lease, the key n.<node>
// in the bucket, written before it publishes anything and deleted when the
// others declare it dead. A node acts only on events of members, and on
// bucket entries of members: an event or entry of any other node id
// (forged, or a straggler of a node already declared dead) changes nothing
// (Stats.Ignored counts them). The first event of a node not yet known is
// checked against the stream leader, not a replica that may lag behind a
// lease just written; while the lease cannot be read (a JetStream leader
// election, as when a partition heals) that node's events are held, in
// order and bounded, until it can. The lease is only as strong as who may write the
// bucket: that is everyone who can reach the NATS behind it. Embedded (see
// EmbeddedConfig), that is the processes of the nodes (each server takes
// only its own process's random password) and servers that route in with
// the cluster's secret; with an external NATS, whoever its accounts and permissions let
// write the bucket. Within that circle a node is trusted (an insider who
// can write leases, or who forges an event in a member's name, is not
// stopped); the check keeps an insider who may only publish, a process that
// never held a lease and a dead node's stragglers from changing anything.
package cluster

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/lanft/lanft/signal"
)

var _ signal.Cluster = (*Cluster)(nil)

// ErrNotReady is returned by Claim while the node does not hold its lease
// or has not read the shared state yet.
var ErrNotReady = errors.New("cluster: this node is not part of the service right now")

// Config configures a Cluster. Conn is required.
type Config struct {
	// Conn is a connection to NATS with JetStream; the caller owns it. It
	// should be made with nats.NoEcho().
	Conn   *nats.Conn
	Logger *slog.Logger
	// Prefix names the subjects and the bucket ("lanft").
	Prefix string
	// Replicas of the key-value bucket (1); 3 on a three-server cluster.
	Replicas int
	// Heartbeat is how often a heartbeat is sent (250ms); the lease is
	// renewed every second (at most LeaseTTL/8, at least every Heartbeat).
	// LeaseTTL is how long a node keeps serving without renewing its lease
	// (11s: longer than a JetStream leader election, up to 9s, so that
	// losing one NATS server fences nobody); DeadAfter how long the others
	// wait for a silent node's heartbeat before they declare it dead
	// (LeaseTTL + 3s); GoneAfter how long a node must be silent before
	// NATS's word that it is gone makes it dead (4 heartbeats, at least 1s).
	// Every node of a service should use the same values.
	Heartbeat time.Duration
	LeaseTTL  time.Duration
	DeadAfter time.Duration
	GoneAfter time.Duration
	// Timeout bounds one JetStream request (2s).
	Timeout time.Duration
	// RelayIP is this node's public TURN relay address, if it relays.
	RelayIP netip.Addr
	// Current, if set, reports whether this node's own NATS server holds
	// a current copy of the shared state (Embedded.Current). A node then
	// starts serving only once it does: one restarted with an empty copy
	// that served at once would tell a rolling restart, which waits for
	// /healthz, to go on to the next node while its copy still catches
	// up, and the two left would hold one current copy, no quorum.
	Current func() bool
}

// Cluster is one node's membership in the service: the signal.Cluster of
// a signaling server, which hands Run its signal.ClusterHandler.
type Cluster struct {
	cfg    Config
	renew  time.Duration // how often the lease is renewed
	node   string
	subj   string
	bucket string

	ready     atomic.Bool // the view is current: the handler is told what the others do
	serving   atomic.Bool // every member was heard since the view was read: logins are served
	resync    atomic.Bool // read the state anew, from no clients (after a fence or at start)
	refresh   atomic.Bool // read the state anew, keeping the clients (after a reconnect)
	processed atomic.Uint64
	caughtUp  atomic.Bool  // Config.Current said yes since serving last stopped
	holding   atomic.Bool  // the lease is held: heartbeats go out
	renewedAt atomic.Int64 // Unix nanoseconds of the last lease renewal that worked

	mu       sync.Mutex
	kv       jetstream.KeyValue
	sub      *nats.Subscription
	progress chan struct{}                         // closed and replaced when an event is handled
	lastSeen map[string]time.Time                  // node -> when last heard
	members  map[string]bool                       // nodes known to hold a lease
	warned   map[string]bool                       // nodes whose ignored events were logged
	paused   map[string]time.Time                  // node -> no lease look-up before then (one failed)
	held     map[string][]event                    // the event loop's own: events of nodes whose lease could not be read yet
	byNode   map[string]map[string]signal.Presence // node -> kv key -> user
	probes   map[string]bool                       // members whose heartbeats say they answer on their own subject
	unheard  map[string]bool                       // members not heard since the view was read anew (see Ready)
	h        signal.ClusterHandler
	stats    Stats
}

// Stats are counters for metrics. Ignored counts events from nodes that
// hold no lease (see Membership in the package doc).
type Stats struct {
	Published, Received, Errors, DeadNodes, Ignored uint64
	LastLag                                         time.Duration // the last JetStream request's round trip
}

// Defaults of Config.
const (
	DefaultHeartbeat = 250 * time.Millisecond
	DefaultLeaseTTL  = 11 * time.Second
)

// New checks cfg and returns a node with a fresh id.
func New(cfg Config) (*Cluster, error) {
	if cfg.Conn == nil {
		return nil, errors.New("cluster: no NATS connection")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "lanft"
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.DeadAfter == 0 {
		cfg.DeadAfter = cfg.LeaseTTL + 3*time.Second
	}
	if cfg.GoneAfter == 0 {
		cfg.GoneAfter = max(4*cfg.Heartbeat, time.Second)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.DeadAfter <= cfg.LeaseTTL {
		return nil, errors.New("cluster: DeadAfter must exceed LeaseTTL, or a cut-off node would serve after the others declared it dead")
	}
	if cfg.Heartbeat < 10*time.Millisecond || cfg.Heartbeat > cfg.LeaseTTL/4 {
		return nil, fmt.Errorf("cluster: the heartbeat (%v) must be at least 10ms and at most a quarter of the lease (%v)", cfg.Heartbeat, cfg.LeaseTTL)
	}
	if cfg.GoneAfter < 2*cfg.Heartbeat {
		return nil, fmt.Errorf("cluster: GoneAfter (%v) must be at least two heartbeats (%v): one late heartbeat is no silence", cfg.GoneAfter, 2*cfg.Heartbeat)
	}
	return &Cluster{
		cfg:      cfg,
		renew:    max(cfg.Heartbeat, min(time.Second, cfg.LeaseTTL/8)),
		probes:   make(map[string]bool),
		unheard:  make(map[string]bool),
		node:     nuid.Next(),
		subj:     cfg.Prefix + ".ev",
		bucket:   cfg.Prefix + "_presence",
		progress: make(chan struct{}),
		lastSeen: make(map[string]time.Time),
		members:  make(map[string]bool),
		warned:   make(map[string]bool),
		paused:   make(map[string]time.Time),
		held:     make(map[string][]event),
		byNode:   make(map[string]map[string]signal.Presence),
	}, nil
}

// Node is this node's id, new for every process.
func (c *Cluster) Node() string { return c.node }

// Ready reports whether the node serves logins: it holds its lease, has a
// current view, and has heard every other member since it read that view
// (or declared it dead). Before that, NATS may not carry its events to a
// member or theirs to it yet (its server's routes still forming, after a
// start or a healed partition): a user's relays would be lost. With
// Config.Current, its NATS server must also have caught up (once, each
// time it starts serving).
func (c *Cluster) Ready() bool {
	return c.ready.Load() && c.serving.Load() && c.current()
}

// current reports whether Config.Current said yes since serving last
// stopped; it is asked until it does, then no more.
func (c *Cluster) current() bool {
	if c.cfg.Current == nil || c.caughtUp.Load() {
		return true
	}
	if !c.cfg.Current() {
		return false
	}
	if !c.caughtUp.Swap(true) {
		c.cfg.Logger.Info("cluster: this node's NATS server holds a current copy of the shared state", "node", c.node)
	}
	return true
}

// Stats returns the counters so far.
func (c *Cluster) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// event is what travels on the subject.
type event struct {
	Kind string `json:"k"` // on, off, msg, hb
	// Probe, on a heartbeat: the node answers requests on its own subject
	// (nodeSubject), so that NATS's "no responders" tells it is gone.
	Probe bool            `json:"probe,omitempty"`
	Node  string          `json:"n"`
	Room  string          `json:"r,omitempty"`
	Key   string          `json:"key,omitempty"`
	Name  string          `json:"name,omitempty"`
	Rev   uint64          `json:"rev,omitempty"`
	Meta  json.RawMessage `json:"meta,omitempty"`
	Addr  string          `json:"addr,omitempty"`
	Relay string          `json:"relay,omitempty"`
	To    string          `json:"to,omitempty"`
	Msg   json.RawMessage `json:"msg,omitempty"`
}

// record is a key's value in the bucket.
type record struct {
	Name  string          `json:"name"`
	Node  string          `json:"node"`
	Meta  json.RawMessage `json:"meta,omitempty"`
	Addr  string          `json:"addr,omitempty"`
	Relay string          `json:"relay,omitempty"`
}

func kvKey(room, key string) string {
	enc := base64.RawURLEncoding
	return "u.r" + enc.EncodeToString([]byte(room)) + ".k" + enc.EncodeToString([]byte(key))
}

func parseKVKey(k string) (room, key string, ok bool) {
	parts := strings.Split(k, ".")
	if len(parts) != 3 || parts[0] != "u" || !strings.HasPrefix(parts[1], "r") || !strings.HasPrefix(parts[2], "k") {
		return "", "", false
	}
	enc := base64.RawURLEncoding
	r, err1 := enc.DecodeString(parts[1][1:])
	n, err2 := enc.DecodeString(parts[2][1:])
	if err1 != nil || err2 != nil {
		return "", "", false
	}
	return string(r), string(n), true
}

// eventOf is p as an event of kind.
func eventOf(p signal.Presence, kind string) event {
	e := event{Kind: kind, Node: p.Node, Room: p.Room, Key: p.Key, Name: p.Name, Rev: p.Rev, Meta: p.Meta}
	if p.Addr.IsValid() {
		e.Addr = p.Addr.String()
	}
	if p.Relay.IsValid() {
		e.Relay = p.Relay.String()
	}
	return e
}

func (e event) presence() signal.Presence {
	p := signal.Presence{Room: e.Room, Key: e.Key, Name: e.Name, Node: e.Node, Rev: e.Rev, Meta: e.Meta}
	p.Addr, _ = netip.ParseAddr(e.Addr)
	p.Relay, _ = netip.ParseAddr(e.Relay)
	return p
}

// Run joins the service and serves h until ctx ends. It returns nil on a
// clean cancel; the NATS connection stays the caller's.
func (c *Cluster) Run(ctx context.Context, h signal.ClusterHandler) error {
	js, err := jetstream.New(c.cfg.Conn)
	if err != nil {
		return fmt.Errorf("cluster: jetstream: %w", err)
	}
	var kv jetstream.KeyValue
	// The bucket may not be creatable yet (a cluster still electing its
	// meta leader): retry until ctx ends.
	for {
		cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		kv, err = js.CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{
			Bucket: c.bucket, History: 1, Storage: jetstream.MemoryStorage, Replicas: c.cfg.Replicas,
		})
		cancel()
		if err == nil {
			break
		}
		c.cfg.Logger.Warn("cluster: key-value bucket not available yet", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.renew):
		}
	}
	sub, err := c.cfg.Conn.SubscribeSync(c.subj)
	if err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	_ = sub.SetPendingLimits(-1, -1) // never drop: a lost event is a lost login
	c.mu.Lock()
	c.kv, c.sub, c.h = kv, sub, h
	c.mu.Unlock()
	defer sub.Unsubscribe()
	// Answer the others' probes: while this subscription exists, NATS
	// never says "no responders" for this node.
	probe, err := c.cfg.Conn.Subscribe(c.nodeSubject(c.node), func(m *nats.Msg) { _ = m.Respond(nil) })
	if err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	defer probe.Unsubscribe()

	var wg sync.WaitGroup
	wg.Go(func() { c.eventLoop(ctx, sub, h) })
	wg.Go(func() { c.leaseLoop(ctx, kv, h) })
	wg.Go(func() { c.heartbeatLoop(ctx) })
	wg.Go(func() { c.watchLoop(ctx, h) })
	wg.Wait()
	c.ready.Store(false)
	return nil
}

func (c *Cluster) eventLoop(ctx context.Context, sub *nats.Subscription, h signal.ClusterHandler) {
	for ctx.Err() == nil {
		if c.resync.Load() || c.refresh.Load() {
			if !c.doResync(ctx, h, c.resync.Load()) {
				select { // the state cannot be read now: again shortly
				case <-ctx.Done():
				case <-time.After(c.renew):
				}
			}
			continue
		}
		msg, err := sub.NextMsg(100 * time.Millisecond)
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) {
				c.retryHeld(ctx, h)
				continue
			}
			if errors.Is(err, nats.ErrBadSubscription) || errors.Is(err, nats.ErrConnectionClosed) {
				return
			}
			c.cfg.Logger.Warn("cluster: next event", "err", err)
			continue
		}
		var e event
		if err := json.Unmarshal(msg.Data, &e); err == nil && e.Node != c.node {
			c.deliver(ctx, e, h)
		}
		c.retryHeld(ctx, h)
		c.mu.Lock()
		c.stats.Received++
		c.processed.Add(1)
		close(c.progress)
		c.progress = make(chan struct{})
		c.mu.Unlock()
	}
}

// maxTracked bounds the per-node maps of nodes that are no members (an
// insider may make up any number of ids).
const maxTracked = 1024

// errLookupPaused: the lease of the node was not looked up, a look-up
// having failed a moment ago.
var errLookupPaused = errors.New("cluster: lease look-up paused after a failure")

// Bounds of the events held while a node's lease cannot be read.
const (
	maxHeldNodes  = 16
	maxHeldEvents = 4096 // per node
)

// deliver applies e if it comes from a member. While that cannot be told
// (the lease cannot be read: JetStream is electing a leader, as after a
// partition heals, when a node comes back and writes its lease anew) e is
// held, with every later event of its node so that their order stays, and
// retryHeld decides once the lease can be read. A node that is no member
// has its events dropped then.
func (c *Cluster) deliver(ctx context.Context, e event, h signal.ClusterHandler) {
	if len(c.held[e.Node]) > 0 {
		c.hold(e)
		return
	}
	switch c.admit(ctx, e) {
	case admitted:
		c.apply(e, h)
	case undecided:
		c.hold(e)
	}
}

// hold keeps e for retryHeld, within the bounds (past them it is counted
// as ignored).
func (c *Cluster) hold(e event) {
	held := c.held[e.Node]
	if held == nil && len(c.held) >= maxHeldNodes || len(held) >= maxHeldEvents {
		c.mu.Lock()
		c.stats.Ignored++
		c.mu.Unlock()
		return
	}
	c.held[e.Node] = append(held, e)
}

// retryHeld looks up again the lease of each node whose events are held,
// once its look-up is no longer paused: a member's events are applied in
// order, another's dropped.
func (c *Cluster) retryHeld(ctx context.Context, h signal.ClusterHandler) {
	for node, events := range c.held {
		switch c.admit(ctx, events[0]) {
		case undecided:
			continue
		case admitted:
			for _, e := range events {
				c.apply(e, h)
			}
		case refused:
			c.mu.Lock()
			c.stats.Ignored += uint64(len(events) - 1) // admit counted the first
			c.mu.Unlock()
		}
		delete(c.held, node)
	}
}

// admission is admit's verdict.
type admission int

const (
	refused admission = iota
	admitted
	undecided // the lease could not be read: ask again later
)

// admit tells whether e comes from a member; it counts and logs (once a
// node) those that do not. When the lease cannot be read (JetStream
// unavailable) it is undecided, and that node's lease is not asked for
// again for a few heartbeats, so that the event loop does not wait on the
// broker once per event. The view is not read again then: during such an
// outage it may hold entries that survivors failed to delete.
func (c *Cluster) admit(ctx context.Context, e event) admission {
	ok, err := c.isMember(ctx, e.Node)
	switch {
	case ok:
		return admitted
	case errors.Is(err, errLookupPaused):
		return undecided
	case err != nil:
		c.countErr()
		c.cfg.Logger.Debug("cluster: look up a node's lease", "node", e.Node, "err", err)
		c.mu.Lock()
		if len(c.paused) >= maxTracked {
			clear(c.paused)
		}
		c.paused[e.Node] = time.Now().Add(3 * c.renew)
		c.mu.Unlock()
		return undecided
	}
	c.mu.Lock()
	c.stats.Ignored++
	warn := !c.warned[e.Node]
	if warn {
		if len(c.warned) >= maxTracked {
			clear(c.warned)
		}
		c.warned[e.Node] = true
	}
	c.mu.Unlock()
	if warn {
		c.cfg.Logger.Warn("cluster: ignored an event from a node that holds no lease (forged, or a dead node's)", "node", e.Node, "kind", e.Kind)
	}
	return refused
}

// isMember reports whether node holds a lease: known already, or found in
// the bucket.
func (c *Cluster) isMember(ctx context.Context, node string) (bool, error) {
	if !validNodeID(node) {
		return false, nil
	}
	c.mu.Lock()
	known := c.members[node]
	paused := time.Now().Before(c.paused[node])
	c.mu.Unlock()
	if known {
		return true, nil
	}
	if paused {
		return false, errLookupPaused
	}
	rev, err := c.leaseRevision(ctx, node)
	if err != nil || rev == 0 {
		return false, err
	}
	c.mu.Lock()
	c.members[node] = true
	delete(c.paused, node)
	delete(c.warned, node)
	c.mu.Unlock()
	return true, nil
}

// validNodeID: node ids are nuids (22 letters and digits); anything else
// is not a node's, and must not reach a subject.
func validNodeID(node string) bool {
	if node == "" || len(node) > 64 {
		return false
	}
	for _, r := range node {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// leaseRevision asks the bucket's stream leader (a replica may lag behind a
// lease just written, and a node's first event follows its lease at once)
// for the revision of node's lease key: 0 when it is not there or deleted.
func (c *Cluster) leaseRevision(ctx context.Context, node string) (uint64, error) {
	req, err := json.Marshal(struct {
		LastBySubj string `json:"last_by_subj"`
	}{"$KV." + c.bucket + ".n." + node})
	if err != nil {
		return 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, c.renew)
	defer cancel()
	msg, err := c.cfg.Conn.RequestWithContext(cctx, "$JS.API.STREAM.MSG.GET.KV_"+c.bucket, req)
	if err != nil {
		return 0, fmt.Errorf("cluster: lease of %s: %w", node, err)
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
		} `json:"message"`
		Error *struct {
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, fmt.Errorf("cluster: lease of %s: %w", node, err)
	}
	const noMessage = 10037 // JSNoMessageFoundErr
	switch {
	case resp.Error != nil && resp.Error.ErrCode == noMessage:
		return 0, nil
	case resp.Error != nil:
		return 0, fmt.Errorf("cluster: lease of %s: %s", node, resp.Error.Description)
	case resp.Message == nil:
		return 0, fmt.Errorf("cluster: lease of %s: an empty reply", node)
	}
	// A deleted key's last message is a marker: KV-Operation DEL or PURGE.
	if bytes.Contains(resp.Message.Hdrs, []byte("KV-Operation")) {
		return 0, nil
	}
	return resp.Message.Seq, nil
}

func (c *Cluster) apply(e event, h signal.ClusterHandler) {
	now := time.Now()
	c.mu.Lock()
	c.lastSeen[e.Node] = now
	heard := e.Kind == "hb" && e.Probe && !c.probes[e.Node]
	if heard {
		c.probes[e.Node] = true
	}
	serve := c.heardLocked(e.Node)
	ready := c.ready.Load()
	k := kvKey(e.Room, e.Key)
	switch e.Kind {
	case "on":
		m := c.byNode[e.Node]
		if m == nil {
			m = make(map[string]signal.Presence)
			c.byNode[e.Node] = m
		}
		m[k] = e.presence()
	case "off":
		if old, ok := c.byNode[e.Node][k]; ok && old.Rev == e.Rev {
			delete(c.byNode[e.Node], k)
		}
	}
	c.mu.Unlock()
	if heard {
		c.cfg.Logger.Info("cluster: node heard: its death is seen within a few heartbeats", "node", e.Node)
	}
	if serve {
		c.startServing()
	}
	if !ready {
		return
	}
	switch e.Kind {
	case "on":
		h.Online(e.presence())
	case "off":
		h.Offline(e.presence())
	case "msg":
		h.Deliver(e.Room, e.To, e.Msg)
	}
}

// doResync rebuilds the view from the bucket: everyone else's users are
// handed to h in login order. Hard (at start, after a fence), the node has
// no clients: its own entries left from before are deleted. Soft (after a
// reconnect to NATS, which may have lost events meanwhile), the clients
// stay, and remote users missing from the bucket go offline. Events queued
// meanwhile are applied after it; h ignores those it already has (by Rev).
// It reports whether the state could be read.
func (c *Cluster) doResync(ctx context.Context, h signal.ClusterHandler, hard bool) bool {
	if hard {
		h.Reset()
	}
	c.mu.Lock()
	kv := c.kv
	before := c.byNode
	c.byNode = make(map[string]map[string]signal.Presence)
	c.mu.Unlock()
	fail := func() bool {
		c.mu.Lock()
		if !hard {
			c.byNode = before
		}
		c.mu.Unlock()
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, 2*c.cfg.Timeout)
	defer cancel()
	w, err := kv.WatchAll(cctx, jetstream.IgnoreDeletes())
	if err != nil {
		c.countErr()
		c.cfg.Logger.Warn("cluster: read the shared state", "err", err)
		return fail() // the flag stays set: tried again
	}
	defer w.Stop()
	var users []signal.Presence
	leases := make(map[string]bool)
	for {
		var ent jetstream.KeyValueEntry
		select {
		case ent = <-w.Updates():
		case <-cctx.Done():
			c.countErr()
			c.cfg.Logger.Warn("cluster: read the shared state", "err", cctx.Err())
			return fail()
		}
		if ent == nil {
			break
		}
		if node, ok := strings.CutPrefix(ent.Key(), "n."); ok {
			leases[node] = true
			continue
		}
		room, key, ok := parseKVKey(ent.Key())
		var rec record
		if !ok || json.Unmarshal(ent.Value(), &rec) != nil {
			continue
		}
		p := signal.Presence{Room: room, Key: key, Name: rec.Name, Node: rec.Node, Rev: ent.Revision(), Meta: rec.Meta}
		p.Addr, _ = netip.ParseAddr(rec.Addr)
		p.Relay, _ = netip.ParseAddr(rec.Relay)
		users = append(users, p)
	}
	slices.SortFunc(users, func(a, b signal.Presence) int { return cmp.Compare(a.Rev, b.Rev) })
	now := time.Now()
	var own, shown []signal.Presence
	c.mu.Lock()
	c.members = leases
	if hard {
		c.forgetSilence(leases, now)
	}
	for _, p := range users {
		if p.Node == c.node {
			own = append(own, p)
			continue
		}
		// Entries of a node without a lease are not shown: they are kept
		// only to be removed if the node stays silent for DeadAfter.
		if leases[p.Node] {
			shown = append(shown, p)
		}
		m := c.byNode[p.Node]
		if m == nil {
			m = make(map[string]signal.Presence)
			c.byNode[p.Node] = m
		}
		m[kvKey(p.Room, p.Key)] = p
		if _, seen := c.lastSeen[p.Node]; !seen {
			c.lastSeen[p.Node] = now // unknown nodes get DeadAfter to show up
		}
	}
	var gone []signal.Presence
	for n, m := range before {
		for k, p := range m {
			if now, ok := c.byNode[n][k]; !ok || now.Rev != p.Rev || !leases[n] {
				gone = append(gone, p)
			}
		}
	}
	c.mu.Unlock()
	if hard {
		for _, p := range own {
			c.deleteKey(ctx, kvKey(p.Room, p.Key), p.Rev)
		}
	} else {
		for _, p := range gone {
			h.Offline(p)
		}
	}
	for _, p := range shown {
		h.Online(p)
	}
	c.refresh.Store(false)
	if hard {
		c.resync.Store(false)
		c.ready.Store(true)
		c.mu.Lock()
		unheard := len(c.unheard)
		c.mu.Unlock()
		c.cfg.Logger.Info("cluster: shared state read", "node", c.node, "users_elsewhere", len(shown), "nodes_to_hear", unheard)
		if unheard == 0 {
			c.startServing()
		}
	} else {
		c.cfg.Logger.Info("cluster: view refreshed after a reconnect", "node", c.node, "users_elsewhere", len(shown), "gone", len(gone))
	}
	return true
}

func (c *Cluster) leaseLoop(ctx context.Context, kv jetstream.KeyValue, h signal.ClusterHandler) {
	t := time.NewTicker(c.renew)
	defer t.Stop()
	leaseKey := "n." + c.node
	var leaseRev uint64
	var lastOK time.Time
	reconnects := c.cfg.Conn.Stats().Reconnects
	for {
		// Core NATS drops what is published while a connection is away:
		// after a reconnect, the view is read again from the bucket.
		if r := c.cfg.Conn.Stats().Reconnects; r != reconnects {
			reconnects = r
			if c.ready.Load() {
				c.refresh.Store(true)
			}
		}
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, c.renew)
		val := []byte(start.UTC().Format(time.RFC3339Nano))
		var rev uint64
		var err error
		if leaseRev == 0 {
			rev, err = kv.Put(cctx, leaseKey, val)
		} else {
			rev, err = kv.Update(cctx, leaseKey, val, leaseRev)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && errors.Is(err, jetstream.ErrKeyExists) {
			// The revision moved: a renewal whose reply was lost, or the
			// others declared this node dead and deleted its lease.
			gctx, gcancel := context.WithTimeout(ctx, c.renew)
			ent, gerr := kv.Get(gctx, leaseKey)
			gcancel()
			switch {
			case gerr == nil:
				rev, err = ent.Revision(), nil
			case errors.Is(gerr, jetstream.ErrKeyNotFound):
				c.countErr()
				c.cfg.Logger.Warn("cluster: declared dead by the others: closing local clients", "node", c.node)
				leaseRev = 0
				c.fence(h)
			}
		}
		// Heartbeats go out whatever the renewal: a JetStream election must
		// not make a live node look dead. A node that holds no lease (not
		// yet, or declared dead) is no member: the others would ignore it.
		c.holding.Store(err == nil || leaseRev != 0)
		switch {
		case err == nil:
			if leaseRev == 0 {
				// A new lease: the others hear at once that this node
				// answers probes, not a heartbeat later.
				_ = c.publish(event{Kind: "hb", Node: c.node, Probe: true})
			}
			leaseRev, lastOK = rev, time.Now()
			c.renewedAt.Store(lastOK.UnixNano())
			c.mu.Lock()
			c.stats.LastLag = lastOK.Sub(start)
			c.mu.Unlock()
			if !c.ready.Load() && !c.resync.Load() {
				c.resync.Store(true)
			}
		case leaseRev == 0:
		default:
			c.countErr()
			c.cfg.Logger.Debug("cluster: renew lease", "err", err)
			if c.ready.Load() && time.Since(lastOK) > c.cfg.LeaseTTL {
				c.cfg.Logger.Warn("cluster: lease lost: closing local clients", "node", c.node, "err", err)
				c.fence(h)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// nodeSubject is the subject node answers on (see Leases in the package doc).
func (c *Cluster) nodeSubject(node string) string { return c.cfg.Prefix + ".node." + node }

// heartbeatLoop sends a heartbeat every Heartbeat while the lease is held.
func (c *Cluster) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		if c.holding.Load() {
			_ = c.publish(event{Kind: "hb", Node: c.node, Probe: true})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watchLoop declares dead, every Heartbeat while the node serves, the nodes
// silent for DeadAfter and those silent for GoneAfter that NATS says are
// gone (twice in a row).
func (c *Cluster) watchLoop(ctx context.Context, h signal.ClusterHandler) {
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	gone := make(map[string]int) // node -> "no responders" in a row
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.ready.Load() {
			clear(gone)
			continue
		}
		quiet, fast := c.silent(time.Now())
		var confirmed []string
		for n := range gone {
			if !slices.Contains(quiet, n) {
				delete(gone, n)
			}
		}
		for _, n := range quiet {
			if !fast || c.probe(ctx, n) != probeGone {
				delete(gone, n)
				continue
			}
			if gone[n]++; gone[n] >= goneProbes {
				confirmed = append(confirmed, n)
				delete(gone, n)
			}
		}
		confirmed = append(confirmed, c.unheardGone(ctx)...)
		c.reapDead(ctx, h, confirmed)
	}
}

// unheardGone returns, while this node waits to hear every member before it
// serves, the members not heard yet whose lease is gone: the others
// declared them dead (a process that stopped just before this node read
// the state). Their silence cannot be probed (see forgetSilence), but
// without this they would hold this node off for DeadAfter.
func (c *Cluster) unheardGone(ctx context.Context) []string {
	if c.serving.Load() {
		return nil
	}
	c.mu.Lock()
	var unheard []string
	for n := range c.unheard {
		unheard = append(unheard, n)
	}
	c.mu.Unlock()
	var gone []string
	for _, n := range unheard {
		if rev, err := c.leaseRevision(ctx, n); err == nil && rev == 0 {
			gone = append(gone, n)
		}
	}
	return gone
}

// goneProbes is how many "no responders" in a row, a heartbeat apart,
// confirm that a silent node is gone.
const goneProbes = 2

// silent returns the members whose heartbeats say they answer probes and
// that were not heard for GoneAfter, and whether this node may take the fast
// way at all: it is part of the service (its lease renewed within two
// renewals, or another node heard within GoneAfter), so that a node cut off
// from all the others does not declare them all dead.
func (c *Cluster) silent(now time.Time) (quiet []string, fast bool) {
	fast = now.Sub(time.Unix(0, c.renewedAt.Load())) < 2*c.renew+c.cfg.Timeout
	c.mu.Lock()
	defer c.mu.Unlock()
	for n, at := range c.lastSeen {
		switch {
		case n == c.node:
		case now.Sub(at) <= c.cfg.GoneAfter:
			fast = true
		case c.probes[n]:
			quiet = append(quiet, n)
		}
	}
	slices.Sort(quiet)
	return quiet, fast
}

// probeResult is what a request to a node's own subject says.
type probeResult int

const (
	probeUnknown  probeResult = iota // no answer in time (slow, paused, cut off) or an error of ours
	probeAnswered                    // it answered: it is there
	probeGone                        // no responders: NATS holds no connection of it
)

// probe asks node's subject once, within a heartbeat (at least 100ms).
func (c *Cluster) probe(ctx context.Context, node string) probeResult {
	ctx, cancel := context.WithTimeout(ctx, max(c.cfg.Heartbeat, 100*time.Millisecond))
	defer cancel()
	_, err := c.cfg.Conn.RequestWithContext(ctx, c.nodeSubject(node), nil)
	switch {
	case err == nil:
		return probeAnswered
	case errors.Is(err, nats.ErrNoResponders):
		return probeGone
	}
	return probeUnknown
}

// forgetSilence starts the others' silence anew, from now, once the state
// has been read from no view (at start, after a fence): while this node was
// cut off or fenced, their heartbeats could not reach it, and that silence
// is its own. Every lease holder must be heard again before this node
// serves (Ready), and before its silence counts on the fast way (NATS may
// say "no responders" only because this node's server has no route to it
// yet); one never heard is dead after DeadAfter. c.mu is held.
func (c *Cluster) forgetSilence(leases map[string]bool, now time.Time) {
	c.serving.Store(false)
	c.caughtUp.Store(false)
	clear(c.lastSeen)
	clear(c.probes)
	clear(c.unheard)
	for n := range leases {
		if n != c.node {
			c.lastSeen[n] = now
			c.unheard[n] = true
		}
	}
}

// heardLocked notes that node was heard (or is dead); it reports whether
// this node has now heard every member since it read the state, and so may
// serve. c.mu is held.
func (c *Cluster) heardLocked(node string) bool {
	if !c.unheard[node] {
		return false
	}
	delete(c.unheard, node)
	return len(c.unheard) == 0 && c.ready.Load()
}

// startServing lets logins in (Ready): the view is current and every
// member was heard since it was read.
func (c *Cluster) startServing() {
	if !c.serving.Swap(true) {
		c.cfg.Logger.Info("cluster: node serving", "node", c.node)
	}
}

// fence stops serving: the local clients are closed and the view dropped
// until the lease is held again and the state read anew.
func (c *Cluster) fence(h signal.ClusterHandler) {
	c.serving.Store(false)
	c.caughtUp.Store(false)
	if c.ready.Swap(false) {
		h.Reset()
	}
}

// reapDead declares dead the nodes silent for DeadAfter and the nodes
// confirmed gone: their users go offline for this node's clients and their
// names are freed.
func (c *Cluster) reapDead(ctx context.Context, h signal.ClusterHandler, confirmed []string) {
	now := time.Now()
	var dead []string
	var gone []signal.Presence
	serve := false
	c.mu.Lock()
	for n := range c.byNode {
		if _, ok := c.lastSeen[n]; !ok {
			c.lastSeen[n] = now
		}
	}
	for n, at := range c.lastSeen {
		if n != c.node && (now.Sub(at) > c.cfg.DeadAfter || slices.Contains(confirmed, n) && now.Sub(at) > c.cfg.GoneAfter) {
			dead = append(dead, n)
			for _, p := range c.byNode[n] {
				gone = append(gone, p)
			}
			delete(c.byNode, n)
			delete(c.lastSeen, n)
			delete(c.members, n)
			delete(c.probes, n)
			serve = c.heardLocked(n) || serve
			c.stats.DeadNodes++
		}
	}
	c.mu.Unlock()
	if serve {
		c.startServing()
	}
	if len(dead) == 0 {
		return
	}
	slices.SortFunc(gone, func(a, b signal.Presence) int { return cmp.Compare(a.Rev, b.Rev) })
	offlineAll(h, gone)
	c.cfg.Logger.Warn("cluster: node dead: its users are offline", "nodes", dead, "users", len(gone), "gone_from_nats", len(confirmed) > 0)
	// The lease first and once, as it is: retried later, an unconditional
	// delete could take the lease a node wrote anew after coming back.
	var kept []string
	for _, n := range dead {
		if !c.tryDelete(ctx, "n."+n, 0) {
			kept = append(kept, n)
		}
	}
	// The names (each at its claim's revision: safe to retry) until the
	// bucket answers, for up to LeaseTTL in all; then the leases that could
	// not be deleted (see deleteStaleLease), a few seconds more.
	deadline := time.Now().Add(c.cfg.LeaseTTL)
	for _, p := range gone {
		c.deleteKeyRetry(ctx, kvKey(p.Room, p.Key), p.Rev, deadline)
	}
	for _, n := range kept {
		c.deleteStaleLease(ctx, n, deadline.Add(3*c.renew)) // room for two looks after an election
	}
}

// deleteStaleLease deletes the lease of node, declared dead, whose first
// delete got no answer (a JetStream election: the node may have taken the
// stream leader with it), until deadline; only at a revision that stayed
// the same for two renewals, so that a lease the node renews, or wrote
// anew after coming back, is not taken. Left in place, a dead node's lease
// keeps every node that starts later from serving until it declares that
// node dead itself (Ready), after DeadAfter.
func (c *Cluster) deleteStaleLease(ctx context.Context, node string, deadline time.Time) {
	var last uint64
	for time.Now().Before(deadline) {
		rev, err := c.leaseRevision(ctx, node)
		switch {
		case err != nil:
			last = 0
		case rev == 0:
			return // deleted (the first delete did reach the bucket, or another survivor's)
		case rev == last:
			if c.tryDelete(ctx, "n."+node, rev) {
				return // deleted, or renewed meanwhile: alive after all
			}
		default:
			last = rev
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * c.renew):
		}
	}
}

// batchOffline is a handler that takes many users offline at once:
// signal's does it under one lock, where one Offline each would queue
// behind every client of a busy server (a dead node's 900 users took 30 s
// under load that way).
type batchOffline interface {
	OfflineAll(ps []signal.Presence)
}

// offlineAll tells h that the users ps went offline, in one call when h can.
func offlineAll(h signal.ClusterHandler, ps []signal.Presence) {
	if b, ok := h.(batchOffline); ok {
		b.OfflineAll(ps)
		return
	}
	for _, p := range ps {
		h.Offline(p)
	}
}

func (c *Cluster) deleteKey(ctx context.Context, key string, rev uint64) {
	_ = c.tryDelete(ctx, key, rev)
}

// tryDelete deletes key (at revision rev, if not 0) once; it reports
// whether the bucket gave an answer (done, or refused: another survivor
// deleted it first), false when it could not be reached.
func (c *Cluster) tryDelete(ctx context.Context, key string, rev uint64) bool {
	c.mu.Lock()
	kv := c.kv
	c.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var opts []jetstream.KVDeleteOpt
	if rev != 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	err := kv.Delete(cctx, key, opts...)
	if err == nil {
		return true
	}
	// Another survivor may have deleted it first: not an error worth more
	// than a debug line.
	c.cfg.Logger.Debug("cluster: delete", "key", key, "err", err)
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) || errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound)
}

// deleteKeyRetry deletes a dead node's user key at its revision, again
// every heartbeat while the bucket cannot be reached, until deadline: a
// node declared dead within a second of its death may have taken the
// bucket's stream leader with it, and the names must be free again once
// JetStream has elected another.
func (c *Cluster) deleteKeyRetry(ctx context.Context, key string, rev uint64, deadline time.Time) {
	for !c.tryDelete(ctx, key, rev) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.cfg.Heartbeat):
		}
	}
}

func (c *Cluster) publish(e event) error {
	b, err := json.Marshal(e)
	if err == nil {
		err = c.cfg.Conn.Publish(c.subj, b)
	}
	c.mu.Lock()
	if err != nil {
		c.stats.Errors++
	} else {
		c.stats.Published++
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cluster: publish: %w", err)
	}
	return nil
}

func (c *Cluster) countErr() {
	c.mu.Lock()
	c.stats.Errors++
	c.mu.Unlock()
}

// Claim takes p's name in its room for this node, atomically across the
// service, and announces the login. It returns the claim's revision; a
// *signal.TakenError when the name (or one too close to it) is held. Once it
// returns, the node's view holds every login that was announced before.
func (c *Cluster) Claim(ctx context.Context, p signal.Presence) (uint64, error) {
	if !c.Ready() {
		return 0, ErrNotReady
	}
	c.mu.Lock()
	kv := c.kv
	c.mu.Unlock()
	rec := record{Name: p.Name, Node: c.node, Meta: p.Meta}
	if p.Addr.IsValid() {
		rec.Addr = p.Addr.String()
	}
	if c.cfg.RelayIP.IsValid() {
		rec.Relay = c.cfg.RelayIP.String()
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("cluster: claim: %w", err)
	}
	key := kvKey(p.Room, p.Key)
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	rev, err := kv.Create(cctx, key, val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		rev, err = c.claimLeftover(cctx, kv, key, val, p.Name)
	}
	var te *signal.TakenError
	if errors.As(err, &te) {
		return 0, err
	}
	if err != nil {
		c.countErr()
		return 0, fmt.Errorf("cluster: claim %q: %w", p.Name, err)
	}
	p.Node, p.Rev, p.Relay = c.node, rev, c.cfg.RelayIP
	if err := c.publish(eventOf(p, "on")); err != nil {
		c.deleteKey(ctx, key, rev)
		return 0, err
	}
	// The login reaches the server before the client hears it is in, so
	// that whoever the client talks to next already sees it.
	if err := c.cfg.Conn.FlushWithContext(cctx); err != nil {
		c.countErr()
	}
	if err := c.Sync(cctx); err != nil {
		c.countErr()
	}
	return rev, nil
}

// claimLeftover takes key when its holder is a node that holds no lease: a
// node declared dead, whose names the survivors delete only after telling
// their clients its users went offline (a user told so may log in under
// that name at once), or a node that fenced itself. The update is at the
// leftover's revision, so a claim made meanwhile wins. Otherwise the name
// is taken, by the holder it names.
func (c *Cluster) claimLeftover(ctx context.Context, kv jetstream.KeyValue, key string, val []byte, name string) (uint64, error) {
	ent, err := kv.Get(ctx, key)
	if err != nil {
		return 0, &signal.TakenError{Holder: name}
	}
	var other record
	if json.Unmarshal(ent.Value(), &other) != nil {
		return 0, &signal.TakenError{Holder: name}
	}
	if other.Name == "" {
		other.Name = name
	}
	if other.Node == c.node {
		return 0, &signal.TakenError{Holder: other.Name}
	}
	if alive, err := c.isMember(ctx, other.Node); alive || err != nil {
		return 0, &signal.TakenError{Holder: other.Name}
	}
	rev, err := kv.Update(ctx, key, val, ent.Revision())
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return 0, &signal.TakenError{Holder: other.Name} // another claim came first
	}
	if err != nil {
		return 0, err
	}
	c.cfg.Logger.Debug("cluster: claimed a name a node without a lease left behind", "name", other.Name, "node", other.Node)
	return rev, nil
}

// Release frees p's name (p.Rev is the claim's) and announces the logout.
func (c *Cluster) Release(ctx context.Context, p signal.Presence) {
	c.deleteKey(ctx, kvKey(p.Room, p.Key), p.Rev)
	p.Node = c.node
	_ = c.publish(eventOf(p, "off"))
}

// Relay hands msg to the node of the user named to in room.
func (c *Cluster) Relay(room, to string, msg []byte) error {
	return c.publish(event{Kind: "msg", Node: c.node, Room: room, To: to, Msg: msg})
}

// Lookup reads who holds key in room from the bucket itself, for a user
// this node has not heard of yet.
func (c *Cluster) Lookup(ctx context.Context, room, key string) (signal.Presence, bool) {
	c.mu.Lock()
	kv := c.kv
	c.mu.Unlock()
	if kv == nil {
		return signal.Presence{}, false
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	ent, err := kv.Get(cctx, kvKey(room, key))
	if err != nil {
		return signal.Presence{}, false
	}
	var rec record
	if json.Unmarshal(ent.Value(), &rec) != nil {
		return signal.Presence{}, false
	}
	if rec.Node != c.node && !c.memberForLookup(cctx, rec.Node) {
		return signal.Presence{}, false
	}
	return signal.Presence{Room: room, Key: key, Name: rec.Name, Node: rec.Node, Rev: ent.Revision(), Meta: rec.Meta}, true
}

// memberForLookup is isMember for Lookup: while the event loop's look-ups
// of node are paused (one failed a moment ago: a JetStream election, as
// when a node comes back after a partition), the lease is asked once more
// here, or a user's relay to that node's user would be lost; the node's
// own events stay held until the event loop asks again.
func (c *Cluster) memberForLookup(ctx context.Context, node string) bool {
	ok, err := c.isMember(ctx, node)
	if !errors.Is(err, errLookupPaused) {
		return ok
	}
	rev, err := c.leaseRevision(ctx, node)
	return err == nil && rev != 0
}

// Sync waits until every event this node had received when it was called
// has been handed to the handler.
func (c *Cluster) Sync(ctx context.Context) error {
	c.mu.Lock()
	sub := c.sub
	c.mu.Unlock()
	if sub == nil {
		return nil
	}
	pending, _, err := sub.Pending()
	if err != nil {
		return fmt.Errorf("cluster: sync: %w", err)
	}
	delivered, _ := sub.Delivered()
	target := uint64(delivered) + uint64(pending)
	for {
		c.mu.Lock()
		done, progress := c.processed.Load() >= target, c.progress
		c.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return fmt.Errorf("cluster: sync: %w", ctx.Err())
		}
	}
}
