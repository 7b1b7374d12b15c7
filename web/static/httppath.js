// The HTTP path between this page and a lanft CLI on the LAN
// (internal/node/pagepath.go; the server is internal/pagehttp). After the
// preamble, when the CLI serves pages (FLAG_SERVES_PAGE), the page asks
// over the verified data channel for a capability on the CLI's own
// address, probes it, and the bytes then go over plain HTTP:
//
//   page ──▶ {"v":1,"origin":location.origin}
//   CLI  ──▶ {"v":1,"base":"http://IP:PORT/c/TOKEN/","purpose":"download"|"upload"} or {"v":1,"why":...}
//            (a download adds "manifest_sha256")
//   page ──▶ {"v":1,"path":"http"} once GET base+"hello" answered 204, or {"v":1,"path":"datachannel","why":...}
//            (an upload adds "manifest_sha256")
//
// manifest_sha256 is the SHA-256 of the exact MANIFEST JSON bytes the
// holder of the files sends over HTTP; the other side refuses a list that
// hashes otherwise. Plain HTTP lets anyone on the LAN read the files, but
// with the list bound to the verified channel no one on the way can
// change a file and its listed SHA-256 together unnoticed.
//
// A download is saved by the browser's own download manager (a Save link
// per file, or all as one ZIP): it streams to disk, goes on behind a locked
// screen and resumes with Range; nothing sits in this page's memory, so no
// size limit applies. An upload runs the transfer protocol (proto.js
// serve) unchanged over HTTPStream: POST up?off=N and GET down?off=N.

import { ByteQueue, writeMessage, readMessage, hashBlob, manifestPayload, FLAG_PAGE, FLAG_SERVES_PAGE } from './proto.js';
import { SHA256 } from './sha256.js';
import { core, show, el, size, log } from './ui.js';

// PAGE_FLAGS are the preamble bits a page sets: it takes bytes over HTTP.
export const PAGE_FLAGS = FLAG_PAGE;

const PROBE = 5000; // ms for GET hello
const RETRY_FOR = 60000; // ms a cut request is retried for
const CHUNK = 6 << 20; // bytes per POST (the server takes at most 8 MiB)
// POSTs in flight at once: a browser uploads one request body far slower
// than the LAN (Chromium: 138 MB/s one at a time, 260 MB/s with four), and
// the server holds a POST that starts past what it has (at most 32 MiB
// ahead, 8 POSTs). Four, plus the GET down, stay within the browser's six
// connections to one host.
const IN_FLIGHT = 4;
const FRAME = 256 << 10; // DATA payload: the largest transfer/frame.go takes

// partLen is the size of a part written to an HTTPStream (bytes or Blob).
const partLen = (p) => (p instanceof Blob ? p.size : p.length);
// cut is bytes [a, b) of such a part.
const cut = (p, a, b) => (p instanceof Blob ? p.slice(a, b) : p.subarray(a, b));

// within rejects with msg unless p settles within ms.
function within(p, ms, msg) {
  let timer;
  return Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(msg)), ms); })])
    .finally(() => clearTimeout(timer));
}

const HEX64 = /^[0-9a-f]{64}$/;

// hexSHA256 is the lowercase hex SHA-256 of the bytes b.
function hexSHA256(b) {
  const h = new SHA256();
  h.update(b);
  return h.hex();
}

// negotiate runs the HTTP path's three messages on s when the peer serves
// pages (its preamble flags: remoteFlags); want is the purpose this page
// expects ('download' when it receives, 'upload' when it sends: share is
// then what it will serve, whose list it binds to the verified channel).
// It returns the grant, { base, manifestSHA256 } (the capability's base
// URL, and for a download the list's SHA-256 lanft gave, '' from an older
// lanft), when the bytes go over HTTP, or null when the data channel
// carries them.
export async function negotiate(s, remoteFlags, peer, want, share = null) {
  if (!(remoteFlags & FLAG_SERVES_PAGE)) return null;
  await writeMessage(s, { v: 1, origin: location.origin });
  const g = await readMessage(s);
  if (!g || typeof g.base !== 'string' || !/^https?:\/\/[^/]+\/c\/[A-Za-z0-9_-]+\/$/.test(g.base)) {
    log(`${show(peer)}: no HTTP path (${show(String((g && g.why) || 'none offered'))}); the data channel carries the transfer`);
    return null;
  }
  try {
    if (g.purpose !== want) throw new Error(`it offers an ${show(String(g.purpose))} where this page expects an ${want}`);
    if (g.manifest_sha256 !== undefined && !(typeof g.manifest_sha256 === 'string' && HEX64.test(g.manifest_sha256))) {
      throw new Error('it gave a malformed SHA-256 for its list of files');
    }
    const ctl = new AbortController();
    const r = await within(fetch(g.base + 'hello', { signal: ctl.signal, cache: 'no-store' }), PROBE, `no answer within ${PROBE / 1000} s`)
      .catch((e) => { ctl.abort(); throw e; });
    if (r.status !== 204) throw new Error(`it answered ${r.status}`);
  } catch (e) {
    const why = `this browser cannot reach lanft over HTTP at ${new URL(g.base).host}: ${e.message}`;
    log(`${show(peer)}: ${why}; the data channel carries the transfer`);
    await writeMessage(s, { v: 1, path: 'datachannel', why });
    return null;
  }
  if (want === 'upload') {
    await writeMessage(s, { v: 1, path: 'http', manifest_sha256: hexSHA256(manifestPayload(share)) });
    return { base: g.base, manifestSHA256: '' };
  }
  const sum = typeof g.manifest_sha256 === 'string' ? g.manifest_sha256 : '';
  await writeMessage(s, { v: 1, path: 'http' });
  return { base: g.base, manifestSHA256: sum };
}

