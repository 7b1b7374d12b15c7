// The page's signaling: a client of the seed protocol (login, userlist,
// updata, offer/answer/candidate, leave) over a WebSocket to the instance
// that served the page, with lanft's additive "lanft" objects. It keeps
// the login (logging in again after a drop), the list of peers online and
// the ICE servers; it hands every other message to its owner.
//
//	page ── login {name, lanft: meta} ──▶ host
//	page ◀── login {success, lanft: {iceServers, calls}} or
//	         login {success: false, message, lanft: {code}}
//	page ◀── userlist, updata                (the peers online)
//	page ◀─▶ offer, answer, candidate, leave (one connection, see link.js)
//	page ── lanft {call: n} ──▶ host         (a host with "calls": this
//	page ◀── lanft {call: n, iceServers}      call's TURN credential)

// NAME_TAKEN is the code of a refused login whose name is taken, or too
// close to the name of a user online (signal.CodeNameTaken).
export const NAME_TAKEN = 'name_taken';

// code returns the machine-readable code of a server reply ("lanft":
// {"code": ...}), or '' when it has none.
export function code(m) {
  const info = m && m.lanft && typeof m.lanft === 'object' ? m.lanft : {};
  return typeof info.code === 'string' ? info.code : '';
}

// nameTaken reports whether a refused login says the name is taken. A
// host that sends codes says so with NAME_TAKEN; only a reply without any
// code (an older host) is read by its English words.
export function nameTaken(m) {
  const c = code(m);
  if (c) return c === NAME_TAKEN;
  return /taken|too close/.test(String(m.message || ''));
}

export class Signaling {
  // on holds the owner's handlers: online(), offline(), refused(m) for a
  // failed login reply, peers() after the list changed, and message(m)
  // for the rest (offer, answer, candidate, leave, error).
  constructor({ name, meta, on }) {
    this.name = name;
    this.meta = meta;
    this.on = on;
    this.ws = null;
    this.retry = 250;
    this.peers = new Map(); // name -> {name, lanft}
    this.ice = []; // the login reply's ICE servers (lanft.iceServers)
    this.calls = false; // the host mints ICE servers per call (lanft.calls)
    this.callSeq = 0;
    this.callWaits = new Map(); // call number -> its reply's handler
  }

  send(m) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) throw new Error('not connected to the signaling host');
    this.ws.send(JSON.stringify(m));
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'login', name: this.name, lanft: this.meta }));
    ws.onmessage = (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      if (m && typeof m.type === 'string') this.onMessage(m);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.on.offline();
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 5000);
    };
  }

  // relogin logs in again at once (with a new name or meta).
  relogin() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
    this.retry = 250;
    this.connect();
  }

  onMessage(m) {
    switch (m.type) {
      case 'login':
        if (m.success) {
          const info = m.lanft && typeof m.lanft === 'object' ? m.lanft : {};
          this.ice = Array.isArray(info.iceServers) ? info.iceServers : [];
          this.calls = info.calls === true;
          this.retry = 250;
          this.on.online();
        } else {
          this.on.refused(m);
        }
        break;
      case 'userlist':
        this.peers.clear();
        for (const p of Array.isArray(m.peers) ? m.peers : (m.users || []).map((name) => ({ name }))) {
          if (p && typeof p.name === 'string') this.peers.set(p.name, p);
        }
        this.on.peers();
        break;
      case 'updata':
        if (m.action === 'login' && typeof m.name === 'string') this.peers.set(m.name, { name: m.name, lanft: m.lanft });
        if (m.action === 'offline') this.peers.delete(m.name);
        this.on.peers();
        break;
      case 'lanft': { // a refresh of the login's ICE servers, or the reply to a call request
        const info = m.lanft && typeof m.lanft === 'object' ? m.lanft : {};
        if (info.call) {
          const w = this.callWaits.get(info.call);
          if (w) w(info);
        } else if (Array.isArray(info.iceServers)) {
          this.ice = info.iceServers;
        }
        break;
      }
      default:
        this.on.message(m);
    }
  }

  // callICE resolves to the ICE servers for one connection attempt: fresh
  // ones (a TURN credential for this call) from a host that mints them per
  // call, else, or without a reply within 5 s, the login's. warn(text)
  // hears the host's reason when it sends none.
  callICE(warn) {
    if (!this.calls) return Promise.resolve(this.ice);
    const id = ++this.callSeq;
    return new Promise((res) => {
      let timer = null;
      const done = (servers) => {
        this.callWaits.delete(id);
        clearTimeout(timer);
        res(servers);
      };
      timer = setTimeout(() => done(this.ice), 5000);
      this.callWaits.set(id, (info) => {
        if (info.message) warn(`signaling host: ${String(info.message)}`);
        done(Array.isArray(info.iceServers) ? info.iceServers : this.ice);
      });
      try { this.send({ type: 'lanft', lanft: { call: id } }); } catch (e) { done(this.ice); }
    });
  }
}
