// lanft's browser page: a client of the seed signaling protocol (login,
// userlist, updata, offer/answer/candidate) with lanft's additive "lanft"
// objects, trading files over WebRTC data channels with the CLI and with
// other browsers. Every name is shown as text (textContent, append of
// strings), never as HTML.

import { Stream, preamble, receive, serve, buildManifest, MAX_RECEIVE } from './proto.js';

const $ = (id) => document.getElementById(id);
const core = () => globalThis.lanftCore;
const show = (s) => core().displayName(String(s));

function el(tag, cls, ...children) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  e.append(...children); // strings become text nodes
  return e;
}

function log(msg, cls = '') {
  $('log').prepend(el('li', cls, msg));
}

function size(n) {
  n = Number(n) || 0;
  if (n < 1024) return `${n} B`;
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return `${n.toFixed(1)} ${u[i]}`;
}

const app = {
  name: '',
  base: '',
  ws: null,
  retry: 250,
  meta: { v: 1, role: 'receive', proof: 2 },
  peers: new Map(),
  links: new Map(),
  share: null,
  ice: [], // the login reply's ICE servers (lanft.iceServers)
  calls: false, // the host mints ICE servers per call (lanft.calls)
  callSeq: 0,
  callWaits: new Map(), // call number -> its reply's handler
};

// ---- device key and pins (the browser's storage) ----

function hex(b) { return [...b].map((x) => x.toString(16).padStart(2, '0')).join(''); }

function deviceSeed() {
  let h = localStorage.getItem('lanft-key');
  if (!h || !/^[0-9a-f]{64}$/.test(h)) {
    h = hex(crypto.getRandomValues(new Uint8Array(32)));
    localStorage.setItem('lanft-key', h);
  }
  return Uint8Array.from(h.match(/../g).map((x) => parseInt(x, 16)));
}

// The pins are stored as they always were ({name: key}, under the
// spelling first seen). A name is looked up among the pins it is one name
// with (core().sameName, the CLI's names.Same): "Bob" and Cyrillic "ВОВ"
// are the pin of "bob". A name that is one with pins of different keys
// (spellings left by older pages, or "Ian" beside ian and lan) is a
// conflict that verify refuses.
function storedPins() {
  try { return JSON.parse(localStorage.getItem('lanft-pins') || '{}'); } catch (e) { return {}; }
}

// pinsOf returns the pins name is one name with, as [{name, key}].
function pinsOf(name) {
  return Object.entries(storedPins())
    .filter(([n, key]) => typeof key === 'string' && core().sameName(n, name))
    .map(([n, key]) => ({ name: n, key }));
}

// pin remembers key for a name seen for the first time; a known name
// (verify checked its key) stays pinned as it is.
function pin(name, key) {
  if (pinsOf(name).length) return;
  const raw = storedPins();
  raw[name] = key;
  localStorage.setItem('lanft-pins', JSON.stringify(raw));
}

// ---- signaling ----

function send(m) {
  if (!app.ws || app.ws.readyState !== WebSocket.OPEN) throw new Error('not connected to the signaling host');
  app.ws.send(JSON.stringify(m));
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  app.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: 'login', name: app.name, lanft: app.meta }));
  ws.onmessage = (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch (err) { return; }
    if (m && typeof m.type === 'string') onMessage(m);
  };
  ws.onclose = () => {
    if (app.ws !== ws) return;
    app.ws = null;
    $('status').textContent = 'offline: connecting again…';
    document.body.dataset.online = '';
    setTimeout(connect, app.retry);
    app.retry = Math.min(app.retry * 2, 5000);
  };
}

function relogin() {
  const ws = app.ws;
  app.ws = null;
  if (ws) ws.close();
  app.retry = 250;
  connect();
}

