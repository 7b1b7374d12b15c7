// lanft's data-channel protocol in the browser: a byte stream over an
// RTCDataChannel, the preamble of internal/node/auth.go (with the shared
// code exchange), and the frames of the transfer package (transfer/doc.go).
// Identity proofs, the code exchange and the manifest checks are lanft's Go
// code (globalThis.lanftCore, web/wasm); SHA-256 is sha256.js, for speed.

import { SHA256 } from './sha256.js';

const core = () => globalThis.lanftCore;

// Messages on the data channel are at most 64 KiB (Chromium and Pion agree
// on that); a sender waits while more than HIGH bytes are queued.
export const MAX_MESSAGE = 64 << 10;
const HIGH = 4 << 20;
const LOW = 1 << 20;

// Over the data channel the page keeps what it receives in Blobs; it
// takes at most this much in one transfer there (web.MaxReceive). The
// HTTP path (httppath.js) has no such limit: the browser saves to disk.
export const MAX_RECEIVE = 2 * 1024 * 1024 * 1024;

// ByteQueue holds the chunks a stream received until they are read:
// read(n) waits for exactly n bytes, or throws once the queue is closed
// with fewer. closedError() makes what it throws then.
export class ByteQueue {
  constructor(closedError = () => new Error('the connection closed')) {
    this.closedError = closedError;
    this.chunks = [];
    this.len = 0;
    this.closed = false;
    this.waiter = null;
  }

  push(b) {
    this.chunks.push(b);
    this.len += b.length;
    this.wake();
  }

  close() {
    this.closed = true;
    this.wake();
  }

  wake() {
    const w = this.waiter;
    this.waiter = null;
    if (w) w();
  }

  // changed resolves at the next push or close.
  changed() {
    return new Promise((r) => { this.waiter = r; });
  }

  // read returns exactly n bytes, or throws once the queue has closed.
  async read(n) {
    while (this.len < n) {
      if (this.closed) throw this.closedError();
      await this.changed();
    }
    this.len -= n;
    const first = this.chunks[0];
    if (first && first.length >= n) { // a view of the first chunk, no copy (none may be queued when n is 0)
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}

export class Stream {
  constructor(dc) {
    this.dc = dc;
    this.in = new ByteQueue();
    dc.binaryType = 'arraybuffer';
    dc.bufferedAmountLowThreshold = LOW;
    dc.addEventListener('message', (e) => {
      if (typeof e.data === 'string') return;
      this.in.push(new Uint8Array(e.data));
    });
    dc.addEventListener('close', () => this.in.close());
  }

  // closed tells whether the channel has closed.
  get closed() { return this.in.closed; }

  // read returns exactly n bytes, or throws once the channel has closed.
  read(n) { return this.in.read(n); }

  // write sends b in messages of at most MAX_MESSAGE bytes, waiting while
  // the channel's queue is full (Chromium refuses sends past about 16 MiB).
  async write(b) {
    for (let off = 0; off < b.length; off += MAX_MESSAGE) {
      await this.drain();
      this.dc.send(b.subarray(off, Math.min(b.length, off + MAX_MESSAGE)));
    }
  }

  async drain() {
    while (this.dc.bufferedAmount > HIGH) {
      if (this.dc.readyState !== 'open') throw new Error('the connection closed');
      await new Promise((r) => {
        const done = () => { this.dc.removeEventListener('bufferedamountlow', done); this.dc.removeEventListener('close', done); r(); };
        this.dc.addEventListener('bufferedamountlow', done);
        this.dc.addEventListener('close', done);
      });
    }
    if (this.dc.readyState !== 'open') throw new Error('the connection closed');
  }

  // linger waits up to ms for the other side to close, so that our last
  // message is read before the connection goes.
  async linger(ms) {
    const t0 = Date.now();
    while (!this.closed && Date.now() - t0 < ms) {
      await Promise.race([this.in.changed(), new Promise((r) => setTimeout(r, 100))]);
    }
  }
}

// ---- preamble (internal/node/auth.go) ----

const MAGIC = [0x4c, 0x41, 0x4e, 0x46, 0x54, 0x02]; // "LANFT" 2
const FLAG_CODE = 1;
// The other FLAGS bits (internal/node/auth.go; /work design of the HTTP
// path and the push offer): a page that takes bytes over HTTP, a CLI that
// serves them, an initiator that sends (pushes) rather than receives.
export const FLAG_PAGE = 4;
export const FLAG_SERVES_PAGE = 8;
export const FLAG_PUSH = 16;
// FLAG_RELAY: a page that takes a share from another page through the
// lanft that serves the sharing page (relay.js).
export const FLAG_RELAY = 32;
const NONCE = 32;
const NONCE_WAIT = 10000; // ms, as node.nonceWait

export class CodeError extends Error {}

// SetupClosed: the connection closed before the peer's preamble, so nothing
// was decided: a lost connection, which a receiving page tries again (as
// the CLI does).
export class SetupClosed extends Error {}

// within rejects with msg unless p settles within ms.
function within(p, ms, msg) {
  let timer;
  return Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(msg)), ms); })])
    .finally(() => clearTimeout(timer));
}

