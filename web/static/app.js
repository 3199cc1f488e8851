// mqtape web: the page. Data from the capture (topics, payloads, client
// ids) is untrusted: it only ever reaches the page as textContent (never
// innerHTML), with the characters termsafe.Unsafe names shown visibly.
'use strict';

const PAGE = 200;
const MAX_ROWS = 5000; // rows kept while following
const $ = (id) => document.getElementById(id);

const state = {
  q: '', seq: null, follow: false, field: '',
  next: null, first: null, loading: false, records: [], selected: -1,
  events: null, gen: 0,
};
let unsafeRE = /[\u0000-\u001f\u007f-\u009f]/gu;

// visible shows unsafe characters as mqtape does on a terminal: \xNN
// (\n, \r, \t) for C0 and DEL, ⟨U+XXXX⟩ for the rest.
function visible(s, keepNewlines) {
  return s.replace(unsafeRE, (ch) => {
    if (keepNewlines && (ch === '\n' || ch === '\t')) return ch;
    if (ch === '\n') return '\\n';
    if (ch === '\r') return '\\r';
    if (ch === '\t') return '\\t';
    const cp = ch.codePointAt(0);
    if (cp < 0x80) return '\\x' + cp.toString(16).padStart(2, '0');
    return '⟨U+' + cp.toString(16).toUpperCase().padStart(4, '0') + '⟩';
  });
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function bytesOf(rec) {
  const bin = atob(rec.payload_b64);
  const b = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  return b;
}

// bytesText shows a payload that is not UTF-8: printable ASCII as itself,
// every other byte as \xNN.
function bytesText(b, max) {
  let s = '';
  for (let i = 0; i < b.length && i < max; i++) {
    const c = b[i];
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '\\x' + c.toString(16).padStart(2, '0');
  }
  return s;
}

function preview(rec) {
  let s;
  if (rec.decoded !== undefined) s = JSON.stringify(rec.decoded);
  else if (rec.decode_error) s = 'decode_error: ' + rec.decode_error;
  else if (rec.payload !== undefined) s = rec.payload;
  else s = bytesText(bytesOf(rec), 120);
  if (s.length > 160) s = s.slice(0, 160) + '…';
  return visible(s, false);
}

// value is what queries and plots read: the decoded value, else the
// payload as JSON.
function value(rec) {
  if (rec.decoded !== undefined) return rec.decoded;
  if (rec.payload === undefined) return undefined;
  try { return JSON.parse(rec.payload); } catch (e) { return undefined; }
}

function payloadSize(rec) {
  const n = rec.payload_b64.length;
  return n === 0 ? 0 : n / 4 * 3 - (rec.payload_b64.endsWith('==') ? 2 : rec.payload_b64.endsWith('=') ? 1 : 0);
}

// ---- URL state -----------------------------------------------------------

function readURL() {
  const p = new URLSearchParams(location.search);
  state.q = p.get('q') || '';
  state.seq = p.has('seq') ? Number(p.get('seq')) : null;
  state.follow = p.get('follow') === '1';
  state.field = p.get('field') || '';
}

function writeURL() {
  const p = new URLSearchParams(location.search);
  const set = (k, v) => (v ? p.set(k, v) : p.delete(k));
  set('q', state.q);
  set('seq', state.seq !== null ? String(state.seq) : '');
  set('follow', state.follow ? '1' : '');
  set('field', state.field);
  const s = p.toString();
  history.replaceState(null, '', s ? '?' + s : location.pathname);
}

// ---- API -------------------------------------------------------------------

async function api(path, params) {
  const u = new URL(path, location.href);
  for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== '') u.searchParams.set(k, v);
  const resp = await fetch(u, { credentials: 'same-origin' });
  const body = await resp.json();
  if (!resp.ok || body.error) throw new Error(body.error || resp.statusText);
  return body;
}

function status(text, isError) {
  const s = $('status');
  s.textContent = visible(text, false);
  s.className = isError ? 'error' : '';
}

// ---- table -------------------------------------------------------------------

function row(rec) {
  const tr = el('tr');
  tr.dataset.seq = String(rec.seq);
  tr.setAttribute('aria-selected', 'false');
  const t = el('td', rec.time.slice(11, 23), 'time');
  t.title = rec.time;
  tr.append(t, el('td', visible(rec.topic, false), 'topic'), el('td', String(rec.qos), 'num'),
    el('td', rec.retain ? 'R' : '', 'flag'), el('td', String(payloadSize(rec)), 'num'), el('td', preview(rec), 'payload'));
  tr.addEventListener('click', () => select(state.records.indexOf(rec)));
  return tr;
}

