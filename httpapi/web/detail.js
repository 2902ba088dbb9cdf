// The detail pane of one torrent: header figures, and tabs of files (a tree
// with priorities), peers, trackers and web seeds, a piece map and the
// torrent's settings and move.
//
// openDetail builds the pane once; update(torrent) then changes only the
// nodes whose text or value differs, keyed by file index, peer host and
// tracker URL, so a rate change rewrites a few text nodes, not the tables.
// Everything runs on the page's one thread; requests are ctx.api calls
// (same-origin, the session cookie) whose answers come back as promises.

import { el, setText, fmtBytes, fmtRate, fmtPct, fmtDuration, fmtLimit } from './detail-util.js';
import { filesTab } from './detail-files.js';
import { peersTab, trackersTab, piecesTab } from './detail-tables.js';
import { settingsTab } from './detail-settings.js';

const TABS = [['files', 'Files'], ['peers', 'Peers'], ['trackers', 'Trackers'], ['pieces', 'Pieces'], ['settings', 'Settings']];
// Without an update for this long the pane asks for the torrent itself:
// peers and trackers change without events.
const REFRESH_MS = 2000;

// ensureStyles links detail.css once; the page may already link it.
function ensureStyles() {
  if (document.querySelector('link[href="/ui/detail.css"]')) return;
  document.head.append(el('link', { rel: 'stylesheet', href: '/ui/detail.css' }));
}

export function openDetail(root, infohash, ctx) {
  ensureStyles();
  const q = (path, params) => {
    const u = new URLSearchParams({ infohash, ...params });
    return `${path}?${u}`;
  };
  const call = async (path, params, what) => {
    try {
      return await ctx.api(q(path, params));
    } catch (err) {
      // The second argument marks an error where the page's toast has it.
      ctx.toast(`${what}: ${err && err.message ? err.message : err}`, true);
      throw err;
    }
  };

  let closed = false;
  let last = null; // the torrent JSON last shown
  let lastAt = 0;

  root.replaceChildren();
  root.classList.add('detail');
  root.dataset.infohash = infohash;

  // Header.
  const head = {};
  const headEl = el('div', { id: 'detail-head' });
  head.name = el('h2', { class: 'd-name' });
  headEl.append(head.name);
  const figures = el('dl', { class: 'd-figures' });
  for (const [k, label] of [['state', 'State'], ['progress', 'Progress'], ['size', 'Size'], ['down', 'Down'],
    ['up', 'Up'], ['ratio', 'Ratio'], ['seeding', 'Seeding'], ['path', 'Path'], ['label', 'Label']]) {
    head[k] = el('dd', { class: 'd-' + k });
    figures.append(el('div', null, el('dt', null, label), head[k]));
  }
  head.error = el('p', { class: 'd-error', hidden: true });
  headEl.append(figures, head.error);

  // Tabs.
  const tabBar = el('div', { class: 'd-tabs', role: 'tablist' });
  const panels = {};
  let activeTab = 'files';
  for (const [name, label] of TABS) {
    tabBar.append(el('button', { type: 'button', role: 'tab', dataset: { tab: name } }, label));
    panels[name] = el('section', { class: 'd-panel', dataset: { panel: name }, role: 'tabpanel' });
  }
  tabBar.addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-tab]');
    if (b) showTab(b.dataset.tab);
  });
  function showTab(name) {
    if (!panels[name]) return;
    activeTab = name;
    for (const b of tabBar.querySelectorAll('[data-tab]')) {
      const on = b.dataset.tab === name;
      b.classList.toggle('active', on);
      b.setAttribute('aria-selected', on ? 'true' : 'false');
    }
    for (const [n, p] of Object.entries(panels)) p.hidden = n !== name;
    // A hidden canvas has no width: draw it once it shows.
    if (name === 'pieces' && last) pieces.draw(last);
  }

  root.append(headEl, tabBar, ...Object.values(panels));

  const files = filesTab(panels.files, call);
  const peers = peersTab(panels.peers);
  const trackers = trackersTab(panels.trackers);
  const pieces = piecesTab(panels.pieces);
  const settings = settingsTab(panels.settings, call, () => last, refresh);
  showTab(activeTab);

  function update(t) {
    if (closed || !t || t.infohash !== infohash) return;
    last = t;
    lastAt = Date.now();
    setText(head.name, t.name || infohash);
    setText(head.state, t.state);
    head.state.dataset.state = t.state;
    setText(head.progress, fmtPct(t.progress));
    setText(head.size, t.wanted !== undefined && t.wanted !== t.size ? `${fmtBytes(t.wanted)} of ${fmtBytes(t.size)}` : fmtBytes(t.size));
    setText(head.down, fmtRate(t.downrate) + (t.maxdown > 0 ? ` (max ${t.maxdown} KiB/s)` : ''));
    setText(head.up, fmtRate(t.uprate) + (t.maxup > 0 ? ` (max ${t.maxup} KiB/s)` : ''));
    setText(head.ratio, (t.ratio || 0).toFixed(2) + (t.ratio_limit ? ` (limit ${fmtLimit(t.ratio_limit, '')})` : ''));
    setText(head.seeding, fmtDuration(t.seeding_seconds) + (t.seed_time_limit ? ` (limit ${fmtLimit(t.seed_time_limit, ' min')})` : ''));
    setText(head.path, t.path || '');
    setText(head.label, t.label || '—');
    const err = t.error || t.limit_reached || '';
    setText(head.error, err);
    head.error.hidden = !err;

    files.update(t);
    peers.update(t.Peers || []);
    trackers.update(t.trackers || [], t.webseeds || []);
    if (activeTab === 'pieces') pieces.draw(t);
    else pieces.count(t);
    settings.update(t);
  }

  // One request at a time; one asked for meanwhile runs after it, so a
  // refresh after a change always shows the torrent from after it.
  let inflight = null;
  let again = false;
  async function refresh() {
    if (closed) return;
    if (inflight) {
      again = true;
      return inflight;
    }
    inflight = (async () => {
      do {
        again = false;
        try {
          update(await ctx.api(q('/torrentdata', {})));
        } catch (err) {
          if (err && (err.status === 404 || /not found/i.test(String(err.message || err)))) gone();
        }
      } while (again && !closed);
    })();
    try {
      await inflight;
    } finally {
      inflight = null;
    }
  }

  function gone() {
    head.state.dataset.state = 'removed';
    setText(head.state, 'removed');
  }

  const unsubscribe = ctx.subscribe((ev) => {
    if (closed || !ev || !ev.data || ev.data.infohash !== infohash) return;
    if (ev.type === 'removed') gone();
    // A change the app may not pass on at once (settings, state): ask now
    // unless an update just came.
    else if ((ev.type === 'settings' || ev.type === 'state') && Date.now() - lastAt > 300) refresh();
  });
  const timer = setInterval(() => {
    if (document.visibilityState !== 'hidden' && Date.now() - lastAt >= REFRESH_MS) refresh();
  }, REFRESH_MS / 2);
  const onResize = () => {
    if (activeTab === 'pieces' && last) pieces.draw(last);
  };
  window.addEventListener('resize', onResize);
  refresh();

  return {
    update,
    close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      window.removeEventListener('resize', onResize);
      if (typeof unsubscribe === 'function') unsubscribe();
      root.replaceChildren();
      root.classList.remove('detail');
      delete root.dataset.infohash;
    },
  };
}