// nonces runs the nonces of the preamble (identity.VerificationCode): the
// receiver sends Nr and checks that the sharer's Ns opens the commitment
// of its verified answer; the sharer settles the code before it reveals
// Ns. settle(nr, ns) shows the code.
async function nonces(s, { initiator, nonce, commit, settle, peer }) {
  const late = `the peer could not be verified: ${peer} did not complete the verification within ${NONCE_WAIT / 1000} s (someone may be in the middle)`;
  const read = () => within(s.read(NONCE), NONCE_WAIT, late).catch((e) => {
    throw new Error(e.message === late ? late : `the peer could not be verified: ${peer} closed the connection during the verification (someone may be in the middle)`);
  });
  if (initiator) {
    const nr = core().sasNonce();
    await s.write(nr);
    const ns = (await read()).slice();
    if (!core().sasOpens(commit, ns)) {
      throw new Error(`the peer could not be verified: ${peer} revealed a nonce that does not open the commitment of its answer: someone is in the middle, trying to steer the verification code`);
    }
    settle(nr, ns);
    return;
  }
  const nr = (await read()).slice();
  settle(nr, nonce);
  await s.write(nonce);
}

async function writeChunk(s, b) {
  const out = new Uint8Array(2 + b.length);
  new DataView(out.buffer).setUint16(0, b.length);
  out.set(b, 2);
  await s.write(out);
}

async function readChunk(s) {
  const h = await s.read(2);
  const n = (h[0] << 8) | h[1];
  if (n > 1024) throw new CodeError(`shared code: code exchange message of ${n} bytes`);
  return (await s.read(n)).slice();
}

// preamble runs lanft's preamble; the receiver is the initiator. prints
// are the DTLS fingerprints: ours and the peer's (verified). nonce is the
// sharer's Ns, commit the receiver's commitment from the answer, settle
// the callback that shows the verification code (see nonces). flags are
// this side's other FLAGS bits; it returns the peer's FLAGS byte.
export async function preamble(s, { code, initiator, local, remote, peer, nonce, commit, settle, flags = 0 }) {
  await s.write(new Uint8Array([...MAGIC, (code ? FLAG_CODE : 0) | (flags & ~FLAG_CODE)]));
  const hello = await s.read(MAGIC.length + 1).catch(() => {
    throw new SetupClosed(`the connection to ${peer} closed while it was being set up, before ${peer} started lanft's preamble: try again`);
  });
  for (let i = 0; i < MAGIC.length - 1; i++) {
    if (hello[i] !== MAGIC[i]) throw new Error(`${peer} does not speak lanft's data-channel protocol`);
  }
  const v = hello[MAGIC.length - 1];
  if (v < MAGIC[MAGIC.length - 1]) {
    throw new Error(`the peer runs an older lanft: ${peer} speaks version ${v} of lanft's data-channel protocol, without a safe verification code; update lanft on ${peer}`);
  }
  if (v !== MAGIC[MAGIC.length - 1]) {
    throw new Error(`${peer} speaks a newer version (${v}) of lanft's data-channel protocol; reload this page from an updated lanft`);
  }
  await nonces(s, { initiator, nonce, commit, settle, peer });
  const remoteFlags = hello[MAGIC.length];
  const theirs = (remoteFlags & FLAG_CODE) !== 0;
  if (!code && !theirs) return remoteFlags;
  if (!code) throw new CodeError(`shared code: ${peer} requires a shared code: enter it under Options`);
  if (!theirs) throw new CodeError(`shared code: ${peer} did not give the shared code (it must use the same code)`);
  const [printI, printR] = initiator ? [local, remote] : [remote, local];
  const [party, msg] = core().cpaceStart(code);
  await writeChunk(s, msg);
  const peerMsg = await readChunk(s);
  const isk = core().cpaceFinish(party, peerMsg, initiator);
  const [role, peerRole] = initiator ? ['receiver', 'sharer'] : ['sharer', 'receiver'];
  await writeChunk(s, core().confirm(isk, 'lanft-confirm-' + role, printI, printR));
  let got;
  try {
    got = await readChunk(s);
  } catch (e) {
    throw new CodeError(`shared code: ${peer} closed the connection during the code check (codes differ?)`);
  }
  if (!core().equal(got, core().confirm(isk, 'lanft-confirm-' + peerRole, printI, printR))) {
    throw new CodeError(`shared code: the code does not match ${peer}'s, or someone is in the middle`);
  }
  return remoteFlags;
}