function appendRecords(recs) {
  const body = $('rows');
  const frag = document.createDocumentFragment();
  for (const r of recs) frag.append(row(r));
  body.append(frag);
  state.records.push(...recs);
  if (state.follow && state.records.length > MAX_ROWS) {
    const drop = state.records.length - MAX_ROWS;
    state.records.splice(0, drop);
    for (let i = 0; i < drop; i++) body.firstElementChild.remove();
    state.selected = Math.max(-1, state.selected - drop);
  }
}

function prependRecords(recs) {
  const body = $('rows');
  const frag = document.createDocumentFragment();
  for (const r of recs) frag.append(row(r));
  body.prepend(frag);
  state.records.unshift(...recs);
  if (state.selected >= 0) state.selected += recs.length;
}

function clearTable() {
  state.gen++;
  $('rows').replaceChildren();
  state.records = [];
  state.selected = -1;
  state.next = null;
  if (state.events) { state.events.close(); state.events = null; }
}

async function loadFirst() {
  clearTable();
  const gen = state.gen;
  status('loading…');
  try {
    if (state.follow) {
      const page = await api('api/messages', { q: state.q, before: '9223372036854775807', limit: PAGE });
      page.messages.reverse();
      if (gen !== state.gen) return;
      appendRecords(page.messages);
    } else if (!await fetchAfter(state.seq !== null ? Math.max(0, state.seq - 1) : 0, gen)) {
      return;
    }
    $('earlier').hidden = state.follow || state.records.length === 0 || state.records[0].seq <= 1;
    status(state.records.length === 0 ? 'no message matches' : '');
    const i = state.seq !== null ? state.records.findIndex((r) => r.seq === state.seq) : -1;
    if (i >= 0) select(i); else if (state.follow && state.records.length) select(state.records.length - 1);
    endNote();
    charts();
    if (state.follow) startEvents();
  } catch (e) {
    if (gen === state.gen) status(e.message, true);
  }
}

// fetchAfter loads a page of matches after seq; a search the server
// answers in parts (partial: its time budget ran out) goes on from its
// cursor until the page is full or the capture ends. False: the view
// changed meanwhile.
async function fetchAfter(after, gen) {
  let got = 0;
  for (;;) {
    const page = await api('api/messages', { q: state.q, after, limit: PAGE });
    if (gen !== state.gen) return false;
    appendRecords(page.messages);
    got += page.messages.length;
    state.next = page.next;
    if (!page.partial || got >= PAGE) return true;
    status('searching… at seq ' + page.next.toLocaleString('en'));
    after = page.next;
  }
}

async function loadMore() {
  if (state.loading || state.next === null || state.follow) return;
  state.loading = true;
  const gen = state.gen;
  try {
    if (!await fetchAfter(state.next, gen)) return;
    status('');
    endNote();
    charts();
  } catch (e) {
    status(e.message, true);
  } finally {
    state.loading = false;
  }
}

async function loadEarlier() {
  if (!state.records.length) return;
  const gen = state.gen;
  try {
    const page = await api('api/messages', { q: state.q, before: state.records[0].seq, limit: PAGE });
    if (gen !== state.gen) return;
    const list = $('list');
    const h = list.scrollHeight;
    prependRecords(page.messages.reverse());
    list.scrollTop += list.scrollHeight - h;
    $('earlier').hidden = page.next === null;
    charts();
  } catch (e) {
    status(e.message, true);
  }
}

function endNote() {
  $('end').textContent = state.follow ? 'following: new messages appear here' :
    state.next === null ? 'end of the selection (' + state.records.length + ' loaded)' : 'scroll for more';
}

function startEvents() {
  const last = state.records.length ? state.records[state.records.length - 1].seq : null;
  const u = new URL('api/events', location.href);
  u.searchParams.set('follow', '1');
  if (state.q) u.searchParams.set('q', state.q);
  if (last !== null) u.searchParams.set('after', String(last));
  const es = new EventSource(u);
  state.events = es;
  const gen = state.gen;
  es.onmessage = (ev) => {
    if (gen !== state.gen) return;
    const list = $('list');
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
    const follows = state.selected === state.records.length - 1;
    appendRecords([JSON.parse(ev.data)]);
    if (follows) select(state.records.length - 1);
    else if (atBottom) list.scrollTop = list.scrollHeight;
    chartsSoon();
  };
  es.onerror = () => status('follow: connection lost, retrying…', true);
  es.onopen = () => status('following');
}

// ---- selection and detail --------------------------------------------------------

function select(i) {
  if (i < 0 || i >= state.records.length) return;
  const rows = $('rows').children;
  if (state.selected >= 0 && rows[state.selected]) rows[state.selected].setAttribute('aria-selected', 'false');
  state.selected = i;
  const tr = rows[i];
  tr.setAttribute('aria-selected', 'true');
  tr.scrollIntoView({ block: 'nearest' });
  state.seq = state.records[i].seq;
  writeURL();
  detail(state.records[i]);
  if (i >= state.records.length - 5) loadMore();
}

