// Sending to a device, and taking what a device sends: the push offer of
// issue #20, the same for the page and the CLI (`lanft send`, `lanft up`).
// The sender is the WebRTC initiator, as a receiver is for a pull; it sets
// FLAG_PUSH in the preamble, then the two speak direct's framed messages:
//
//	sender ── offer, proof ──────────────────▶ target  (signaling, link.js)
//	sender ◀─ answer, proof ───────────────── target
//	sender ◀═ preamble (FLAG_PUSH), code ════▶ target  (the data channel)
//	sender ── {v:1, push:{files, bytes, title} | {files:0, bytes:0, text}} ─▶
//	sender ◀─ {v:1, accept:true} | {v:1, accept:false, reason, message} ──
//	files:  sender serve() ══ MANIFEST, PLAN, FILE/DATA, END, OK ══ target receive()
//	text:   nothing more; both close.
//
// A target decides within ANSWER_WAIT (then it declines, "timeout"); a
// target already asking about another offer answers "busy".

import { PAGE_FLAGS, negotiate, download, HTTPStream } from './httppath.js';
import { FLAG_PUSH, FLAG_SERVES_PAGE, SetupClosed, TransferError, buildManifest, serve, receive, readMessage, writeMessage, sendError, MAX_RECEIVE } from './proto.js';
import { core, show, log, size, files, transfer, askPush, offerOpen, showText, showFiles } from './ui.js';
import { startLink } from './link.js';

// ANSWER_WAIT is how long a target asks before it declines by itself;
// a sender waits a little longer for the answer.
export const ANSWER_WAIT = 60000;
const SENDER_WAIT = ANSWER_WAIT + 30000;
const OFFER_WAIT = 10000; // for the offer after the preamble
export const MAX_TEXT = 32 << 10; // UTF-8 bytes

// within rejects with msg unless p settles within ms.
function within(p, ms, msg) {
  let timer;
  return Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(msg)), ms); })])
    .finally(() => clearTimeout(timer));
}

// dialSecure opens a link to peer as the initiator and runs the preamble
// with flags; a connection that closes before the peer's preamble (nothing
// decided yet) is tried again, up to three times. It returns {link, stream}.
export async function dialSecure(page, peer, code, flags, what) {
  for (let attempt = 1; ; attempt++) {
    const link = startLink(page.links, page.sig, peer);
    try {
      const stream = await link.dial();
      await link.secure(stream, true, code, flags);
      return { link, stream };
    } catch (e) {
      link.close();
      if (!(e instanceof SetupClosed) || attempt === 3) throw e;
      log(`${what} ${show(peer)}: ${e.message}; trying again`);
    }
  }
}

// titleOf names a set of entries as a share's Meta does: the one top-level
// name, or the first and how many more.
export function titleOf(entries) {
  const top = [];
  for (const e of entries) {
    const t = e.path.split('/')[0];
    if (!top.includes(t)) top.push(t);
  }
  return top.length <= 1 ? (top[0] || '') : `${top[0]} and ${top.length - 1} more`;
}

// ---- the page as sender ----

// refusal turns a target's negative answer into a sentence for people.
function refusal(peer, a) {
  const who = show(peer);
  const msg = a && typeof a.message === 'string' && a.message ? `: ${show(a.message)}` : '';
  switch (a && a.reason) {
    case 'declined': return `${who} declined`;
    case 'timeout': return `${who} did not answer within ${ANSWER_WAIT / 1000} s`;
    case 'busy': return `${who} is answering another offer: try again in a moment`;
    default: return `${who} refused${msg || ''}`;
  }
}

// sendPush sends what ({files: [File]} or {text}) to peer and reports on
// its own card and in the log, once. It resolves when done or failed.
export async function sendPush(page, peer, what, code) {
  const isText = typeof what.text === 'string';
  const card = transfer(isText ? `text to ${show(peer)}` : `to ${show(peer)}`);
  let link = null;
  try {
    let offer, share = null;
    if (isText) {
      if (new TextEncoder().encode(what.text).length > MAX_TEXT) throw new Error(`the text is longer than ${MAX_TEXT >> 10} KiB: send it as a file`);
      offer = { files: 0, bytes: 0, text: what.text };
    } else {
      card.state('hashing');
      share = await buildManifest(what.files, (d, t) => card.update(d, t, 'hashing'));
      offer = { files: share.entries.filter((e) => e.kind === 'file').length, bytes: share.total, title: titleOf(share.entries) };
    }
    card.state('connecting');
    let stream;
    ({ link, stream } = await dialSecure(page, peer, code, FLAG_PUSH | PAGE_FLAGS, 'send to'));
    await writeMessage(stream, { v: 1, push: offer });
    card.state('waiting');
    card.el.querySelector('.xline').textContent = `waiting for ${show(peer)} to accept` +
      (link.first && link.sas ? ` · first contact: verification code ${link.sas}` : '');
    const a = await within(readMessage(stream), SENDER_WAIT, `${show(peer)} did not answer within ${SENDER_WAIT / 1000} s`);
    if (!a || a.v !== 1 || a.accept !== true) {
      const e = new Error(refusal(peer, a));
      e.refused = true;
      throw e;
    }
    if (isText) {
      card.done(`text delivered (${size(new TextEncoder().encode(what.text).length)})`);
      log(`sent a text to ${show(peer)}`, 'sent');
      return;
    }
    card.state('sending');
    if (!(await viaHTTP(page, link, stream, 'upload', { share, card }))) {
      await serve(stream, share, (d, t) => card.update(d, t));
    }
    const s = card.seconds();
    card.done(`${files(offer.files)}, ${size(share.total)} in ${s.toFixed(1)} s, all verified by ${show(peer)}`);
    log(`sent ${size(share.total)} to ${show(peer)}, all verified, in ${s.toFixed(2)} s`, 'sent');
  } catch (e) {
    card.fail(e.message);
    log(`send to ${show(peer)}: ${e.message}`, e.refused ? 'error refused' : 'error');
  } finally {
    if (link) link.close();
  }
}