// ---- messages (internal/direct: a u16 big-endian length, then JSON) ----

// writeMessage sends v as one message of the format of direct.WriteMessage.
export async function writeMessage(s, v) {
  const b = enc.encode(JSON.stringify(v));
  if (b.length > 0xffff) throw new Error('message too long');
  const out = new Uint8Array(2 + b.length);
  out[0] = b.length >> 8;
  out[1] = b.length & 0xff;
  out.set(b, 2);
  await s.write(out);
}

// readMessage reads one message written by direct.WriteMessage.
export async function readMessage(s) {
  const h = await s.read(2);
  const n = (h[0] << 8) | h[1];
  return JSON.parse(dec.decode(await s.read(n)));
}

// ---- frames (transfer/frame.go) ----

const T = { M: 0x4d, P: 0x50, F: 0x46, D: 0x44, E: 0x45, K: 0x4b, X: 0x58 };
const BOUNDS = {
  [T.M]: [2, 16 << 20], [T.P]: [2, 16 << 20], [T.F]: [12, 12], [T.D]: [1, 256 << 10],
  [T.E]: [0, 0], [T.K]: [0, 0], [T.X]: [2, 64 << 10],
};
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export class TransferError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

async function readFrame(s) {
  const h = await s.read(5);
  const t = h[0];
  const n = new DataView(h.buffer, h.byteOffset, 5).getUint32(1);
  const b = BOUNDS[t];
  if (!b) throw new TransferError('protocol', `unknown frame type 0x${t.toString(16)}`);
  if (n < b[0] || n > b[1]) throw new TransferError('protocol', `frame of ${n} bytes is outside the allowed ${b[0]} to ${b[1]}`);
  return { t, p: n ? await s.read(n) : new Uint8Array(0) };
}

function frame(t, payload) {
  const out = new Uint8Array(5 + payload.length);
  out[0] = t;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}

// dataHeader is the header of a DATA frame of n payload bytes.
function dataHeader(n) {
  const out = new Uint8Array(5);
  out[0] = T.D;
  new DataView(out.buffer).setUint32(1, n);
  return out;
}

const json = (v) => enc.encode(JSON.stringify(v));

// sendError tells the peer why the transfer stops (an ERROR frame).
export async function sendError(s, code, message) {
  try { await s.write(frame(T.X, json({ code, message }))); } catch (e) { /* the peer is gone */ }
}

function remoteError(who, p) {
  let code = 'failed', message = 'no reason given';
  try { ({ code, message } = JSON.parse(dec.decode(p))); } catch (e) { /* keep the defaults */ }
  return new TransferError('remote', `the ${who} stopped the transfer: ${core().displayName(String(message))} (${core().displayName(String(code))})`);
}

function fileFrame(index, offset) {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint32(0, index);
  v.setBigUint64(4, BigInt(offset));
  return frame(T.F, b);
}

// ---- receiving (transfer/receive.go, without a disk) ----

