// The page's interface: the DOM, what it shows (peers, offers, progress)
// and its log. Every name is shown as text (textContent, append of
// strings), never as HTML.

import { MAX_RECEIVE } from './proto.js';

export const $ = (id) => document.getElementById(id);
export const core = () => globalThis.lanftCore;
export const show = (s) => core().displayName(String(s));

export function el(tag, cls, ...children) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  e.append(...children); // strings become text nodes
  return e;
}

export function log(msg, cls = '') {
  $('log').prepend(el('li', cls, msg));
}

export function size(n) {
  n = Number(n) || 0;
  if (n < 1024) return `${n} B`;
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return `${n.toFixed(1)} ${u[i]}`;
}

// render lists peers (a Map of name -> {name, lanft}) but self; a share's
// Receive button calls receive(name).
export function render(peers, self, receive) {
  const ul = $('peers');
  ul.replaceChildren();
  for (const p of peers.values()) {
    if (p.name === self) continue;
    const row = el('li', 'peer', el('span', 'name', show(p.name)));
    row.dataset.name = p.name;
    const m = p.lanft && typeof p.lanft === 'object' ? p.lanft : null;
    if (m && m.role === 'share') {
      row.append(el('span', 'what', `shares ${show(m.title || '')} (${Number(m.files) | 0} file(s), ${size(m.bytes)})`));
      if (Number(m.bytes) > MAX_RECEIVE) row.append(el('span', 'toobig', `more than this page keeps in memory (${size(MAX_RECEIVE)}): it comes only over HTTP from lanft on this LAN`));
      const b = el('button', 'receive', 'Receive');
      b.type = 'button';
      b.onclick = () => receive(p.name);
      row.append(b);
    } else {
      row.append(el('span', 'what', m ? String(m.role) : 'other client'));
    }
    ul.append(row);
  }
  $('nopeers').hidden = ul.children.length > 0;
}

// ---- progress ----

export function meter(label) {
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

export function ask(peer, { entries, total }) {
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