// ---- download: the browser's download manager saves the files ----

// mount returns this module's own element for a download from peer, made
// once, after the page's other parts (it keeps out of their layout).
function mount() {
  let box = document.getElementById('httppath');
  if (!box) {
    box = el('section', 'httppath');
    box.id = 'httppath';
    (document.querySelector('main') || document.body).prepend(box);
  }
  return box;
}

// download fetches the manifest of the grant (negotiate's) and, once its
// bytes hash to the SHA-256 lanft gave over the verified channel, shows a
// Save link per file, "Save all as one ZIP" and "Check a saved file". It
// resolves once shown: the browser saves, and lanft tells its side when
// all was fetched.
export async function download(grant, peer) {
  const { base, manifestSHA256 } = grant;
  const r = await fetch(base + 'manifest', { cache: 'no-store' });
  if (!r.ok) throw new Error(`${show(peer)} did not give its list of files (HTTP ${r.status})`);
  const raw = new Uint8Array(await r.arrayBuffer());
  if (manifestSHA256 && hexSHA256(raw) !== manifestSHA256) {
    throw new Error(`the list of files from ${show(peer)} was changed on its way over HTTP (its SHA-256 is not the one lanft gave over the verified connection): `
      + `something on this network may be tampering with the transfer, so nothing is offered for saving. Receive again, or ask for the share with --path datachannel`);
  }
  let m;
  try { m = JSON.parse(new TextDecoder().decode(raw)); } catch (e) { m = null; }
  const entries = m && m.version === 1 && Array.isArray(m.entries) ? m.entries : null;
  if (!entries) throw new Error(`${show(peer)} sent a list of files this page does not understand`);
  for (const e of entries) if (e && e.kind === 'file' && e.size === undefined) e.size = 0;
  const bad = core().validateManifest(JSON.stringify(entries));
  if (bad) throw new Error(`${show(peer)} sent an unsafe list of files: ${bad[1]}`);
  const files = entries.map((e, i) => ({ e, i })).filter(({ e }) => e.kind === 'file');
  const total = files.reduce((n, { e }) => n + e.size, 0);

  const box = mount();
  box.replaceChildren(el('h2', '', `From ${show(peer)} over HTTP`),
    el('p', 'what', `${files.length} file(s), ${size(total)}. Your browser's download manager saves them, `
      + 'whatever their size: a download goes on when the screen locks and resumes after a short network cut.'));
  const ul = el('ul', 'files');
  for (const { e, i } of files) {
    const a = el('a', 'save', 'Save');
    a.href = `${base}f/${i}`;
    a.dataset.path = e.path;
    a.rel = 'noopener';
    ul.append(el('li', '', a, ' ', `${show(e.path)} (${size(e.size)})`));
  }
  box.append(ul);
  if (files.length > 1 || entries.some((e) => e.kind === 'dir')) {
    const z = el('a', 'zip', 'Save all as one ZIP');
    z.href = `${base}zip`;
    z.rel = 'noopener';
    box.append(el('p', '', z, ` (${size(total)}, folders kept)`));
  }
  box.append(checker(files.map(({ e }) => e), Boolean(manifestSHA256)));
  box.dataset.ready = String(files.length);
  log(`${show(peer)} gives ${files.length} file(s), ${size(total)} over HTTP: save them with the links`);
}

