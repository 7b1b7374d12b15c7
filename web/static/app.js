// lanft's browser page: a client of the seed signaling protocol (login,
// userlist, updata, offer/answer/candidate) with lanft's additive "lanft"
// objects, trading files over WebRTC data channels with the CLI and with
// other browsers. Every name is shown as text (textContent, append of
// strings), never as HTML.

import { receive, serve, buildManifest, MAX_RECEIVE } from './proto.js';
import { $, core, show, el, log, size, render, meter, ask } from './ui.js';
import { deviceSeed, startLink } from './link.js';
import { send, connect, relogin } from './signaling.js';

export const app = {
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

// ---- receiving ----

export async function receiveFrom(peer) {
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

export async function onOffer(m) {
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