function onMessage(m) {
  switch (m.type) {
    case 'login':
      if (m.success) {
        const info = m.lanft && typeof m.lanft === 'object' ? m.lanft : {};
        app.ice = Array.isArray(info.iceServers) ? info.iceServers : [];
        app.calls = info.calls === true;
        app.retry = 250;
        $('status').textContent = `online as ${show(app.name)}`;
        document.body.dataset.online = app.name;
        document.body.dataset.logins = String(Number(document.body.dataset.logins || 0) + 1);
      } else {
        const why = String(m.message || 'refused');
        if (/taken|too close/.test(why)) {
          app.name = `${app.base}-${hex(crypto.getRandomValues(new Uint8Array(2)))}`;
          sessionStorage.setItem('lanft-name', app.name);
          relogin();
        } else {
          log(`login refused: ${why}`, 'error');
        }
      }
      break;
    case 'userlist':
      app.peers.clear();
      for (const p of Array.isArray(m.peers) ? m.peers : (m.users || []).map((name) => ({ name }))) {
        if (p && typeof p.name === 'string') app.peers.set(p.name, p);
      }
      render();
      break;
    case 'updata':
      if (m.action === 'login' && typeof m.name === 'string') app.peers.set(m.name, { name: m.name, lanft: m.lanft });
      if (m.action === 'offline') app.peers.delete(m.name);
      render();
      break;
    case 'offer':
      onOffer(m);
      break;
    case 'answer':
    case 'candidate': {
      const l = app.links.get(m.name);
      if (l) l.handle(m);
      break;
    }
    case 'leave': { // the peer is done with us (or gave up): free the connection
      const l = app.links.get(m.name);
      if (l) l.close();
      break;
    }
    case 'lanft': { // a refresh of the login's ICE servers, or the reply to a call request
      const info = m.lanft && typeof m.lanft === 'object' ? m.lanft : {};
      if (info.call) {
        const w = app.callWaits.get(info.call);
        if (w) w(info);
      } else if (Array.isArray(info.iceServers)) {
        app.ice = info.iceServers;
      }
      break;
    }
    case 'error':
      log(`signaling host: ${m.message}`, 'error');
      break;
  }
}

// callICE resolves to the ICE servers for one connection attempt: fresh
// ones (a TURN credential for this call) from a host that mints them per
// call, else, or without a reply within 5 s, the login's.
function callICE() {
  if (!app.calls) return Promise.resolve(app.ice);
  const id = ++app.callSeq;
  return new Promise((res) => {
    let timer = null;
    const done = (servers) => {
      app.callWaits.delete(id);
      clearTimeout(timer);
      res(servers);
    };
    timer = setTimeout(() => done(app.ice), 5000);
    app.callWaits.set(id, (info) => {
      if (info.message) log(`signaling host: ${String(info.message)}`, 'error');
      done(Array.isArray(info.iceServers) ? info.iceServers : app.ice);
    });
    try { send({ type: 'lanft', lanft: { call: id } }); } catch (e) { done(app.ice); }
  });
}

function render() {
  const ul = $('peers');
  ul.replaceChildren();
  for (const p of app.peers.values()) {
    if (p.name === app.name) continue;
    const row = el('li', 'peer', el('span', 'name', show(p.name)));
    row.dataset.name = p.name;
    const m = p.lanft && typeof p.lanft === 'object' ? p.lanft : null;
    if (m && m.role === 'share') {
      row.append(el('span', 'what', `shares ${show(m.title || '')} (${Number(m.files) | 0} file(s), ${size(m.bytes)})`));
      if (Number(m.bytes) > MAX_RECEIVE) row.append(el('span', 'toobig', `more than this page takes (${size(MAX_RECEIVE)}): use lanft receive`));
      const b = el('button', 'receive', 'Receive');
      b.type = 'button';
      b.onclick = () => receiveFrom(p.name);
      row.append(b);
    } else {
      row.append(el('span', 'what', m ? String(m.role) : 'other client'));
    }
    ul.append(row);
  }
  $('nopeers').hidden = ul.children.length > 0;
}

// ---- one WebRTC connection, with lanft's identity checks ----

class Link {
  constructor(remote) {
    this.remote = remote;
    this.pending = [];
    this.sent = false;
    this.remoteSet = false;
    this.remoteCands = [];
    this.closed = false;
    this.opened = new Promise((res, rej) => { this.openRes = res; this.openRej = rej; });
    // The peer connection waits for this call's ICE servers; what arrives
    // for it meanwhile waits on ready.
    this.ready = callICE().then((servers) => this.open(servers));
  }