function section(title, text) {
  const s = el('section');
  s.append(el('h3', title), el('pre', text));
  return s;
}

function hexDump(b) {
  const lines = [];
  const n = Math.min(b.length, 4096);
  for (let off = 0; off < n; off += 16) {
    const chunk = b.slice(off, Math.min(off + 16, n));
    const hex = Array.from(chunk, (c) => c.toString(16).padStart(2, '0')).join(' ');
    const asc = Array.from(chunk, (c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.')).join('');
    lines.push(off.toString(16).padStart(8, '0') + '  ' + hex.padEnd(48) + ' ' + asc);
  }
  if (b.length > n) lines.push('… ' + (b.length - n) + ' more bytes');
  return lines.join('\n');
}

function detail(rec) {
  const d = $('detail');
  d.replaceChildren();
  d.append(el('h2', visible(rec.topic, false), 'topic'));
  const dl = el('dl');
  const fields = [['seq', rec.seq], ['time', rec.time], ['session', rec.session], ['QoS', rec.qos],
    ['retain', rec.retain], ['from store', rec.from_store], ['dup', rec.dup], ['packet id', rec.packet_id],
    ['client id', rec.client_id || '(not recorded)'], ['size', payloadSize(rec) + ' bytes']];
  for (const [k, v] of fields) dl.append(el('dt', k), el('dd', visible(String(v), false)));
  d.append(dl);
  if (rec.decoded !== undefined) d.append(section('Decoded', visible(JSON.stringify(rec.decoded, null, 2), true)));
  if (rec.decode_error) d.append(section('Decode error', visible(rec.decode_error, true)));
  if (rec.payload !== undefined) {
    try {
      d.append(section('JSON', visible(JSON.stringify(JSON.parse(rec.payload), null, 2), true)));
    } catch (e) { /* not JSON */ }
    d.append(section('Text', visible(rec.payload, true)));
  }
  d.append(section('Hex', hexDump(bytesOf(rec))));
  if (rec.properties) d.append(section('MQTT 5 properties', visible(JSON.stringify(rec.properties, null, 2), true)));
}

// ---- topic tree ------------------------------------------------------------------

async function loadTree() {
  let t;
  try {
    t = await api('api/topics');
  } catch (e) {
    status(e.message, true);
    return;
  }
  // The header comes from here, not /api/info: that reads the whole
  // capture, which would slow the first filters a person types.
  $('file').textContent = visible(t.file, false) + ' · ' + t.messages.toLocaleString('en') + ' messages';
  const root = { children: new Map(), count: 0, path: '' };
  for (const { topic, count } of t.topics) {
    let node = root;
    root.count += count;
    const levels = topic.split('/');
    levels.forEach((lvl, i) => {
      if (!node.children.has(lvl)) {
        node.children.set(lvl, { children: new Map(), count: 0, path: levels.slice(0, i + 1).join('/') });
      }
      node = node.children.get(lvl);
      node.count += count;
    });
    node.exact = count;
  }
  const body = $('tree-body');
  body.replaceChildren(treeButton('all topics', root.count, ''), treeList(root, 0));
}

function treeButton(label, count, filter) {
  const b = el('button', visible(label, false), 'tn');
  b.type = 'button';
  b.title = filter ? visible(filter, false) : 'every topic';
  b.append(el('span', ' ' + count.toLocaleString('en'), 'count'));
  b.addEventListener('click', (ev) => { ev.preventDefault(); narrow(filter); });
  return b;
}

function treeList(node, depth) {
  const ul = el('ul');
  const names = [...node.children.keys()].sort();
  for (const name of names.slice(0, 500)) {
    const child = node.children.get(name);
    const li = el('li');
    const label = name === '' ? '(empty)' : name;
    if (child.children.size === 0) {
      li.append(treeButton(label, child.count, child.path));
    } else {
      const det = el('details');
      det.open = depth === 0 && names.length < 20;
      const sum = el('summary');
      sum.append(treeButton(label, child.count, child.path + '/#'));
      det.append(sum, treeList(child, depth + 1));
      li.append(det);
    }
    ul.append(li);
  }
  if (names.length > 500) ul.append(el('li', '… ' + (names.length - 500) + ' more'));
  return ul;
}

async function narrow(topicFilter) {
  try {
    const r = await api('api/narrow', { q: state.q, topic: topicFilter });
    applyFilter(r.q);
  } catch (e) {
    status(e.message, true);
  }
}

function applyFilter(q) {
  state.q = q;
  $('q').value = q;
  state.seq = null;
  writeURL();
  loadFirst();
}

// ---- charts ----------------------------------------------------------------------

let chartTimer = null;
function chartsSoon() {
  if (!chartTimer) chartTimer = setTimeout(() => { chartTimer = null; charts(); }, 500);
}

function charts() {
  rateChart();
  plotChart();
}

function canvasCtx(id) {
  const c = $(id);
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.font = '11px sans-serif';
  return [c, ctx];
}

function rateChart() {
  const [c, ctx] = canvasCtx('rate');
  const recs = state.records;
  if (recs.length < 2) return;
  const t0 = recs[0].ts_ns, t1 = recs[recs.length - 1].ts_ns;
  const span = Math.max(1, t1 - t0);
  const buckets = new Array(Math.min(120, recs.length)).fill(0);
  for (const r of recs) buckets[Math.min(buckets.length - 1, Math.floor((r.ts_ns - t0) / span * buckets.length))]++;
  const seconds = span / 1e9 / buckets.length || 1;
  const max = Math.max(...buckets);
  const w = c.width / buckets.length, h = c.height - 14;
  ctx.fillStyle = '#4a7fb5';
  buckets.forEach((n, i) => {
    const bh = n / max * h;
    ctx.fillRect(i * w, h - bh + 14, Math.max(1, w - 1), bh);
  });
  ctx.fillStyle = '#333';
  ctx.fillText('peak ' + (max / seconds).toFixed(1) + ' msg/s over ' + (span / 1e9).toFixed(1) + ' s', 4, 11);
}

// path reads .a.b[0] (or .a.b.0) of a value.
function path(v, p) {
  for (const part of p.replace(/^\./, '').split(/\.|\[(\d+)\]/).filter((x) => x !== undefined && x !== '')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = v[part];
  }
  return v;
}

function plotChart() {
  const [c, ctx] = canvasCtx('plot');
  const note = $('plot-note');
  if (!state.field) { note.textContent = ''; return; }
  const pts = [];
  for (const r of state.records) {
    const v = path(value(r), state.field);
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    if (Number.isFinite(n)) pts.push([r.ts_ns, n]);
  }
  note.textContent = pts.length + ' of ' + state.records.length + ' loaded messages have a number there';
  if (pts.length < 1) return;
  const t0 = pts[0][0], t1 = pts[pts.length - 1][0];
  let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  if (lo === hi) { lo -= 1; hi += 1; }
  const x = (t) => (t1 === t0 ? c.width / 2 : (t - t0) / (t1 - t0) * (c.width - 8) + 4);
  const y = (v) => c.height - 4 - (v - lo) / (hi - lo) * (c.height - 18);
  ctx.strokeStyle = '#b5544a';
  ctx.beginPath();
  pts.forEach(([t, v], i) => (i ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v))));
  ctx.stroke();
  ctx.fillStyle = '#333';
  ctx.fillText('min ' + lo + '  max ' + hi, 4, 11);
}

