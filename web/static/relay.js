// The relay between two pages (web/relay.go): a share of RELAY_MIN bytes
// or more from one page to another goes through the lanft that serves the
// sharing page, over HTTP, sealed end to end with a key only the two
// pages hold, instead of the data channel. After the preamble, when both
// pages set FLAG_RELAY and neither is a lanft CLI:
//
//   receiving page ──▶ {"v":1,"origin":location.origin}
//   sharing page   ──▶ {"v":1,"relay":"http://HOST/lanft/relay/TOKEN/","key":"BASE64 (32 bytes)"} or {"v":1,"why":...}
//   receiving page ──▶ {"v":1,"path":"relay"} once GET relay+"hello" answered 204, or {"v":1,"path":"datachannel","why":...}
//
// These messages go over the verified data channel (DTLS, its
// fingerprints proven by both devices' keys): the key is the two pages'
// alone. The sharing page gets the relay from its own lanft (POST
// /lanft/relay, same origin) and names the receiving page's origin for
// it. The transfer protocol then runs unchanged (proto.js serve and
// receive) over a SealedStream over an HTTPStream (httppath.js) on the
// relay: every record is ChaCha20-Poly1305 (Go in lanft.wasm), its nonce
// and associated data the direction and the record's index, so the lanft
// in the middle sees only sealed bytes and a record changed, dropped,
// replayed or reordered fails to open.

import { writeMessage, readMessage, FLAG_SERVES_PAGE, FLAG_RELAY } from './proto.js';
import { HTTPStream } from './httppath.js';
import { core, show, log } from './ui.js';

// RELAY turns the relay on: with it false a page sets no FLAG_RELAY and
// every transfer between pages goes over the data channel.
export const RELAY = true;
// RELAY_FLAGS are the preamble bits a page sets for the relay.
export const RELAY_FLAGS = RELAY ? FLAG_RELAY : 0;
// RELAY_MIN: smaller shares go over the data channel, which starts sooner.
export const RELAY_MIN = 16 << 20;
const PROBE = 5000; // ms for GET hello
const RECORD = 1 << 20; // most plaintext bytes in one sealed record
const TAG = 16;
const BASE = /^https?:\/\/[^/]+\/lanft\/relay\/[A-Za-z0-9_-]{43}\/$/;

const b64 = (b) => btoa(String.fromCharCode(...b));
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

// both reports whether the peer (its preamble flags) is a page that relays.
const both = (remoteFlags) => (remoteFlags & FLAG_RELAY) !== 0 && (remoteFlags & FLAG_SERVES_PAGE) === 0;

// joinRelay runs the receiving page's side of the messages on the data
// channel s; it returns the stream of the transfer over the relay, or
// null when the data channel carries it.
export async function joinRelay(s, remoteFlags, peer) {
  if (!both(remoteFlags)) return null;
  await writeMessage(s, { v: 1, origin: location.origin });
  const g = await readMessage(s);
  let key = null;
  try { key = g && typeof g.key === 'string' ? unb64(g.key) : null; } catch (e) { key = null; }
  if (!g || typeof g.relay !== 'string' || !BASE.test(g.relay) || !key || key.length !== 32) {
    if (g && g.why !== 'small') log(`${show(peer)}: no relay (${show(String((g && g.why) || 'none offered'))}); the data channel carries the transfer`);
    return null;
  }
  try {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), PROBE);
    const r = await fetch(g.relay + 'hello', { signal: ctl.signal, cache: 'no-store' }).finally(() => clearTimeout(timer));
    if (r.status !== 204) throw new Error(`it answered ${r.status}`);
  } catch (e) {
    const why = `this browser cannot reach the lanft at ${new URL(g.relay).host}: ${e.message}`;
    log(`${show(peer)}: ${why}; the data channel carries the transfer`);
    await writeMessage(s, { v: 1, path: 'datachannel', why });
    return null;
  }
  await writeMessage(s, { v: 1, path: 'relay' });
  return relayed(g.relay, key, 1, peer);
}