  open(iceServers) {
    try {
      this.pc = new RTCPeerConnection({ iceServers });
    } catch (e) { // servers the browser refuses: go without them
      this.pc = new RTCPeerConnection({ iceServers: [] });
    }
    if (this.closed) this.pc.close();
    const remote = this.remote;
    this.pc.onicecandidate = (e) => {
      if (!e.candidate || !e.candidate.candidate) return;
      const c = e.candidate.toJSON();
      if (this.sent) this.sendCandidate(c); else this.pending.push(c);
    };
    this.pc.onconnectionstatechange = () => {
      if (this.pc.connectionState === 'failed') this.openRej(new Error(`the connection to ${show(remote)} failed`));
    };
    this.pc.ondatachannel = (e) => { if (e.channel.label === 'lanft') this.watch(e.channel); };
  }

  watch(dc) {
    const s = new Stream(dc);
    if (dc.readyState === 'open') this.openRes(s);
    dc.addEventListener('open', () => this.openRes(s));
  }

  sendCandidate(c) {
    try { send({ type: 'candidate', othername: this.remote, candidate: c }); } catch (e) { /* offline */ }
  }

  flush() {
    this.sent = true;
    for (const c of this.pending) this.sendCandidate(c);
    this.pending = [];
  }

  async setRemote(desc) {
    await this.pc.setRemoteDescription({ type: desc.type, sdp: desc.sdp });
    this.remoteSet = true;
    for (const c of this.remoteCands) await this.pc.addIceCandidate(c).catch(() => {});
    this.remoteCands = [];
  }

  // verify checks the proof on a relayed offer or answer (identity.Verify
  // over the fingerprint its SDP declares) and the pin of the name.
  verify(m, desc, offerPrint) {
    if (!desc || typeof desc.sdp !== 'string' || desc.type !== m.type) {
      throw new Error(`the peer could not be verified: ${show(m.name)} sent no ${m.type} description`);
    }
    const fp = core().sdpFingerprint(desc.sdp);
    const key = core().verify(m.type, m.name, app.name, fp, offerPrint, m.lanft ? JSON.stringify(m.lanft) : '');
    const known = pinsOf(m.name);
    if (known.some((p) => p.key !== known[0].key)) {
      const held = known.map((p) => `"${show(p.name)}" to device ${core().deviceID(p.key)}`).join(' and ');
      throw new Error(`device key changed: this browser pinned ${held}, and to lanft "${show(m.name)}" is one name with each; clear this site's data to forget them`);
    }
    if (known.length && known[0].key !== key) {
      const as = known[0].name === m.name ? '' : `, another spelling of the pinned name "${show(known[0].name)}",`;
      throw new Error(`device key changed: "${show(m.name)}"${as} used device ${core().deviceID(known[0].key)} before and now presents ${core().deviceID(key)}`);
    }
    this.first = known.length === 0;
    this.remoteKey = key;
    this.remotePrint = fp;
    if (m.type === 'answer') this.commit = m.lanft.commit; // verified with it
  }

