// lanft's browser page: a client of the seed signaling protocol (login,
// userlist, updata, offer/answer/candidate) with lanft's additive "lanft"
// objects, trading files over WebRTC data channels with the CLI and with
// other browsers. Every name is shown as text (textContent, append of
// strings), never as HTML.
//
// Modules: app.js (this: start, receiving, sharing), signaling.js (the
// WebSocket, login, peers online), link.js (one RTCPeerConnection, its
// identity checks, the pins), ui.js (the DOM and the log), proto.js (the
// data-channel stream, preamble and frames), sha256.js.

import { receive, serve, buildManifest, MAX_RECEIVE, SetupClosed } from './proto.js';
import { $, core, show, el, log, size, render, meter, ask } from './ui.js';
import { deviceSeed, hex, startLink } from './link.js';
import { Signaling, nameTaken } from './signaling.js';
import { PAGE_FLAGS, negotiate, download, HTTPStream } from './httppath.js';

const RECEIVING = { v: 1, role: 'receive', proof: 2 };

// A page is this tab's state: its Signaling (name, meta, peers), its
// links by peer name, the base of its name, and what it shares (null).
function newPage(base, name) {
  const page = { base, links: new Map(), share: null };
  page.sig = new Signaling({
    name, meta: RECEIVING, on: {
      online: () => {
        $('status').textContent = `online as ${show(page.sig.name)}`;
        document.body.dataset.online = page.sig.name;
        document.body.dataset.logins = String(Number(document.body.dataset.logins || 0) + 1);
      },
      offline: () => {
        $('status').textContent = 'offline: connecting again…';
        document.body.dataset.online = '';
      },
      refused: (m) => onRefused(page, m),
      peers: () => render(page.sig.peers, page.sig.name, (peer) => receiveFrom(page, peer)),
      message: (m) => onMessage(page, m),
    },
  });
  return page;
}

// onRefused takes another name when the host says this one is taken
// (see nameTaken: by its code, or an older host's words).
function onRefused(page, m) {
  if (!nameTaken(m)) {
    log(`login refused: ${String(m.message || 'refused')}`, 'error');
    return;
  }
  page.sig.name = `${page.base}-${hex(crypto.getRandomValues(new Uint8Array(2)))}`;
  sessionStorage.setItem('lanft-name', page.sig.name);
  page.sig.relogin();
}

// onMessage handles what the Signaling leaves to the page: the messages
// of one connection, and the host's errors.
function onMessage(page, m) {
  switch (m.type) {
    case 'offer':
      onOffer(page, m);
      break;
    case 'answer':
    case 'candidate': {
      const l = page.links.get(m.name);
      if (l) l.handle(m);
      break;
    }
    case 'leave': { // the peer is done with us (or gave up): free the connection
      const l = page.links.get(m.name);
      if (l) l.close();
      break;
    }
    case 'error':
      log(`signaling host: ${m.message}`, 'error');
      break;
  }
}

// code is the shared code typed under Options ('' for none).
const code = () => $('code').value.trim();

// ---- receiving ----

async function receiveFrom(page, peer) {
  const meta = (page.sig.peers.get(peer) || {}).lanft;
  if (!meta || (Number(meta.proof) | 0) < 2) {
    log(`receive from ${show(peer)}: the peer runs an older lanft: ${show(peer)} announces a share from an older lanft, whose verification code a host in the middle could steer; update lanft on ${show(peer)}`, 'error');
    return;
  }
  $('done').textContent = '';
  let link = null;
  try {
    let stream = null;
    for (let attempt = 1; ; attempt++) {
      link = startLink(page.links, page.sig, peer);
      try {
        stream = await link.dial();
        await link.secure(stream, true, code(), PAGE_FLAGS);
        break;
      } catch (e) {
        if (!(e instanceof SetupClosed) || attempt === 3) throw e;
        log(`receive from ${show(peer)}: ${e.message}; trying again`);
        link.close();
      }
    }
    log(`connected to ${show(peer)}`);
    // HTTP path (httppath.js): the browser's download manager saves the files.
    const base = await negotiate(stream, link.remoteFlags, peer, 'download');
    if (base) {
      await download(base, peer);
      return;
    }
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
    try { page.sig.send({ type: 'leave', othername: peer }); } catch (e) { /* offline */ }
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

async function startShare(page) {
  const files = [...$('files').files, ...$('folder').files];
  if (files.length === 0) {
    log('pick files or a folder first', 'error');
    return;
  }
  $('sharing').textContent = 'hashing…';
  try {
    page.share = await buildManifest(files, (d, t) => { $('sharing').textContent = `hashing: ${size(d)} of ${size(t)}`; });
  } catch (e) {
    $('sharing').textContent = '';
    log(e.message, 'error');
    return;
  }
  const { entries, total } = page.share;
  const n = entries.filter((e) => e.kind === 'file').length;
  page.sig.meta = { v: 1, role: 'share', files: n, bytes: total, title: titleOf(entries), proof: 2 };
  $('sharing').textContent = `sharing ${n} file(s), ${size(total)}, as ${show(page.sig.name)}`;
  $('unshare').hidden = false;
  page.sig.relogin();
}

function stopShare(page) {
  page.share = null;
  page.sig.meta = RECEIVING;
  $('sharing').textContent = '';
  $('unshare').hidden = true;
  page.sig.relogin();
}

async function onOffer(page, m) {
  if (!page.share) {
    log(`${show(m.name)} asked for files, but this page shares nothing`);
    return;
  }
  const share = page.share;
  const link = startLink(page.links, page.sig, m.name);
  try {
    const stream = await link.accept(m);
    await link.secure(stream, false, code(), PAGE_FLAGS);
    // HTTP path (httppath.js): the transfer protocol over HTTP requests.
    const base = await negotiate(stream, link.remoteFlags, m.name, 'upload');
    const s = base ? new HTTPStream(base, (text) => log(`send to ${show(m.name)}: ${text}`)) : stream;
    const p = meter(`to ${show(m.name)}`);
    try {
      await serve(s, share, (d, t) => p.update(d, t));
    } finally {
      if (base) s.close();
    }
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
  const base = `web-${id.slice(0, 4).toLowerCase()}`;
  const page = newPage(base, sessionStorage.getItem('lanft-name') || base);
  $('me').textContent = `this browser: device ${id}; from lanft on this LAN any size over HTTP, else up to ${size(MAX_RECEIVE)} per transfer (kept in memory)`;
  $('share').onclick = () => startShare(page);
  $('unshare').onclick = () => stopShare(page);
  $('showqr').onclick = () => {
    $('qr').src = 'qr.png';
    $('qr').hidden = false;
    $('qrurl').textContent = `${location.protocol}//${location.host}/`;
  };
  page.sig.on.peers(); // the empty list, until the host sends one
  page.sig.connect();
}

main().catch((e) => {
  $('status').textContent = `cannot start: ${e.message}`;
});