// checker is "Check a saved file": the person picks a saved file, the page
// hashes it (sha256.js) and compares it with lanft's SHA-256 from the list;
// bound says the list's own SHA-256 came over the verified channel.
function checker(entries, bound) {
  const input = el('input', 'check');
  input.type = 'file';
  const out = el('span', 'checked');
  input.onchange = async () => {
    const f = input.files[0];
    if (!f) return;
    const same = entries.filter((e) => e.size === f.size);
    if (same.length === 0) {
      out.textContent = `${f.name} (${size(f.size)}) is the size of no file listed: it is not one of them, or it is incomplete`;
      out.dataset.ok = 'false';
      return;
    }
    out.textContent = `hashing ${f.name}…`;
    const sum = await hashBlob(f, f.size, (d) => { out.textContent = `hashing ${f.name}: ${size(d)} of ${size(f.size)}`; });
    const hit = same.find((e) => e.sha256 === sum);
    out.textContent = hit ? `${f.name} is identical to ${show(hit.path)} (SHA-256 ${sum.slice(0, 16)}…)`
      : `${f.name} differs from every listed file of its size: save it again`;
    out.dataset.ok = String(Boolean(hit));
  };
  const about = bound
    ? 'The browser does not check what it saves: pick a saved file here and this page hashes it and compares it with '
      + 'the SHA-256 lanft gave over the verified connection. Identical means it is the file lanft shared.'
    : 'lanft sends what it hashed when it started sharing; the browser does not check what it saves. '
      + 'This lanft is older and did not bind the list to the verified connection, so someone on the network could have changed it. '
      + 'Picking a saved file here hashes it on this device and compares.';
  out.dataset.bound = String(bound);
  return el('p', 'check', el('label', '', 'Check a saved file: ', input), ' ', out, el('br'), about);
}

// ---- upload: the transfer protocol over HTTP requests ----

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// HTTPStream is proto.js's Stream (read(n), write(b), linger, close) over
// the upload capability at base: the page's bytes go by POST up?off=N,
// the CLI's come from GET down?off=N. A request that fails is tried again
// from the last acknowledged offset for up to RETRY_FOR, so a short
// network cut continues where it stopped.
export class HTTPStream {
  // onRetry(message), if given, hears of each cut request tried again.
  constructor(base, onRetry = () => {}) {
    this.base = base;
    this.onRetry = onRetry;
    this.frameSize = FRAME; // for proto.js serve: no data-channel message limit here
    this.out = []; // Uint8Arrays and Blobs written, not yet acknowledged, from offset this.acked
    this.outLen = 0;
    this.acked = 0;
    this.sent = 0; // bytes handed to a POST: [acked, sent) are in flight
    this.inFlight = 0; // POSTs under way
    this.flushing = false;
    this.acks = []; // resolvers waiting for a POST to end
    this.failed = null;
    this.in = new ByteQueue(() => this.failed || new Error('the connection closed'));
    this.got = 0; // bytes read from down
    this.ctl = new AbortController();
    this.down = this.pull();
  }

  // closed tells whether the stream has ended.
  get closed() { return this.in.closed; }

