// The dashboard's entry point: sign-in, the live feed from /events, the
// toolbar acting on the selection, and the detail pane's wiring. All page
// code runs on the browser's event loop; nothing here needs a lock, and
// work that may be large (10,000 torrents) is sliced: the list arrives
// from /torrents parsed a few ms at a time, and events are queued as they
// come and applied in the list's animation frame, a few ms a frame.

import { api, apiRows, q, el, setUnauthorized } from './api.js';
import { TorrentList, rowReader } from './list.js';
import { GlobalPanel } from './panel.js';
import { setupAdd } from './add.js';

const $ = (id) => document.getElementById(id);
const DETAIL_REFRESH_MS = 1000;
const PARALLEL_CALLS = 6;
const TORRENT_EVENTS = ['added', 'removed', 'state', 'progress', 'completed', 'error', 'limit', 'settings', 'reset'];

let list = null;
let panel = null;
let feed = null;          // the EventSource
let feedRetry = 0;        // timer restarting a closed feed
let loaded = false;       // /torrents applied since the feed (re)started
let loading = false;      // a /torrents read under way
let reloadAgain = false;  // a reset came while it was
// Events as they came, [type, JSON text], applied in the list's frame
// (drain); held while the list loads. Past MAX_QUEUED (a hidden tab gets
// no frames) they are dropped and the list is read again instead.
let queue = [];
const MAX_QUEUED = 20000;
let running = false;
const subscribers = new Set();

// ---------- toasts ----------

function toast(message, error) {
  const t = el('div', 'toast' + (error ? ' error' : ''), message);
  $('toasts').append(t);
  setTimeout(() => t.remove(), error ? 6000 : 3500);
}

// ---------- sign-in ----------

function showLogin(message) {
  stopApp();
  $('app').hidden = true;
  $('signin').hidden = false;
  $('login-error').textContent = message || '';
  $('token').focus();
}

async function login(ev) {
  ev.preventDefault();
  const token = $('token').value.trim();
  const err = $('login-error');
  err.textContent = '';
  $('login-submit').disabled = true;
  try {
    await api('/login', { json: { token }, noAuthHook: true });
    $('token').value = '';
    startApp();
  } catch (e) {
    if (e.status === 401) err.textContent = 'Wrong token.';
    else if (e.status === 429) err.textContent = `Too many attempts; try again in ${e.retryAfter || 60} s.`;
    else err.textContent = e.message;
    $('token').select();
  } finally {
    $('login-submit').disabled = false;
  }
}

async function logout() {
  try { await api('/logout', { method: 'POST', noAuthHook: true }); } catch { /* signed out either way */ }
  showLogin();
}

// ---------- the app ----------

function startApp() {
  $('signin').hidden = true;
  $('app').hidden = false;
  running = true;
  // The panel's calls wait for the list (or a moment), which comes first.
  panelTimer = setTimeout(startPanel, 2000);
  openFeed();
}

let panelTimer = 0;
function startPanel() {
  clearTimeout(panelTimer);
  panelTimer = 0;
  if (running && !panel.timers.length) panel.start();
}

function stopApp() {
  running = false;
  if (feed) { feed.close(); feed = null; }
  clearTimeout(feedRetry);
  clearTimeout(panelTimer);
  panelTimer = 0;
  panel?.stop();
  closeDetail();
}

async function loadAll() {
  if (loading) { reloadAgain = true; return; }
  loading = true;
  loaded = false;
  try {
    const records = [];
    let read = null;
    await apiRows('/torrents', (head) => { read = rowReader(head.fields); }, (v) => records.push(read(v)));
    list.load(records);
    loaded = true;
    list.schedule(); // applies the events queued meanwhile
    refreshLabels();
  } catch (e) {
    if (e.status !== 401) toast('Loading torrents: ' + e.message, true);
  } finally {
    loading = false;
    if (reloadAgain) { reloadAgain = false; loadAll(); }
  }
}