// receive reads a share from s. accept(manifest) resolves to true to go on;
// progress(done, total) is called as bytes arrive; it returns the files
// as {path, size, blob}. max is the most it takes (MAX_RECEIVE over the
// data channel; the relay takes what the browser's Blob storage holds).
export async function receive(s, { accept, progress, max = MAX_RECEIVE }) {
  const fail = async (err) => {
    if (err instanceof TransferError && err.code !== 'remote') await sendError(s, err.code, err.message);
    throw err;
  };
  let f = await readFrame(s).catch((err) => fail(err instanceof TransferError ? err
    : new Error('the connection closed after the verification, before the sender listed its files: try again')));
  if (f.t === T.X) throw remoteError('sender', f.p);
  if (f.t !== T.M) return fail(new TransferError('protocol', 'the sender did not start with a MANIFEST'));
  let m;
  try { m = JSON.parse(dec.decode(f.p)); } catch (e) { return fail(new TransferError('protocol', 'malformed manifest')); }
  if (m.version !== 1) return fail(new TransferError('protocol', `the sender speaks protocol version ${m.version}; this page speaks 1`));
  const entries = Array.isArray(m.entries) ? m.entries : [];
  for (const e of entries) if (e && e.kind === 'file' && e.size === undefined) e.size = 0; // omitted when 0
  const bad = core().validateManifest(JSON.stringify(entries));
  if (bad) return fail(new TransferError(bad[0], bad[1]));
  const total = entries.reduce((n, e) => n + (e.kind === 'file' ? e.size || 0 : 0), 0);
  if (total > max) {
    return fail(new TransferError('rejected', `this share holds ${total} bytes; the browser page takes at most 2 GiB (${MAX_RECEIVE} bytes) in one transfer over the data channel, and this one comes no other way: use lanft receive for it`));
  }
  if (!(await accept({ entries, total }))) return fail(new TransferError('rejected', 'declined'));
  const wants = [];
  entries.forEach((e, i) => { if (e.kind === 'file') wants.push(i); });
  await s.write(frame(T.P, json({ files: wants.map((index) => ({ index })) })));

  const out = [];
  let cur = null, next = 0, done = 0;
  const finish = () => {
    const e = entries[cur.index];
    if (cur.got !== e.size) throw new TransferError('integrity', `${e.path}: ${cur.got} bytes received of ${e.size}`);
    const sum = cur.hash.hex();
    if (sum !== e.sha256) throw new TransferError('integrity', `${e.path} arrived corrupted (SHA-256 mismatch)`);
    cur.blobs.push(new Blob(cur.parts));
    out.push({ path: e.path, size: e.size, blob: new Blob(cur.blobs) });
    cur = null;
  };
  try {
    for (;;) {
      f = await readFrame(s);
      if (f.t === T.D) {
        if (!cur) throw new TransferError('protocol', 'DATA frame outside any file');
        const e = entries[cur.index];
        if (f.p.length > e.size - cur.got) throw new TransferError('integrity', `the sender sent more than the ${e.size} bytes declared for ${e.path}`);
        cur.hash.update(f.p);
        cur.parts.push(f.p);
        cur.partBytes += f.p.length;
        if (cur.partBytes >= 16 << 20) { // hand the bytes to Blob storage, which may page them to disk
          cur.blobs.push(new Blob(cur.parts));
          cur.parts = [];
          cur.partBytes = 0;
        }
        cur.got += f.p.length;
        done += f.p.length;
        progress(done, total);
      } else if (f.t === T.F || f.t === T.E) {
        if (cur) finish();
        if (f.t === T.E) {
          if (next < wants.length) throw new TransferError('integrity', `the sender ended without sending ${entries[wants[next]].path}`);
          await s.write(frame(T.K, new Uint8Array(0)));
          return out;
        }
        const v = new DataView(f.p.buffer, f.p.byteOffset, 12);
        const idx = v.getUint32(0), off = Number(v.getBigUint64(4));
        if (next >= wants.length || wants[next] !== idx) throw new TransferError('protocol', `FILE frame for entry ${idx}, which is not the next file requested`);
        if (off !== 0) throw new TransferError('protocol', `the sender started at byte ${off}; expected 0`);
        next++;
        cur = { index: idx, hash: new SHA256(), parts: [], partBytes: 0, blobs: [], got: 0 };
      } else if (f.t === T.X) {
        throw remoteError('sender', f.p);
      } else {
        throw new TransferError('protocol', 'unexpected frame while receiving files');
      }
    }
  } catch (err) {
    if (err instanceof TransferError) return fail(err);
    throw err;
  }
}

// ---- sending (transfer/source.go) ----

const READ = 4 << 20;

// hashFile returns the lowercase hex SHA-256 of blob's first n bytes.
export async function hashBlob(blob, n = blob.size, progress = () => {}) {
  const h = new SHA256();
  for (let off = 0; off < n; off += READ) {
    h.update(new Uint8Array(await blob.slice(off, Math.min(n, off + READ)).arrayBuffer()));
    progress(Math.min(n, off + READ));
  }
  return h.hex();
}