// ---- keys and start ----------------------------------------------------------------

function keys(ev) {
  const inInput = ev.target instanceof HTMLInputElement;
  if (inInput) {
    if (ev.key === 'Escape') ev.target.blur();
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const step = { j: 1, ArrowDown: 1, k: -1, ArrowUp: -1, PageDown: 20, PageUp: -20 }[ev.key];
  if (step) {
    ev.preventDefault();
    select(Math.max(0, Math.min(state.records.length - 1, state.selected + step)));
  } else if (ev.key === '/') {
    ev.preventDefault();
    $('q').focus();
    $('q').select();
  } else if (ev.key === 'Home' || ev.key === 'g') {
    ev.preventDefault();
    select(0);
  } else if (ev.key === 'End' || ev.key === 'G') {
    ev.preventDefault();
    select(state.records.length - 1);
  } else if (ev.key === 'f') {
    $('follow').click();
  }
}

async function start() {
  readURL();
  $('q').value = state.q;
  $('follow').checked = state.follow;
  $('field').value = state.field;
  try {
    const u = await api('api/unsafe');
    const cls = u.ranges.map(([a, b]) => '\\u{' + a.toString(16) + '}-\\u{' + b.toString(16) + '}').join('');
    unsafeRE = new RegExp('[' + cls + ']', 'gu');
  } catch (e) {
    status(e.message, true);
  }
  $('filter-form').addEventListener('submit', (ev) => { ev.preventDefault(); applyFilter($('q').value.trim()); });
  $('plot-form').addEventListener('submit', (ev) => { ev.preventDefault(); state.field = $('field').value.trim(); writeURL(); plotChart(); });
  $('field').addEventListener('change', () => { state.field = $('field').value.trim(); writeURL(); plotChart(); });
  $('follow').addEventListener('change', () => { state.follow = $('follow').checked; writeURL(); loadFirst(); });
  $('earlier').addEventListener('click', loadEarlier);
  $('list').addEventListener('scroll', () => {
    const l = $('list');
    if (l.scrollTop + l.clientHeight > l.scrollHeight - 300) loadMore();
  });
  document.addEventListener('keydown', keys);
  loadTree();
  await loadFirst();
}

start();