  timeout(p, ms = 30000) {
    return Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`no connection to ${show(this.remote)} within ${ms / 1000} s`)), ms))]);
  }

  // dial is the receiving side: offer, verified answer, open channel.
  async dial() {
    await this.ready;
    this.watch(this.pc.createDataChannel('lanft', { ordered: true }));
    await this.pc.setLocalDescription(await this.pc.createOffer());
    this.local = core().sdpFingerprint(this.pc.localDescription.sdp);
    const proof = JSON.parse(core().prove('offer', app.name, this.remote, this.local, ''));
    send({ type: 'offer', othername: this.remote, offer: { type: 'offer', sdp: this.pc.localDescription.sdp }, lanft: proof });
    this.flush();
    return this.timeout(this.opened);
  }

  // accept is the sharing side: verified offer, answer, open channel.
  async accept(m) {
    await this.ready;
    this.verify(m, m.offer, '');
    await this.setRemote(m.offer);
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    this.local = core().sdpFingerprint(this.pc.localDescription.sdp);
    this.nonce = core().sasNonce(); // committed to here, revealed in the preamble
    const proof = JSON.parse(core().prove('answer', app.name, this.remote, this.local, this.remotePrint, core().sasCommit(this.nonce)));
    send({ type: 'answer', othername: this.remote, answer: { type: 'answer', sdp: this.pc.localDescription.sdp }, lanft: proof });
    this.flush();
    return this.timeout(this.opened);
  }

  async handle(m) {
    try {
      await this.ready;
      if (m.type === 'answer') {
        this.verify(m, m.answer, this.local);
        await this.setRemote(m.answer);
      } else if (m.type === 'candidate' && m.candidate && m.candidate.candidate) {
        if (this.remoteSet) await this.pc.addIceCandidate(m.candidate).catch(() => {});
        else if (this.remoteCands.length < 256) this.remoteCands.push(m.candidate);
      }
    } catch (e) {
      this.openRej(e);
      this.close();
    }
  }

  // secure runs after the channel opened: the browser's DTLS already
  // checked the peer's certificate against the fingerprint we verified;
  // run the preamble (the nonces of the verification code, shown at first
  // contact once settled, and the shared code), and pin the peer's key
  // once every check passed.
  async secure(stream, initiator) {
    const settle = (nr, ns) => {
      if (!this.first) return;
      const code = core().verificationCode(this.remoteKey, this.local, this.remotePrint, nr, ns);
      log(`first contact with ${show(this.remote)} (device ${core().deviceID(this.remoteKey)}): verification code ${code}; it must match on the other side`, 'verify');
    };
    await preamble(stream, {
      code: $('code').value.trim(), initiator, local: this.local, remote: this.remotePrint, peer: show(this.remote),
      nonce: this.nonce, commit: this.commit, settle,
    });
    pin(this.remote, this.remoteKey);
  }

  close() {
    this.closed = true;
    if (this.pc) this.pc.close();
    if (app.links.get(this.remote) === this) app.links.delete(this.remote);
  }
}

function startLink(remote) {
  const old = app.links.get(remote);
  if (old) old.close();
  const l = new Link(remote);
  app.links.set(remote, l);
  return l;
}

// ---- progress ----

function meter(label) {
  const t0 = performance.now();
  let last = 0;
  const line = (done, total) => {
    const s = (performance.now() - t0) / 1000;
    return `${label}: ${size(done)} of ${size(total)}, ${(done / 1e6 / Math.max(s, 0.001)).toFixed(1)} MB/s`;
  };
  return {
    t0,
    update(done, total) {
      const now = performance.now();
      if (now - last < 200 && done < total) return;
      last = now;
      $('progress').textContent = line(done, total);
    },
    seconds: () => (performance.now() - t0) / 1000,
  };
}

// ---- receiving ----

function ask(peer, { entries, total }) {
  $('offertext').textContent = `${show(peer)} offers ${entries.filter((e) => e.kind === 'file').length} file(s), ${size(total)}:`;
  const ul = $('offerlist');
  ul.replaceChildren();
  for (const e of entries.slice(0, 50)) {
    ul.append(el('li', '', e.kind === 'dir' ? `${show(e.path)}/` : `${show(e.path)} (${size(e.size)})`));
  }
  if (entries.length > 50) ul.append(el('li', '', `… and ${entries.length - 50} more`));
  $('offer').hidden = false;
  return new Promise((res) => {
    $('accept').onclick = () => { $('offer').hidden = true; res(true); };
    $('decline').onclick = () => { $('offer').hidden = true; res(false); };
  });
}

async function receiveFrom(peer) {
  const meta = (app.peers.get(peer) || {}).lanft;
  if (!meta || (Number(meta.proof) | 0) < 2) {
    log(`receive from ${show(peer)}: the peer runs an older lanft: ${show(peer)} announces a share from an older lanft, whose verification code a host in the middle could steer; update lanft on ${show(peer)}`, 'error');
    return;
  }
  const link = startLink(peer);
  $('done').textContent = '';
  try {
    const stream = await link.dial();
    await link.secure(stream, true);
    log(`connected to ${show(peer)}`);
    let m = null;
    const files = await receive(stream, {
      accept: async (manifest) => {
        const ok = await ask(peer, manifest);
        m = meter(`from ${show(peer)}`);
        return ok;
      },
      progress: (d, t) => m.update(d, t),
    });
    const secs = m.seconds();
    await stream.linger(2000);
    try { send({ type: 'leave', othername: peer }); } catch (e) { /* offline */ }
    let bytes = 0;
    for (const f of files) {
      bytes += f.size;
      const a = el('a', 'save', 'Save');
      a.href = URL.createObjectURL(f.blob);
      a.download = f.path.replaceAll('/', '_');
      a.dataset.path = f.path;
      $('received').append(el('li', '', a, ' ', `${show(f.path)} (${size(f.size)}), SHA-256 verified`));
    }
    const done = $('done');
    done.textContent = `received ${files.length} file(s) from ${show(peer)}, ${size(bytes)} in ${secs.toFixed(2)} s (${(bytes / 1e6 / Math.max(secs, 0.001)).toFixed(1)} MB/s)`;
    done.dataset.bytes = String(bytes);
    done.dataset.seconds = String(secs);
    done.dataset.files = String(files.length);
  } catch (e) {
    log(`receive from ${show(peer)}: ${e.message}`, 'error');
  } finally {
    link.close();
  }
}