// viaHTTP is the one call site of the HTTP path (web/static/httppath.js,
// issue #19) in a push: after the target accepted and before any byte
// moves. purpose is 'upload' (this page sends) or 'download' (this page
// takes). It resolves to true when HTTP carried the bytes; false leaves
// them to the data channel.
async function viaHTTP(page, link, stream, purpose, job) {
  const peer = link.remote;
  const grant = await negotiate(stream, link.remoteFlags, peer, purpose, job.share);
  if (!grant) return false;
  if (purpose === 'download') {
    await download(grant, peer);
    job.card.done(`${files(job.offer.files)}, ${size(job.offer.bytes)}: save them with the links from ${show(peer)} (the browser's download manager)`);
    return true;
  }
  const s = new HTTPStream(grant.base, (text) => log(`send to ${show(peer)}: ${text}`));
  try {
    await serve(s, job.share, (d, t) => job.card.update(d, t));
  } finally {
    s.close();
  }
  return true;
}

// ---- the page as target ----

// readOffer reads and checks a push offer; it throws a sentence for a
// malformed one.
async function readOffer(stream, peer) {
  const m = await within(readMessage(stream), OFFER_WAIT, `${show(peer)} sent no offer within ${OFFER_WAIT / 1000} s`);
  const p = m && m.v === 1 && m.push && typeof m.push === 'object' ? m.push : null;
  const count = (v) => Number.isSafeInteger(v) && v >= 0;
  if (!p || !count(p.files) || !count(p.bytes)) throw new Error(`${show(peer)} sent a malformed push offer`);
  const offer = { files: p.files, bytes: p.bytes, title: typeof p.title === 'string' ? p.title.slice(0, 256) : '' };
  if (p.files === 0) {
    if (typeof p.text !== 'string' || new TextEncoder().encode(p.text).length > MAX_TEXT) throw new Error(`${show(peer)} sent a push offer with neither files nor a text of at most 32 KiB`);
    offer.text = p.text;
  }
  return offer;
}

// answer sends the target's answer.
async function answer(stream, accept, reason = '', message = '') {
  await writeMessage(stream, accept ? { v: 1, accept: true } : { v: 1, accept: false, reason, message });
}

// takePush runs the target's side once the preamble showed FLAG_PUSH:
// the offer, the dialog (declining by itself after ANSWER_WAIT), the
// answer, then the files or the text. It reports in the log, once.
export async function takePush(page, link, stream, peer) {
  const who = { device: core().deviceID(link.remoteKey), code: link.first ? link.sas : '' };
  let offer = null, card = null;
  try {
    offer = await readOffer(stream, peer);
    const what = offer.files > 0 ? `${files(offer.files)}, ${size(offer.bytes)}` : 'a text';
    if (offerOpen()) {
      await answer(stream, false, 'busy', 'the page is answering another offer: try again in a moment');
      log(`${show(peer)} wanted to send ${what} while another offer was open: told it to try again`);
      return;
    }
    if (offer.files > 0 && offer.bytes > MAX_RECEIVE && !(link.remoteFlags & FLAG_SERVES_PAGE)) {
      await answer(stream, false, 'refused', `a page takes at most ${size(MAX_RECEIVE)} in one transfer: send it to lanft up`);
      log(`${show(peer)} wanted to send ${what}: more than this page takes (${size(MAX_RECEIVE)})`, 'error');
      return;
    }
    const d = await askPush(peer, offer, who, ANSWER_WAIT);
    if (d !== true) {
      const reason = d === 'timeout' ? 'timeout' : 'declined';
      await answer(stream, false, reason, reason === 'timeout' ? `nobody answered on the page within ${ANSWER_WAIT / 1000} s` : 'the person at the page said no');
      log(reason === 'timeout'
        ? `declined ${what} from ${show(peer)}: nobody answered within ${ANSWER_WAIT / 1000} s`
        : `declined ${what} from ${show(peer)}`, 'declined');
      await stream.linger(2000);
      return;
    }
    await answer(stream, true);
    if (offer.files === 0) {
      showText(peer, offer.text);
      log(`text from ${show(peer)}`, 'got');
      await stream.linger(2000);
      return;
    }
    card = transfer(`from ${show(peer)}`);
    card.state('receiving');
    let got = null;
    if (!(await viaHTTP(page, link, stream, 'download', { offer, card }))) {
      got = await receive(stream, {
        accept: async ({ entries, total }) => {
          const n = entries.filter((e) => e.kind === 'file').length;
          if (n !== offer.files || total !== offer.bytes) {
            const msg = `the files (${files(n)}, ${size(total)}) are not what was offered (${files(offer.files)}, ${size(offer.bytes)})`;
            await sendError(stream, 'rejected', msg);
            throw new TransferError('rejected', msg);
          }
          return true;
        },
        progress: (dn, t) => card.update(dn, t),
      });
    }
    const secs = card.seconds();
    await stream.linger(2000);
    if (got) {
      showFiles(peer, got, secs);
      log(`received ${files(got.length)}, ${size(offer.bytes)} from ${show(peer)}, SHA-256 verified`, 'got');
      card.done(`${files(got.length)}, ${size(offer.bytes)} in ${secs.toFixed(1)} s, SHA-256 verified: save them under Received`);
    }
  } catch (e) {
    if (card) card.fail(e.message);
    log(`from ${show(peer)}: ${e.message}`, 'error');
  }
}
