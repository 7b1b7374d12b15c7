// lanft's browser page: a client of the seed signaling protocol (login,
// userlist, updata, offer/answer/candidate) with lanft's additive "lanft"
// objects, trading files over WebRTC data channels with the CLI and with
// other browsers. Every name is shown as text (textContent, append of
// strings), never as HTML.
//
// Modules: app.js (this: start, and one function per flow: receiving from
// a sharer, sharing, sending to a device, taking a connection), push.js
// (the push offer: the page as sender and as target), signaling.js (the
// WebSocket, login, peers online), link.js (one RTCPeerConnection, its
// identity checks, the pins), ui.js (the DOM, dialogs, transfer cards and
// the log), proto.js (the data-channel stream, preamble and frames),
// sha256.js.

import { receive, serve, buildManifest, sendError, MAX_RECEIVE, FLAG_PUSH } from './proto.js';
import { $, core, show, log, size, files, render, transfer, ask, sendDialog, showFiles, dropped } from './ui.js';
import { deviceSeed, hex, startLink } from './link.js';
import { Signaling, nameTaken } from './signaling.js';
import { dialSecure, sendPush, takePush, titleOf } from './push.js';
import { PAGE_FLAGS, negotiate, download, HTTPStream } from './httppath.js';
import { RELAY_FLAGS, joinRelay, offerRelay } from './relay.js';

// A page takes sends (push) whether it shares or not.
const RECEIVING = { v: 1, role: 'receive', proof: 2, push: true };

