// The page's signaling: a client of the seed protocol (login, userlist,
// updata, offer/answer/candidate) over a WebSocket to the instance that
// served the page, with lanft's additive "lanft" objects.

import { $, show, log, render } from './ui.js';
import { app, onOffer } from './app.js';
import { hex } from './link.js';

// ---- signaling ----

export function send(m) {
  if (!app.ws || app.ws.readyState !== WebSocket.OPEN) throw new Error('not connected to the signaling host');
  app.ws.send(JSON.stringify(m));
}

export function connect() {
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

export function relogin() {
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
export function callICE() {
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
