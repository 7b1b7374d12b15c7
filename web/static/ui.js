// The page's interface: the DOM, what it shows (the devices, the offer
// dialog, the send panel, one card per transfer, texts received) and its
// log. Every name is shown as text (textContent, append of strings),
// never as HTML.

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

function button(cls, text, onclick) {
  const b = el('button', cls, text);
  b.type = 'button';
  b.onclick = onclick;
  return b;
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

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
export const files = (n) => plural(Number(n) | 0, 'file');

// ---- the devices ----

// kindOf says what a user online is, from its login meta (node.Meta and
// the page's own): a lanft CLI, a `lanft up` device, a page, or another
// client of the protocol. push: it takes sends.
export function kindOf(m) {
  if (!m || typeof m !== 'object') return { kind: 'other', label: 'other client', push: false };
  const push = m.push === true;
  switch (m.role) {
    case 'up': return { kind: 'up', label: 'lanft up', push };
    case 'send': return { kind: 'cli', label: 'lanft send', push };
    case 'peers': return { kind: 'cli', label: 'lanft peers', push };
    case 'share': return push ? { kind: 'page', label: 'page', push } : { kind: 'cli', label: 'lanft share', push };
    case 'receive': return push ? { kind: 'page', label: 'page', push } : { kind: 'cli', label: 'lanft receive', push };
    default: return { kind: 'other', label: `lanft (${show(m.role)})`, push };
  }
}

function hue(name) {
  let h = 0;
  for (const c of String(name)) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return `hue${h % 8}`;
}

// render lists peers (a Map of name -> {name, lanft}) but self. A sharer's
// Receive button calls on.receive(name); a device that takes sends gets a
// Send… button that calls on.send(name). on.drop(name, files) takes files
// dropped on a device that takes sends.
export function render(peers, self, on) {
  const ul = $('peers');
  ul.replaceChildren();
  for (const p of peers.values()) {
    if (p.name === self) continue;
    const m = p.lanft && typeof p.lanft === 'object' ? p.lanft : null;
    const k = kindOf(m);
    const name = show(p.name);
    const row = el('li', 'peer',
      el('span', `avatar ${hue(p.name)}`, [...name][0] || '?'),
      el('div', 'who', el('span', 'name', name), el('span', 'kind', k.label)));
    row.dataset.name = p.name;
    row.dataset.kind = k.kind;
    const acts = el('div', 'acts');
    if (m && m.role === 'share') {
      row.append(el('span', 'what', `shares ${show(m.title || '')} (${files(m.files)}, ${size(m.bytes)})`));
      if (Number(m.bytes) > MAX_RECEIVE) {
        row.append(el('span', 'toobig', k.kind === 'page'
          ? `more than the data channel takes (${size(MAX_RECEIVE)}): it comes through the lanft that serves that page`
          : `more than this page keeps in memory (${size(MAX_RECEIVE)}): it comes only over HTTP from lanft on this LAN`));
      }
      acts.append(button('receive primary', 'Receive', () => on.receive(p.name)));
    } else {
      row.append(el('span', 'what', k.kind === 'up' ? 'takes files and texts' : m ? 'shares nothing now' : 'not a lanft client'));
    }
    if (k.push) {
      row.dataset.push = '1';
      // Send… is the main action of a device that shares nothing
      acts.append(button(m && m.role === 'share' ? 'send' : 'send primary', 'Send…', () => on.send(p.name)));
      row.addEventListener('dragover', (e) => { e.preventDefault(); row.classList.add('droptarget'); });
      row.addEventListener('dragleave', () => row.classList.remove('droptarget'));
      row.addEventListener('drop', (e) => {
        e.preventDefault();
        e.stopPropagation();
        row.classList.remove('droptarget');
        $('dropzone').hidden = true;
        dropped(e.dataTransfer).then((f) => { if (f.length) on.drop(p.name, f); }, (err) => log(err.message, 'error'));
      });
    }
    row.append(acts);
    ul.append(row);
  }
  $('nopeers').hidden = ul.children.length > 0;
}

// dropped resolves to the files of a drop, a dropped folder's with their
// paths below it (as a folder picked with "A folder" has them).
export async function dropped(dt) {
  const entries = [...(dt.items || [])].map((i) => (i.kind === 'file' && i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (!entries.some((x) => x && x.isDirectory)) return [...dt.files];
  const out = [];
  const walk = async (entry, dir) => {
    if (!entry) return;
    if (entry.isFile) {
      const f = await new Promise((res, rej) => entry.file(res, rej));
      Object.defineProperty(f, 'webkitRelativePath', { value: dir + f.name });
      out.push(f);
      return;
    }
    const reader = entry.createReader();
    for (;;) { // readEntries gives a folder's entries in batches
      const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const e of batch) await walk(e, `${dir}${entry.name}/`);
    }
  };
  for (const e of entries) await walk(e, '');
  return out;
}

// ---- transfers ----

// transfer adds a card for one transfer (label: "to bob", "from ann") and
// returns its controls: update(done, total) with rate and time left,
// state(text) for a step without bytes (hashing, waiting), done(text),
// fail(text). The card's dataset.state is running, done or error.
export function transfer(label) {
  const bar = el('progress');
  bar.max = 1;
  bar.value = 0;
  const state = el('span', 'xstate', 'starting');
  const line = el('div', 'xline', '');
  const li = el('li', 'xfer', el('div', 'xhead', el('span', 'xlabel', label), state), bar, line);
  li.dataset.state = 'running';
  $('transfers').prepend(li);
  let t0 = performance.now(), last = 0, phase = '';
  const samples = []; // [ms, bytes] over the last few seconds, for the rate
  return {
    el: li,
    seconds: () => (performance.now() - t0) / 1000,
    state(text) { state.textContent = text; },
    // update shows done of total bytes; a new phase ('hashing', then ''
    // for the transfer) starts the rate and the clock again.
    update(done, total, step = '') {
      const now = performance.now();
      if (step !== phase) {
        phase = step;
        samples.length = 0;
        t0 = now;
        last = 0;
      }
      if (now - last < 200 && done < total) return;
      last = now;
      samples.push([now, done]);
      while (samples.length > 2 && now - samples[0][0] > 3000) samples.shift();
      // the rate over the last seconds; at the start, since the card began
      const [t1, d1] = samples.length > 1 ? samples[0] : [t0, 0];
      const rate = now > t1 ? (done - d1) / ((now - t1) / 1000) : 0;
      bar.value = total > 0 ? done / total : 0;
      li.dataset.done = String(done);
      state.textContent = `${phase ? `${phase} ` : ''}${Math.floor(100 * (total > 0 ? done / total : 0))} %`;
      const left = rate > 0 ? ` · ${eta((total - done) / rate)} left` : '';
      line.textContent = `${size(done)} of ${size(total)} · ${(rate / 1e6).toFixed(1)} MB/s${done < total ? left : ''}`;
    },
    done(text) {
      li.dataset.state = 'done';
      bar.value = 1;
      state.textContent = 'done';
      line.textContent = text;
    },
    fail(text) {
      li.dataset.state = 'error';
      state.textContent = 'failed';
      line.textContent = text;
    },
  };
}

function eta(s) {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

// ---- the offer dialog ----

// who says who offers: the device id, and the verification code at first
// contact (to compare with the other side's).
function showWho(who) {
  $('offerwho').textContent = who && who.device ? `device ${who.device}` : '';
  const c = $('offercode');
  c.replaceChildren();
  c.hidden = !(who && who.code);
  if (who && who.code) c.append('First contact: check that the other device shows ', el('b', '', who.code));
}

function listEntries(entries) {
  const ul = $('offerlist');
  ul.replaceChildren();
  for (const e of entries.slice(0, 50)) {
    ul.append(el('li', '', e.kind === 'dir' ? `${show(e.path)}/` : `${show(e.path)} (${size(e.size)})`));
  }
  if (entries.length > 50) ul.append(el('li', '', `… and ${entries.length - 50} more`));
}

// decide opens the dialog and resolves to true (accept), false (decline)
// or 'timeout' after ms (0: never).
function decide(acceptLabel, ms) {
  $('accept').textContent = acceptLabel;
  $('offer').hidden = false;
  $('accept').focus();
  return new Promise((res) => {
    let timer = null, tick = null;
    const end = (v) => {
      clearTimeout(timer);
      clearInterval(tick);
      $('offer').hidden = true;
      $('offerwait').textContent = '';
      res(v);
    };
    $('accept').onclick = () => end(true);
    $('decline').onclick = () => end(false);
    if (ms > 0) {
      const until = Date.now() + ms;
      const say = () => { $('offerwait').textContent = `Declines by itself in ${Math.max(0, Math.ceil((until - Date.now()) / 1000))} s.`; };
      say();
      tick = setInterval(say, 1000);
      timer = setTimeout(() => end('timeout'), ms);
    } else {
      $('offerwait').textContent = '';
    }
  });
}

// offerOpen reports whether the dialog already asks about something.
export const offerOpen = () => !$('offer').hidden;

// ask asks whether to receive what a sharer offers (a pull the user
// started); it resolves to true or false.
export async function ask(peer, { entries, total }, who) {
  $('offertext').textContent = `${show(peer)} offers ${files(entries.filter((e) => e.kind === 'file').length)}, ${size(total)}:`;
  showWho(who);
  listEntries(entries);
  return (await decide('Receive', 0)) === true;
}

// askPush asks whether to take what peer sends (a push offer); it
// resolves to true, false (declined) or 'timeout' after ms.
export function askPush(peer, offer, who, ms) {
  const what = offer.files > 0
    ? `${files(offer.files)}, ${size(offer.bytes)}${offer.title ? `: ${show(offer.title)}` : ''}`
    : 'a text';
  $('offertext').textContent = `${show(peer)} wants to send you ${what}`;
  showWho(who);
  $('offerlist').replaceChildren();
  return decide('Accept', ms);
}

// ---- the send panel ----

// sendDialog asks what to send to peer: files (picked, or dropped), a
// folder, or a text. It resolves to {files} or {text}, or null.
export function sendDialog(peer, dropped = []) {
  $('sendtitle').textContent = `Send to ${show(peer)}`;
  for (const id of ['sendfiles', 'sendfolder']) $(id).value = '';
  $('sendtext').value = '';
  $('sendwhy').textContent = '';
  const picked = () => [...dropped, ...$('sendfiles').files, ...$('sendfolder').files];
  const say = () => {
    const f = picked();
    $('sendpicked').textContent = f.length ? `${files(f.length)}, ${size(f.reduce((n, x) => n + x.size, 0))}: ${f.slice(0, 3).map((x) => show(x.webkitRelativePath || x.name)).join(', ')}${f.length > 3 ? ', …' : ''}` : '';
  };
  $('sendfiles').onchange = say;
  $('sendfolder').onchange = say;
  say();
  $('sendpanel').hidden = false;
  return new Promise((res) => {
    const end = (v) => { $('sendpanel').hidden = true; res(v); };
    $('sendcancel').onclick = () => end(null);
    $('sendpanel').onkeydown = (e) => { if (e.key === 'Escape') end(null); };
    $('sendgo').onclick = () => {
      const f = picked(), text = $('sendtext').value;
      if (f.length && text) { $('sendwhy').textContent = 'Send either files or a text: clear one of them.'; return; }
      if (!f.length && !text) { $('sendwhy').textContent = 'Pick files or a folder, or type a text.'; return; }
      if (new TextEncoder().encode(text).length > 32 << 10) { $('sendwhy').textContent = 'This text is longer than 32 KiB: send it as a file.'; return; }
      end(f.length ? { files: f } : { text });
    };
  });
}

// ---- texts received ----

// showText shows a text received from peer, with a Copy button.
export function showText(peer, text) {
  const area = el('textarea', 'textbody');
  area.readOnly = true;
  area.value = text;
  area.rows = Math.min(8, Math.max(2, text.split('\n').length));
  const said = el('span', 'copied', '');
  const li = el('li', 'text', el('p', 'from', `text from ${show(peer)}`), area,
    el('p', 'acts', button('copy', 'Copy', () => copy(area, said)), said));
  $('texts').prepend(li);
  return li;
}

// copy puts a text on the clipboard: navigator.clipboard where the page
// is a secure context, else the selection and execCommand; when both
// fail the text stays selected for the user's own copy.
async function copy(area, said) {
  try {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      await navigator.clipboard.writeText(area.value);
      said.textContent = 'copied';
      return;
    }
  } catch (e) { /* refused: try the selection */ }
  area.focus();
  area.select();
  area.setSelectionRange(0, area.value.length);
  let ok = false;
  try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
  said.textContent = ok ? 'copied' : 'selected — press copy';
}

// ---- files received ----

// showFiles lists files received from peer ({path, size, blob}) with a
// Save link each, and says in #done how many, how big, how fast.
export function showFiles(peer, got, secs) {
  let bytes = 0;
  for (const f of got) {
    bytes += f.size;
    const a = el('a', 'save', 'Save');
    a.href = URL.createObjectURL(f.blob);
    a.download = f.path.replaceAll('/', '_');
    a.dataset.path = f.path;
    $('received').append(el('li', '', a, ' ', `${show(f.path)} (${size(f.size)}), SHA-256 verified`));
  }
  const done = $('done');
  done.textContent = `received ${files(got.length)} from ${show(peer)}, ${size(bytes)} in ${secs.toFixed(2)} s (${(bytes / 1e6 / Math.max(secs, 0.001)).toFixed(1)} MB/s)`;
  done.dataset.bytes = String(bytes);
  done.dataset.seconds = String(secs);
  done.dataset.files = String(got.length);
  return bytes;
}