// A page is this tab's state: its Signaling (name, meta, peers), its
// links by peer name, the base of its name, and what it shares (null).
function newPage(base, name) {
  const page = { base, links: new Map(), share: null, dropped: [] };
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
      peers: () => render(page.sig.peers, page.sig.name, {
        receive: (peer) => receiveFrom(page, peer),
        send: (peer) => sendTo(page, peer),
        drop: (peer, dropped) => sendTo(page, peer, dropped),
      }),
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

// ---- receiving from a sharer (a pull) ----

async function receiveFrom(page, peer) {
  const meta = (page.sig.peers.get(peer) || {}).lanft;
  if (!meta || (Number(meta.proof) | 0) < 2) {
    log(`receive from ${show(peer)}: the peer runs an older lanft: ${show(peer)} announces a share from an older lanft, whose verification code a host in the middle could steer; update lanft on ${show(peer)}`, 'error');
    return;
  }
  const done = $('done');
  done.textContent = '';
  for (const k of ['bytes', 'seconds', 'files']) delete done.dataset[k];
  let link = null, card = null, s = null;
  try {
    let stream;
    ({ link, stream } = await dialSecure(page, peer, code(), PAGE_FLAGS | RELAY_FLAGS, 'receive from'));
    log(`connected to ${show(peer)}`);
    s = stream;
    // HTTP path (httppath.js): the browser's download manager saves the files.
    const grant = await negotiate(stream, link.remoteFlags, peer, 'download');
    if (grant) {
      await download(grant, peer);
      return;
    }
    // A big share from another page: through its lanft (relay.js).
    const relayed = await joinRelay(stream, link.remoteFlags, peer);
    if (relayed) s = relayed;
    const got = await receive(s, {
      max: relayed ? Number.MAX_SAFE_INTEGER : MAX_RECEIVE,
      accept: async (manifest) => {
        const ok = await ask(peer, manifest, { device: core().deviceID(link.remoteKey), code: link.first ? link.sas : '' });
        if (ok) card = transfer(`from ${show(peer)}`);
        return ok;
      },
      progress: (d, t) => card.update(d, t),
    });
    const secs = card.seconds();
    await s.linger(2000);
    try { page.sig.send({ type: 'leave', othername: peer }); } catch (e) { /* offline */ }
    const bytes = showFiles(peer, got, secs);
    card.done(`${files(got.length)}, ${size(bytes)} in ${secs.toFixed(1)} s, SHA-256 verified: save them under Received`);
  } catch (e) {
    if (card) card.fail(e.message);
    log(`receive from ${show(peer)}: ${e.message}`, 'error');
  } finally {
    if (s && s.inner) s.close();
    if (link) link.close();
  }
}

// ---- sharing from this page ----

// picks are the files picked (or dropped) to share.
const picks = (page) => [...page.dropped, ...$('files').files, ...$('folder').files];

function showPicks(page) {
  const f = picks(page);
  $('picked').textContent = f.length ? `picked ${files(f.length)}, ${size(f.reduce((n, x) => n + x.size, 0))}` : '';
}

async function startShare(page) {
  const picked = picks(page);
  if (picked.length === 0) {
    log('pick files or a folder first', 'error');
    return;
  }
  $('sharing').textContent = 'hashing…';
  try {
    page.share = await buildManifest(picked, (d, t) => { $('sharing').textContent = `hashing: ${size(d)} of ${size(t)}`; });
  } catch (e) {
    $('sharing').textContent = '';
    log(e.message, 'error');
    return;
  }
  const { entries, total } = page.share;
  const n = entries.filter((e) => e.kind === 'file').length;
  page.sig.meta = { ...RECEIVING, role: 'share', files: n, bytes: total, title: titleOf(entries) };
  $('sharing').textContent = `sharing ${files(n)}, ${size(total)}, as ${show(page.sig.name)}`;
  $('unshare').hidden = false;
  page.sig.relogin();
}

function stopShare(page) {
  page.share = null;
  page.dropped = [];
  showPicks(page);
  page.sig.meta = RECEIVING;
  $('sharing').textContent = '';
  $('unshare').hidden = true;
  page.sig.relogin();
}

// serveShare serves this page's share to a receiver that connected: over
// HTTP requests when the receiver is a lanft CLI that takes them
// (httppath.js), else over the data channel.
async function serveShare(page, stream, peer, link) {
  const share = page.share;
  const card = transfer(`to ${show(peer)}`);
  let s = stream;
  try {
    const grant = await negotiate(stream, link.remoteFlags, peer, 'upload', share);
    if (grant) s = new HTTPStream(grant.base, (text) => log(`send to ${show(peer)}: ${text}`));
    else s = (await offerRelay(stream, link.remoteFlags, peer, share)) || stream;
    await serve(s, share, (d, t) => card.update(d, t));
    card.done(`${size(share.total)} in ${card.seconds().toFixed(1)} s, all verified by ${show(peer)}`);
    log(`sent ${size(share.total)} to ${show(peer)}, all verified, in ${card.seconds().toFixed(2)} s`, 'sent');
  } catch (e) {
    card.fail(e.message);
    log(`send to ${show(peer)}: ${e.message}`, 'error');
  } finally {
    if (s !== stream) s.close();
  }
}

// ---- sending to a device (a push) ----

// sendTo asks what to send to peer (files dropped on it come picked) and
// sends it.
async function sendTo(page, peer, dropped = []) {
  const what = await sendDialog(peer, dropped);
  if (what) await sendPush(page, peer, what, code());
}

// ---- a connection from a peer ----

// onOffer takes a peer's connection: a push (the preamble's FLAG_PUSH) goes
// to push.js; else the peer receives this page's share, if any.
async function onOffer(page, m) {
  const link = startLink(page.links, page.sig, m.name);
  try {
    const stream = await link.accept(m);
    const flags = await link.secure(stream, false, code(), PAGE_FLAGS | RELAY_FLAGS);
    if (flags & FLAG_PUSH) {
      await takePush(page, link, stream, m.name);
    } else if (page.share) {
      await serveShare(page, stream, m.name, link);
    } else {
      await sendError(stream, 'rejected', 'this page shares nothing now');
      log(`${show(m.name)} asked for files, but this page shares nothing`);
    }
  } catch (e) {
    log(`connection from ${show(m.name)}: ${e.message}`, 'error');
  } finally {
    link.close();
  }
}

// ---- drag and drop (a computer) ----

// setupDrop takes files dropped on the page to share (a device's row takes
// them to send, see ui.render).
function setupDrop(page) {
  let depth = 0;
  const zone = $('dropzone');
  const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
  document.addEventListener('dragenter', (e) => { if (hasFiles(e)) { depth++; zone.hidden = false; } });
  document.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; zone.hidden = true; } });
  document.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    zone.hidden = true;
    if (!e.dataTransfer || !e.dataTransfer.files.length) return;
    dropped(e.dataTransfer).then((f) => {
      page.dropped.push(...f);
      showPicks(page);
      log(`dropped ${files(f.length)}: press Share, or drop them on a device to send`);
    }, (err) => log(`drop: ${err.message}`, 'error'));
  });
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
  $('me').textContent = `this browser: device ${id}; any size from lanft on this LAN and from another page's share through it, else up to ${size(MAX_RECEIVE)} per transfer`;
  $('share').onclick = () => startShare(page);
  $('files').onchange = () => showPicks(page);
  $('folder').onchange = () => showPicks(page);
  setupDrop(page);
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
