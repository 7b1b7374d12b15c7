// One WebRTC connection of the page (RTCPeerConnection and its data
// channel) with lanft's identity checks: the proofs on offers and answers,
// the pins of the names this browser met, the preamble. It signals
// through a Signaling (signaling.js) and writes to the page's log.

import { Stream, preamble } from './proto.js';
import { core, show, log } from './ui.js';

// ---- device key and pins (the browser's storage) ----

export function hex(b) { return [...b].map((x) => x.toString(16).padStart(2, '0')).join(''); }

export function deviceSeed() {
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

// ---- one WebRTC connection, with lanft's identity checks ----

export class Link {
  // sig is the page's Signaling (its name, send, callICE); links the map
  // of the page's links by peer name, which close leaves.
  constructor(remote, sig, links) {
    this.remote = remote;
    this.sig = sig;
    this.links = links;
    this.pending = [];
    this.sent = false;
    this.remoteSet = false;
    this.remoteCands = [];
    this.closed = false;
    this.opened = new Promise((res, rej) => { this.openRes = res; this.openRej = rej; });
    // The peer connection waits for this call's ICE servers; what arrives
    // for it meanwhile waits on ready.
    this.ready = sig.callICE((text) => log(text, 'error')).then((servers) => this.open(servers));
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
    try { this.sig.send({ type: 'candidate', othername: this.remote, candidate: c }); } catch (e) { /* offline */ }
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
    const key = core().verify(m.type, m.name, this.sig.name, fp, offerPrint, m.lanft ? JSON.stringify(m.lanft) : '');
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
    const proof = JSON.parse(core().prove('offer', this.sig.name, this.remote, this.local, ''));
    this.sig.send({ type: 'offer', othername: this.remote, offer: { type: 'offer', sdp: this.pc.localDescription.sdp }, lanft: proof });
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
    const proof = JSON.parse(core().prove('answer', this.sig.name, this.remote, this.local, this.remotePrint, core().sasCommit(this.nonce)));
    this.sig.send({ type: 'answer', othername: this.remote, answer: { type: 'answer', sdp: this.pc.localDescription.sdp }, lanft: proof });
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
  // once every check passed. code is the shared code ('' for none); flags
  // are this side's other preamble FLAGS bits. It returns the peer's FLAGS
  // byte (also kept in this.remoteFlags).
  async secure(stream, initiator, code, flags = 0) {
    const settle = (nr, ns) => {
      if (!this.first) return;
      const code = core().verificationCode(this.remoteKey, this.local, this.remotePrint, nr, ns);
      this.sas = code; // for a dialog that asks about this peer (push.js)
      log(`first contact with ${show(this.remote)} (device ${core().deviceID(this.remoteKey)}): verification code ${code}; it must match on the other side`, 'verify');
    };
    this.remoteFlags = await preamble(stream, {
      code, initiator, local: this.local, remote: this.remotePrint, peer: show(this.remote),
      nonce: this.nonce, commit: this.commit, settle, flags,
    });
    pin(this.remote, this.remoteKey);
    return this.remoteFlags;
  }

  close() {
    this.closed = true;
    if (this.pc) this.pc.close();
    if (this.links.get(this.remote) === this) this.links.delete(this.remote);
  }
}

// startLink starts the link to remote in links, closing the one before.
export function startLink(links, sig, remote) {
  const old = links.get(remote);
  if (old) old.close();
  const l = new Link(remote, sig, links);
  links.set(remote, l);
  return l;
}