// offerRelay runs the sharing page's side for share; it returns the
// stream of the transfer over the relay, or null.
export async function offerRelay(s, remoteFlags, peer, share) {
  if (!both(remoteFlags)) return null;
  const hello = await readMessage(s);
  const refuse = async (why) => { await writeMessage(s, { v: 1, why }); return null; };
  if (share.total < RELAY_MIN) return refuse('small');
  let tokens;
  try {
    const r = await fetch('/lanft/relay', {
      method: 'POST', cache: 'no-store', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ origin: String(hello && hello.origin) }),
    });
    if (!r.ok) throw new Error(r.status === 503 ? (await r.text()).trim() : `HTTP ${r.status}`);
    tokens = await r.json();
  } catch (e) {
    log(`${show(peer)}: this page's lanft gives no relay (${e.message}); the data channel carries the transfer`);
    return refuse(`the sharing page's lanft gives no relay: ${e.message}`);
  }
  const key = crypto.getRandomValues(new Uint8Array(32));
  await writeMessage(s, { v: 1, relay: `${location.origin}/lanft/relay/${tokens.b}/`, key: b64(key) });
  const a = await readMessage(s);
  if (!a || a.path !== 'relay') {
    log(`${show(peer)}: ${show(String((a && a.why) || 'it takes no relay'))}; the data channel carries the transfer`);
    return null;
  }
  return relayed(`${location.origin}/lanft/relay/${tokens.a}/`, key, 0, peer);
}

// relayed is the sealed stream on the relay end at base; dir is this
// page's direction (0: the sharing page).
function relayed(base, key, dir, peer) {
  log(`${show(peer)}: the transfer goes through the lanft at ${new URL(base).host}, sealed end to end`);
  document.body.dataset.relay = base; // for tests and the curious
  return new SealedStream(new HTTPStream(base, (t) => log(`relay to ${show(peer)}: ${t}`)), key, dir);
}

// SealedStream is proto.js's Stream (read, write, linger, close) over
// another stream, each write sealed as records of a u32 big-endian length
// then ChaCha20-Poly1305's output.
export class SealedStream {
  constructor(inner, key, dir) {
    this.inner = inner;
    this.key = core().relayKey(key);
    this.dir = dir;
    this.frameSize = inner.frameSize;
    this.sealed = 0; // records written
    this.opened = 0; // records read
    this.chunks = [];
    this.len = 0;
  }

  async write(b) {
    for (let off = 0; off < b.length; off += RECORD) {
      const ct = core().relaySeal(this.key, this.dir, this.sealed++, b.subarray(off, Math.min(b.length, off + RECORD)));
      const rec = new Uint8Array(4 + ct.length);
      new DataView(rec.buffer).setUint32(0, ct.length);
      rec.set(ct, 4);
      await this.inner.write(rec);
    }
  }

  // more reads and opens the next record.
  async more() {
    const h = await this.inner.read(4);
    const n = new DataView(h.buffer, h.byteOffset, 4).getUint32(0);
    if (n < TAG || n > RECORD + TAG) throw new Error(`the relay's stream was changed on the way: a record of ${n} bytes; nothing of it is kept`);
    let p;
    try {
      p = core().relayOpen(this.key, 1 - this.dir, this.opened++, await this.inner.read(n));
    } catch (e) {
      throw new Error(`the relay's stream was changed on the way: ${e.message}; nothing of it is kept`);
    }
    if (p.length) {
      this.chunks.push(p);
      this.len += p.length;
    }
  }

  async read(n) {
    while (this.len < n) await this.more();
    this.len -= n;
    const first = this.chunks[0];
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    for (let off = 0; off < n;) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }

  linger(ms) { return this.inner.linger(ms); }

  close() {
    core().relayForget(this.key);
    this.inner.close();
  }
}