/**
 * drain applies queued events until deadline (the list calls it at the
 * start of each frame) and answers whether some are left. Several events
 * of one torrent in a frame touch its row record several times but its
 * row on screen once.
 */
function drain(deadline) {
  if (!loaded) return false;
  let i = 0;
  while (i < queue.length && loaded) {
    const [type, text] = queue[i++];
    let d;
    try { d = JSON.parse(text); } catch { continue; }
    apply(type, d);
    if ((i & 15) === 0 && performance.now() > deadline) break;
  }
  queue.splice(0, i);
  return queue.length > 0 && loaded;
}

// openFeed subscribes to /events first and then reads /alldata, so no
// change falls between the two; events that arrive before the list are
// kept and applied after it.
function openFeed() {
  if (feed) feed.close();
  loaded = false;
  queue = [];
  feed = new EventSource('/events', { withCredentials: true });
  const conn = $('conn-state');
  feed.addEventListener('open', () => {
    conn.textContent = 'live';
    conn.classList.remove('bad');
    if (!loaded) loadAll();
  });
  feed.addEventListener('error', () => {
    conn.textContent = 'reconnecting…';
    conn.classList.add('bad');
    if (feed && feed.readyState === EventSource.CLOSED) {
      // Closed for good (a 401, or too many streams): find out which,
      // and start over a little later if still signed in.
      feed = null;
      api('/session').then(() => {
        if (running) feedRetry = setTimeout(openFeed, 3000);
      }, () => {});
    }
  });
  for (const type of TORRENT_EVENTS) {
    feed.addEventListener(type, (m) => {
      if (queue.length >= MAX_QUEUED) {
        queue = [];
        if (loaded) loadAll();
        return;
      }
      queue.push([type, m.data]);
      list.schedule();
    });
  }
}

let labelTimer = 0;
function refreshLabels() {
  if (labelTimer) return;
  labelTimer = setTimeout(() => {
    labelTimer = 0;
    const sel = $('filter-label');
    const labels = list.labels();
    const have = [...sel.options].slice(1).map((o) => o.value);
    if (have.join('\n') !== labels.join('\n')) {
      const cur = sel.value;
      sel.length = 1;
      for (const l of labels) sel.add(new Option(l, l));
      sel.value = labels.includes(cur) ? cur : '';
      const dl = $('label-list');
      dl.replaceChildren(...labels.map((l) => new Option(l)));
    }
  }, 300);
}

function apply(type, d) {
  for (const fn of subscribers) {
    try { fn({ type, data: d }); } catch (e) { console.error(e); }
  }
  if (type === 'reset') { loadAll(); return; }
  if (!d.infohash) {
    if (type === 'settings') panel.loadSettings();
    return;
  }
  switch (type) {
    case 'added':
      list.upsert({ infohash: d.infohash, name: d.name, state: d.state, size: d.size, progress: d.progress,
        label: d.label, added: d.time ? Date.parse(d.time) || 0 : 0, downrate: 0, uprate: 0, ratio: 0 });
      if (d.label) refreshLabels();
      break;
    case 'removed':
      list.remove(d.infohash);
      break;
    case 'state':
      list.upsert({ infohash: d.infohash, name: d.name, state: d.state, ...(d.state === 'stopped' ? { downrate: 0, uprate: 0 } : {}) });
      break;
    case 'progress':
    case 'completed':
      list.upsert({ infohash: d.infohash, state: d.state, progress: d.progress, size: d.size,
        downrate: d.downrate, uprate: d.uprate });
      break;
    case 'settings':
      list.upsert({ infohash: d.infohash, name: d.name, label: d.label });
      refreshLabels();
      break;
    case 'limit':
      toast(`${d.name}: ${d.reason} (${d.action})`);
      break;
    case 'error':
      toast(`${d.name}: ${d.error}`, true);
      break;
  }
  if (detail && detail.infohash === d.infohash) detailDue();
}

// ---------- detail pane ----------

let detailModule; // undefined: not tried; null: absent
let detail = null; // {infohash, handle}
let detailTimer = 0;
let detailLast = 0;

