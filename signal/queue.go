package signal

// Each client's outbound queue is bounded (Config.QueueSize and
// QueueBytes) and accounted by sender. The server's own messages (login
// replies, user lists, updata, errors) always go in; a client whose queue
// they overflow does not read and is dropped. A relayed message goes in
// unless its sender's address already holds its share of the queue
// (senderShares): then the sender is told that the receiver is busy, and
// the receiver, which only got more than it could read from one sender,
// stays. A receiver whose queue fills with every sender within its share
// is a slow reader and is dropped as before.

// senderShares is how many senders' shares a queue holds: one sender
// address may have at most 1/senderShares of a receiver's queue, in
// messages and in bytes, waiting to be written.
const senderShares = 8

// enqueue hands b, a message of the server's own, to the writer without
// blocking. A full queue means the client does not read: it is
// disconnected rather than holding others up.
func (c *conn) enqueue(b []byte) {
	c.qmu.Lock()
	full := c.fullLocked(b)
	if !full {
		c.pushLocked(b)
	}
	c.qmu.Unlock()
	c.woken(full)
}

// enqueueRelay hands b, relayed from a client at address from, to the
// writer. It reports false, queueing nothing, when from already holds its
// share of the queue: c is busy with what from sent before.
func (c *conn) enqueueRelay(from addrKey, b []byte) bool {
	cfg := c.srv.cfg
	c.qmu.Lock()
	h := c.senders[from]
	if h.n > 0 && (h.n >= max(1, cfg.QueueSize/senderShares) || h.units+len(b) > max(MaxMessageSize, cfg.QueueBytes/senderShares)) {
		c.qmu.Unlock()
		return false
	}
	full := c.fullLocked(b)
	if !full {
		c.pushLocked(b)
		if c.senders == nil {
			c.senders = make(map[addrKey]holding)
		}
		c.senders[from] = holding{h.n + 1, h.units + len(b)}
	}
	c.qmu.Unlock()
	c.woken(full)
	return true
}

func (c *conn) fullLocked(b []byte) bool {
	return len(c.queue) >= c.srv.cfg.QueueSize || c.qbytes+len(b) > c.srv.cfg.QueueBytes
}

func (c *conn) pushLocked(b []byte) {
	c.queue = append(c.queue, b)
	c.qbytes += len(b)
}

// woken wakes the writer for what was queued, or drops c if its queue was
// full.
func (c *conn) woken(full bool) {
	if !full {
		select {
		case c.wake <- struct{}{}:
		default:
		}
		return
	}
	select {
	case <-c.done:
	default:
		c.srv.cfg.Logger.Warn("signal: dropping slow reader", "name", c.name, "remote", c.remote)
		c.close()
		// Its writer is stuck on a full socket: cut the connection now,
		// not after WriteTimeout, so that it goes offline for the others.
		_ = c.ws.NetConn().Close()
	}
}

// takeQueue empties the queue and returns what it held; every sender's
// share is free again.
func (c *conn) takeQueue() [][]byte {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	q := c.queue
	c.queue, c.qbytes = nil, 0
	clear(c.senders)
	return q
}