// ---- sharing ----

function titleOf(entries) {
  const top = [];
  for (const e of entries) {
    const t = e.path.split('/')[0];
    if (!top.includes(t)) top.push(t);
  }
  return top.length <= 1 ? (top[0] || '') : `${top[0]} and ${top.length - 1} more`;
}

async function startShare() {
  const files = [...$('files').files, ...$('folder').files];
  if (files.length === 0) {
    log('pick files or a folder first', 'error');
    return;
  }
  $('sharing').textContent = 'hashing…';
  try {
    app.share = await buildManifest(files, (d, t) => { $('sharing').textContent = `hashing: ${size(d)} of ${size(t)}`; });
  } catch (e) {
    $('sharing').textContent = '';
    log(e.message, 'error');
    return;
  }
  const { entries, total } = app.share;
  const n = entries.filter((e) => e.kind === 'file').length;
  app.meta = { v: 1, role: 'share', files: n, bytes: total, title: titleOf(entries), proof: 2 };
  $('sharing').textContent = `sharing ${n} file(s), ${size(total)}, as ${show(app.name)}`;
  $('unshare').hidden = false;
  relogin();
}

function stopShare() {
  app.share = null;
  app.meta = { v: 1, role: 'receive', proof: 2 };
  $('sharing').textContent = '';
  $('unshare').hidden = true;
  relogin();
}

async function onOffer(m) {
  if (!app.share) {
    log(`${show(m.name)} asked for files, but this page shares nothing`);
    return;
  }
  const share = app.share;
  const link = startLink(m.name);
  try {
    const stream = await link.accept(m);
    await link.secure(stream, false);
    const p = meter(`to ${show(m.name)}`);
    await serve(stream, share, (d, t) => p.update(d, t));
    log(`sent ${size(share.total)} to ${show(m.name)}, all verified, in ${p.seconds().toFixed(2)} s`, 'sent');
  } catch (e) {
    log(`send to ${show(m.name)}: ${e.message}`, 'error');
  } finally {
    link.close();
  }
}

// ---- start ----

document.addEventListener('securitypolicyviolation', (e) => {
  log(`blocked by the page's security policy: ${e.violatedDirective} ${e.blockedURI}`, 'error csp');
});

async function main() {
  const go = new globalThis.Go();
  const ready = new Promise((r) => { globalThis.lanftCoreReady = r; });
  const { instance } = await WebAssembly.instantiateStreaming(fetch('lanft.wasm'), go.importObject);
  go.run(instance);
  await ready;
  const raw = globalThis.lanftCoreRaw, wrapped = {};
  for (const k of Object.keys(raw)) {
    wrapped[k] = (...args) => {
      const r = raw[k](...args);
      if (r instanceof Object && typeof r.lanftError === 'string') throw new Error(r.lanftError);
      return r;
    };
  }
  globalThis.lanftCore = wrapped;
  core().setKey(deviceSeed());
  const id = core().deviceID(core().publicKey());
  app.base = `web-${id.slice(0, 4).toLowerCase()}`;
  app.name = sessionStorage.getItem('lanft-name') || app.base;
  $('me').textContent = `this browser: device ${id}; takes up to ${size(MAX_RECEIVE)} per transfer`;
  $('share').onclick = startShare;
  $('unshare').onclick = stopShare;
  $('showqr').onclick = () => {
    $('qr').src = 'qr.png';
    $('qr').hidden = false;
    $('qrurl').textContent = `${location.protocol}//${location.host}/`;
  };
  render();
  connect();
}

main().catch((e) => {
  $('status').textContent = `cannot start: ${e.message}`;
});