  // retry runs fn until it succeeds, for up to RETRY_FOR after the first
  // failure in a row.
  async retry(what, fn) {
    let since = 0, wait = 250;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (this.ctl.signal.aborted) throw new Error('the connection closed');
        if (e.permanent) throw e;
        if (!since) {
          since = Date.now();
          this.onRetry(`${what} (${e.message}); trying again for up to ${RETRY_FOR / 1000} s from byte ${this.acked}`);
        }
        if (Date.now() - since > RETRY_FOR) throw new Error(`${what}: ${e.message}, for ${RETRY_FOR / 1000} s`);
        await sleep(wait);
        wait = Math.min(2 * wait, 2000);
      }
    }
  }

  // pull keeps a GET down open from what was read so far, again after a cut.
  async pull() {
    try {
      await this.retry('lanft stopped answering', async () => {
        const r = await fetch(`${this.base}down?off=${this.got}`, { signal: this.ctl.signal, cache: 'no-store' });
        if (!r.ok) throw Object.assign(new Error(`lanft refused the stream (HTTP ${r.status})`), { permanent: r.status === 403 || r.status === 404 });
        const rd = r.body.getReader();
        for (;;) {
          const { done, value } = await rd.read();
          if (done) return; // lanft ended its stream
          this.got += value.length;
          this.in.push(value);
        }
      });
    } catch (e) {
      this.failed = this.failed || e;
    }
    this.in.close();
  }

  // read returns exactly n bytes, or throws once the stream has ended.
  read(n) { return this.in.read(n); }

  // write queues b for the POSTs, waiting while more than the POSTs in
  // flight and one more chunk's worth waits.
  async write(b) {
    if (this.failed) throw this.failed;
    this.out.push(b);
    this.outLen += b.length;
    this.kick();
    while (this.outLen >= (IN_FLIGHT + 1) * CHUNK && !this.failed) await this.changed();
    if (this.failed) throw this.failed;
  }

  // writeBlob queues head then the Blob b (a slice of a picked file, say):
  // its bytes go from the browser's storage into the POSTs, never through
  // this page (proto.js serve sends DATA frames so).
  async writeBlob(head, b) {
    if (this.failed) throw this.failed;
    this.out.push(head, b);
    this.outLen += head.length + b.size;
    this.kick();
    while (this.outLen >= (IN_FLIGHT + 1) * CHUNK && !this.failed) await this.changed();
    if (this.failed) throw this.failed;
  }

  // changed resolves when a POST ends.
  changed() {
    return new Promise((r) => this.acks.push(r));
  }

  notify() {
    const a = this.acks;
    this.acks = [];
    for (const r of a) r();
  }

  // kick starts POSTs of what was written and not yet sent, up to
  // IN_FLIGHT at once, each of CHUNK bytes; less than CHUNK goes only when
  // no POST runs (the transfer waits for an answer) or on flush.
  kick() {
    while (!this.failed && this.inFlight < IN_FLIGHT) {
      const unsent = this.acked + this.outLen - this.sent;
      if (unsent <= 0 || (unsent < CHUNK && this.inFlight > 0 && !this.flushing)) return;
      const start = this.sent;
      const end = start + Math.min(unsent, CHUNK);
      this.sent = end;
      this.inFlight++;
      this.post(start, end)
        .catch((e) => {
          this.failed = this.failed || e;
          this.ctl.abort();
          this.in.close();
        })
        .finally(() => {
          this.inFlight--;
          this.kick();
          this.notify();
        });
    }
  }

  // flush waits until everything written was acknowledged.
  async flush() {
    this.flushing = true;
    this.kick();
    while (this.outLen > 0 && !this.failed) await this.changed();
    this.flushing = false;
    if (this.failed) throw this.failed;
  }

  // bytes returns the written parts [from, to) (from >= this.acked), for
  // a Blob body.
  bytes(from, to) {
    const parts = [];
    let pos = this.acked;
    for (const p of this.out) {
      if (pos >= to) break;
      const n = partLen(p);
      const a = Math.max(from, pos) - pos, b = Math.min(to, pos + n) - pos;
      if (b > a) parts.push(a === 0 && b === n ? p : cut(p, a, b));
      pos += n;
    }
    return parts;
  }

  // post sends the stream's bytes [start, end), again from the last
  // acknowledged offset after a failure, until lanft has them all. A 409
  // (lanft did not get the bytes before them in time) is sent again too.
  async post(start, end) {
    await this.retry('cannot send to lanft', async () => {
      const from = Math.max(start, this.acked);
      if (from >= end) return;
      const body = new Blob(this.bytes(from, end));
      const r = await fetch(`${this.base}up?off=${from}`, {
        method: 'POST', body, signal: this.ctl.signal, cache: 'no-store',
        headers: { 'Content-Type': 'application/octet-stream' },
      });
      if (!r.ok && r.status !== 409) {
        throw Object.assign(new Error(`lanft refused the upload (HTTP ${r.status})`), { permanent: r.status < 500 });
      }
      const h = Number(r.headers.get('X-Lanft-Have'));
      if (!Number.isSafeInteger(h) || h < 0 || h > this.sent) throw Object.assign(new Error('lanft sent no valid offset'), { permanent: true });
      this.ack(h);
      if (h < end) throw new Error(`lanft has bytes up to ${h} only`);
    });
  }

  // ack drops the bytes below offset have.
  ack(have) {
    if (have <= this.acked) return;
    let k = Math.min(have, this.acked + this.outLen) - this.acked;
    this.acked += k;
    this.outLen -= k;
    while (k > 0) {
      const p = this.out[0], n = partLen(p);
      if (n <= k) { k -= n; this.out.shift(); } else { this.out[0] = cut(p, k, n); k = 0; }
    }
  }

  // linger waits up to ms for lanft to end its stream after our last bytes.
  async linger(ms) {
    await this.flush().catch(() => {});
    const t0 = Date.now();
    while (!this.closed && Date.now() - t0 < ms) {
      await Promise.race([this.in.changed(), sleep(100)]);
    }
  }

  close() {
    this.ctl.abort();
    this.in.close();
  }
}