// buildManifest lists picked files (with their folders first) and hashes
// them. files are File objects; a folder's carry webkitRelativePath.
export async function buildManifest(files, progress = () => {}) {
  const entries = [], blobs = [], dirs = new Set();
  let total = 0, hashed = 0;
  for (const f of files) total += f.size;
  for (const f of files) {
    const path = f.webkitRelativePath || f.name;
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!dirs.has(d)) { dirs.add(d); entries.push({ path: d, kind: 'dir' }); blobs.push(null); }
    }
    const sha256 = await hashBlob(f, f.size, (n) => progress(hashed + n, total));
    hashed += f.size;
    entries.push({ path, kind: 'file', size: f.size, sha256 });
    blobs.push(f);
  }
  const bad = core().validateManifest(JSON.stringify(entries));
  if (bad) throw new Error(`cannot share these files: ${bad[1]}`);
  return { entries, blobs, total };
}

// manifestPayload is the MANIFEST frame's payload for share, the exact
// bytes serve sends: the HTTP path hashes them over the verified channel
// (httppath.js negotiate), so they are made once per share.
export function manifestPayload(share) {
  if (!share.payload) share.payload = json({ version: 1, entries: share.entries });
  return share.payload;
}

// serve sends a manifest built by buildManifest to one receiver on s.
export async function serve(s, share, progress) {
  const { entries, blobs, total } = share;
  await s.write(frame(T.M, manifestPayload(share)));
  let f = await readFrame(s);
  if (f.t === T.X) throw remoteError('receiver', f.p);
  if (f.t !== T.P) { await sendError(s, 'protocol', 'expected PLAN'); throw new TransferError('protocol', 'the receiver sent no PLAN'); }
  let plan;
  try { plan = JSON.parse(dec.decode(f.p)); } catch (e) { plan = null; }
  const wants = plan && Array.isArray(plan.files) ? plan.files : null;
  let last = -1;
  for (const w of wants || [null]) {
    const e = w && entries[w.index];
    if (!e || !Number.isInteger(w.index) || w.index <= last || e.kind !== 'file' ||
        (w.offset || 0) < 0 || (w.offset || 0) > e.size) {
      await sendError(s, 'protocol', 'malformed PLAN');
      throw new TransferError('protocol', 'the receiver sent a malformed PLAN');
    }
    last = w.index;
  }
  // The receiver's ERROR or OK is read while we send.
  let reply = null;
  const replyP = readFrame(s).then((r) => { reply = r; return r; }, (err) => { reply = { err }; return reply; });
  let done = total;
  for (const w of wants) done -= entries[w.index].size - (w.offset || 0);
  // DATA frames fit a data channel's message, or what the stream asks
  // for (HTTPStream: the transfer's largest).
  const step = s.frameSize || MAX_MESSAGE - 5;
  for (const w of wants) {
    const e = entries[w.index], blob = blobs[w.index];
    let off = w.offset || 0;
    if (off > 0 && (await hashBlob(blob, off)) !== w.sha256) { done -= off; off = 0; }
    await s.write(fileFrame(w.index, off));
    // A stream that takes Blobs (HTTPStream) gets the file's bytes as
    // slices of it: the browser reads them from disk as it uploads them,
    // never into this page.
    while (s.writeBlob && off < e.size && !reply) {
      const k = Math.min(step, e.size - off);
      await s.writeBlob(dataHeader(k), blob.slice(off, off + k));
      off += k;
      done += k;
      progress(done, total);
    }
    while (off < e.size) {
      if (reply) break;
      const buf = new Uint8Array(await blob.slice(off, Math.min(e.size, off + READ)).arrayBuffer());
      for (let i = 0; i < buf.length && !reply; i += step) {
        const p = buf.subarray(i, Math.min(buf.length, i + step));
        await s.write(frame(T.D, p));
        done += p.length;
        progress(done, total);
      }
      off += buf.length;
    }
    if (reply) break;
  }
  if (!reply) await s.write(frame(T.E, new Uint8Array(0)));
  const r = await replyP;
  if (r.err) throw new TransferError('interrupted', `connection to the receiver lost: ${r.err.message}`);
  if (r.t === T.X) throw remoteError('receiver', r.p);
  if (r.t !== T.K) throw new TransferError('protocol', 'the receiver sent something other than OK');
}