async function loadDetailModule() {
  if (detailModule !== undefined) return detailModule;
  try {
    detailModule = await import('./detail.js');
  } catch (e) {
    console.warn('detail pane not available:', e);
    detailModule = null;
  }
  return detailModule;
}

const detailCtx = {
  api,
  subscribe(fn) { subscribers.add(fn); return () => subscribers.delete(fn); },
  toast,
};

function closeDetail() {
  if (!detail) return;
  try { detail.handle?.close(); } catch (e) { console.error(e); }
  detail = null;
  clearTimeout(detailTimer);
  detailTimer = 0;
  $('detail').replaceChildren();
  $('detail').hidden = true;
}

async function selectionChanged() {
  const n = list.selected.size;
  for (const id of ['act-start', 'act-stop', 'act-recheck', 'act-remove', 'act-label', 'act-limits']) $(id).disabled = n === 0;
  $('sel-count').textContent = n ? `${n} selected` : '';
  $('select-all').checked = list.allShownSelected();
  const one = n === 1 ? [...list.selected][0] : null;
  if (detail && detail.infohash === one) return;
  closeDetail();
  if (!one) return;
  const mod = await loadDetailModule();
  if (!mod || list.selected.size !== 1 || [...list.selected][0] !== one || detail) return;
  const root = $('detail');
  root.hidden = false;
  detail = { infohash: one, handle: null };
  try {
    detail.handle = mod.openDetail(root, one, detailCtx);
  } catch (e) {
    console.error(e);
  }
  refreshDetail();
}

function detailDue() {
  if (detailTimer) return;
  const wait = Math.max(0, DETAIL_REFRESH_MS - (performance.now() - detailLast));
  detailTimer = setTimeout(refreshDetail, wait);
}

async function refreshDetail() {
  detailTimer = 0;
  detailLast = performance.now();
  if (!detail?.handle) return;
  const ih = detail.infohash;
  try {
    const t = await api('/torrentdata?infohash=' + ih);
    if (detail?.infohash === ih) detail.handle.update?.(t);
  } catch (e) {
    if (e.status === 404) closeDetail();
  }
}

// ---------- toolbar ----------

// each runs call(infohash) for every selected torrent, a few at a time,
// and reports failures in one toast.
async function each(what, call) {
  const hashes = [...list.selected];
  if (!hashes.length) return;
  const errors = [];
  let next = 0;
  const worker = async () => {
    while (next < hashes.length) {
      const ih = hashes[next++];
      try { await call(ih); } catch (e) {
        const r = list.byHash.get(ih);
        errors.push(`${r ? r.name : ih}: ${e.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_CALLS, hashes.length) }, worker));
  if (errors.length) toast(`${what}: ${errors.length} failed. ${errors.slice(0, 3).join('; ')}`, true);
  else if (hashes.length > 1) toast(`${what}: ${hashes.length} torrents`);
}

const call = (path, params) => api(path + '?' + q(params));

function setupToolbar() {
  $('act-start').addEventListener('click', () => each('Start', (ih) => call('/starttorrent', { infohash: ih })));
  $('act-stop').addEventListener('click', () => each('Stop', (ih) => call('/stoptorrent', { infohash: ih })));
  $('act-recheck').addEventListener('click', () => each('Recheck', (ih) => call('/recheck', { infohash: ih })));
  $('act-remove').addEventListener('click', () => {
    const n = list.selected.size;
    const one = n === 1 ? list.byHash.get([...list.selected][0]) : null;
    $('remove-what').textContent = one ? `Remove “${one.name}”?` : `Remove ${n} torrents?`;
    $('remove-data').checked = false;
    $('remove-dialog').showModal();
  });
  $('remove-ok').addEventListener('click', async () => {
    const del = $('remove-data').checked;
    $('remove-dialog').close();
    await each('Remove', (ih) => call('/removetorrent', { infohash: ih, delete: del }));
  });
  $('act-label').addEventListener('click', () => {
    const labels = new Set([...list.selected].map((ih) => list.byHash.get(ih)?.label || ''));
    $('label-input').value = labels.size === 1 ? [...labels][0] : '';
    $('label-dialog').showModal();
  });
  $('label-ok').addEventListener('click', async () => {
    const label = $('label-input').value.trim();
    $('label-dialog').close();
    await each('Label', (ih) => call('/setlabel', { infohash: ih, label }));
  });
  $('label-input').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); $('label-ok').click(); } });
  $('act-limits').addEventListener('click', () => {
    for (const id of ['limits-down', 'limits-up', 'limits-ratio', 'limits-seedtime']) $(id).value = '';
    $('limits-dialog').showModal();
  });
  $('limits-ok').addEventListener('click', async () => {
    const v = (id) => $(id).value.trim();
    const down = v('limits-down'), up = v('limits-up'), ratio = v('limits-ratio'), mins = v('limits-seedtime');
    $('limits-dialog').close();
    await each('Limits', async (ih) => {
      if (down !== '') await call('/setdownrate', { infohash: ih, rate: down });
      if (up !== '') await call('/setuprate', { infohash: ih, rate: up });
      if (ratio !== '') await call('/setratiolimit', { infohash: ih, ratio });
      if (mins !== '') await call('/setseedtimelimit', { infohash: ih, minutes: mins });
    });
  });
  for (const b of document.querySelectorAll('dialog .cancel')) {
    b.addEventListener('click', () => b.closest('dialog').close());
  }
  $('select-all').addEventListener('change', (e) => list.selectAll(e.target.checked));
  $('logout').addEventListener('click', logout);
  document.addEventListener('keydown', (e) => {
    if (e.target.closest('input, select, textarea, dialog')) return;
    if (e.key === 'Delete' && list.selected.size) $('act-remove').click();
    else if ((e.ctrlKey || e.metaKey) && e.key === 'a' && !$('app').hidden) { e.preventDefault(); list.selectAll(true); }
    else if (e.key === 'Escape') list.selectAll(false);
  });
}

function setupList() {
  let ready = false;
  list = new TorrentList($('torrent-list'), $('torrent-spacer'), {
    onSelection: selectionChanged,
    beforeRender: drain,
    onRender(shown, total) {
      const text = `${shown} of ${total} torrents`;
      if ($('list-count').textContent !== text) $('list-count').textContent = text;
      if ($('list-empty').hidden !== total > 0) $('list-empty').hidden = total > 0;
      if (!ready && loaded) {
        ready = true;
        document.body.dataset.ready = '1';
        performance.mark('gts-list-ready');
        setTimeout(startPanel, 300);
      }
    },
  });
  const head = $('torrent-head');
  const markSort = () => {
    for (const h of head.querySelectorAll('[data-sort]')) {
      h.classList.toggle('asc', h.dataset.sort === list.sortKey && list.sortDir > 0);
      h.classList.toggle('desc', h.dataset.sort === list.sortKey && list.sortDir < 0);
    }
  };
  head.addEventListener('click', (e) => {
    const h = e.target.closest('[data-sort]');
    if (!h) return;
    list.sortBy(h.dataset.sort);
    markSort();
  });
  markSort();
  let textTimer = 0;
  $('filter-text').addEventListener('input', (e) => {
    clearTimeout(textTimer);
    textTimer = setTimeout(() => list.setFilter({ text: e.target.value.trim() }), 120);
  });
  $('filter-state').addEventListener('change', (e) => list.setFilter({ state: e.target.value }));
  $('filter-label').addEventListener('change', (e) => list.setFilter({ label: e.target.value }));
}

async function boot() {
  setUnauthorized(() => { if (running) showLogin('Your session ended; sign in again.'); });
  panel = new GlobalPanel(toast);
  setupList();
  setupToolbar();
  setupAdd(toast);
  $('login').addEventListener('submit', login);
  try {
    await api('/session', { noAuthHook: true });
    startApp();
  } catch {
    showLogin();
  }
}

boot();
