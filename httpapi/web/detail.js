// The detail pane of one torrent: header figures, and tabs of files (a tree
// with priorities), peers, trackers and web seeds, a piece map and the
// torrent's settings and move.
//
// openDetail builds the pane once; update(torrent) then changes only the
// nodes whose text or value differs, keyed by file index, peer host and
// tracker URL, so a rate change rewrites a few text nodes, not the tables.
// Everything runs on the page's one thread; requests are ctx.api calls
// (same-origin, the session cookie) whose answers come back as promises.

const PRIORITIES = [[0, 'Skip'], [1, 'Normal'], [2, 'High']];
const TABS = [['files', 'Files'], ['peers', 'Peers'], ['trackers', 'Trackers'], ['pieces', 'Pieces'], ['settings', 'Settings']];
// Without an update for this long the pane asks for the torrent itself:
// peers and trackers change without events.
const REFRESH_MS = 2000;

// el makes an element; attrs go through properties or setAttribute, never
// an inline style string (the CSP forbids those).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k in e && typeof v !== 'string') e[k] = v;
      else e.setAttribute(k, v);
    }
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c);
  }
  return e;
}

// setText writes a node's text only when it changed, so an unchanged
// figure costs no layout.
function setText(node, text) {
  text = String(text);
  if (node.textContent !== text) node.textContent = text;
}

function fmtBytes(n) {
  if (!Number.isFinite(n) || n < 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
}

// The API's rates and peer byte counts are whole KiB.
const fmtRate = (kib) => (kib > 0 ? fmtBytes(kib * 1024) + '/s' : '0');
const fmtPct = (f) => ((f || 0) * 100).toFixed(1) + '%';

function fmtDuration(s) {
  if (!(s > 0)) return '0s';
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${Math.floor(s % 60)}s`;
  return `${Math.floor(s)}s`;
}

function fmtTime(t) {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toLocaleString();
}

function fmtLimit(v, unit) {
  if (v === -1) return 'global';
  if (v === 0 || v === undefined || v === null) return 'none';
  return v + unit;
}

function decodeBase64(s) {
  if (!s) return new Uint8Array(0);
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const POPCOUNT = new Uint8Array(256).map((_, i) => {
  let n = 0;
  for (let b = i; b; b >>= 1) n += b & 1;
  return n;
});

function countBits(bytes) {
  let n = 0;
  for (const b of bytes) n += POPCOUNT[b];
  return n;
}

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

function prioritySelect(cls, withMixed) {
  const s = el('select', { class: cls });
  if (withMixed) s.append(el('option', { value: '' }, 'Mixed'));
  for (const [v, label] of PRIORITIES) s.append(el('option', { value: String(v) }, label));
  return s;
}

// filesTab: the files as a folder tree. Each file row is keyed by its index
// in the torrent's files; folders hold a "set all" select and collapse.
function filesTab(panel, call) {
  const summary = el('p', { class: 'd-files-summary' });
  const tree = el('div', { class: 'file-tree', role: 'tree' });
  panel.append(summary, tree);
  let shape = ''; // the paths the tree was built from
  let rows = []; // per file index: {row, select, bar, pct, file}
  let dirs = []; // {row, select, indices, children, toggle}
  // A priority the operator chose, kept over older answers until the
  // torrent reports it or the call fails.
  const pending = new Map();

  function build(list) {
    tree.replaceChildren();
    rows = [];
    dirs = [];
    const top = { dirs: new Map(), files: [] };
    list.forEach((f, i) => {
      const parts = f.path.split('/').filter(Boolean);
      let node = top;
      for (const p of parts.slice(0, -1)) {
        if (!node.dirs.has(p)) node.dirs.set(p, { dirs: new Map(), files: [] });
        node = node.dirs.get(p);
      }
      node.files.push({ i, name: parts[parts.length - 1] || f.path, f });
    });
    const render = (node, container, depth) => {
      const out = [];
      for (const [name, sub] of [...node.dirs].sort((a, b) => a[0].localeCompare(b[0]))) {
        const toggle = el('button', { type: 'button', class: 'dir-toggle', 'aria-expanded': 'true', title: 'Collapse' }, '▾');
        const select = prioritySelect('dir-priority', true);
        select.title = 'Set all files in this folder';
        const size = el('span', { class: 'f-size' });
        const row = el('div', { class: 'dir-row', role: 'treeitem' }, toggle, el('span', { class: 'f-name' }, name + '/'), size, select);
        row.style.paddingLeft = depth * 1.2 + 'em';
        const children = el('div', { class: 'dir-children', role: 'group' });
        container.append(row, children);
        const d = { row, select, size, children, toggle, indices: render(sub, children, depth + 1) };
        row.dataset.dir = String(dirs.length);
        dirs.push(d);
        out.push(...d.indices);
      }
      for (const { i, name, f } of node.files.sort((a, b) => a.name.localeCompare(b.name))) {
        const select = prioritySelect('file-priority', false);
        const fill = el('div', { class: 'f-fill' });
        const pct = el('span', { class: 'f-pct' });
        const row = el('div', { class: 'file-row', role: 'treeitem', dataset: { index: String(i) } },
          el('span', { class: 'f-name', title: f.path }, name),
          el('span', { class: 'f-size' }, fmtBytes(f.length)),
          el('div', { class: 'f-bar' }, fill), pct, select);
        row.style.paddingLeft = depth * 1.2 + 1.4 + 'em';
        container.append(row);
        rows[i] = { row, select, fill, pct, f };
        out.push(i);
      }
      return out;
    };
    render(top, tree, 0);
  }

  async function setPriority(indices, p) {
    for (const i of indices) {
      pending.set(i, p);
      rows[i].select.value = String(p);
      rows[i].row.classList.toggle('skipped', p === 0);
    }
    refreshDirs();
    // One call per file, a few at a time: a folder of thousands should not
    // open thousands of requests at once.
    const queue = [...indices];
    const worker = async () => {
      while (queue.length) {
        const i = queue.shift();
        try {
          await call('/setfilepriority', { file: String(i), priority: String(p) }, `priority of ${rows[i].f.path}`);
        } catch {
          pending.delete(i);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, indices.length) }, worker));
  }

  tree.addEventListener('change', (ev) => {
    const s = ev.target;
    if (s.classList.contains('file-priority')) {
      const i = Number(s.closest('.file-row').dataset.index);
      setPriority([i], Number(s.value));
    } else if (s.classList.contains('dir-priority') && s.value !== '') {
      const d = dirs[Number(s.closest('.dir-row').dataset.dir)];
      setPriority(d.indices, Number(s.value));
    }
  });
  tree.addEventListener('click', (ev) => {
    const b = ev.target.closest('.dir-toggle');
    if (!b) return;
    const d = dirs[Number(b.closest('.dir-row').dataset.dir)];
    const collapse = !d.children.hidden;
    d.children.hidden = collapse;
    d.row.classList.toggle('collapsed', collapse);
    b.textContent = collapse ? '▸' : '▾';
    b.setAttribute('aria-expanded', collapse ? 'false' : 'true');
    b.title = collapse ? 'Expand' : 'Collapse';
  });

  function priorityOf(i) {
    return pending.has(i) ? pending.get(i) : rows[i].f.priority ?? 1;
  }

  function refreshDirs() {
    for (const d of dirs) {
      let common = null, bytes = 0;
      for (const i of d.indices) {
        const p = priorityOf(i);
        common = common === null || common === p ? p : 'mixed';
        bytes += rows[i].f.length;
      }
      const v = common === 'mixed' || common === null ? '' : String(common);
      if (d.select.value !== v && document.activeElement !== d.select) d.select.value = v;
      setText(d.size, fmtBytes(bytes));
    }
  }

  return {
    update(t) {
      const list = t.files || [];
      const key = list.map((f) => f.path).join('\n');
      if (key !== shape) {
        shape = key;
        build(list);
      }
      let skipped = 0;
      list.forEach((f, i) => {
        const r = rows[i];
        r.f = f;
        const reported = f.priority ?? 1;
        if (pending.get(i) === reported) pending.delete(i);
        const p = priorityOf(i);
        if (p === 0) skipped++;
        if (r.select.value !== String(p) && document.activeElement !== r.select) r.select.value = String(p);
        r.row.classList.toggle('skipped', p === 0);
        const w = ((f.progress || 0) * 100).toFixed(1) + '%';
        if (r.fill.style.width !== w) r.fill.style.width = w;
        setText(r.pct, w);
      });
      refreshDirs();
      setText(summary, list.length ? `${list.length} file${list.length === 1 ? '' : 's'}` + (skipped ? `, ${skipped} skipped` : '') : 'No files yet (fetching metadata).');
    },
  };
}

// keyedTable keeps one row per key, made once; update writes changed cells
// and removes rows whose key is gone, leaving the rest in place.
function keyedTable(panel, cls, columns, empty) {
  const tbody = el('tbody');
  const table = el('table', { class: 'd-table' },
    el('thead', null, el('tr', null, ...columns.map(([, label]) => el('th', null, label)))), tbody);
  const none = el('p', { class: 'd-empty' }, empty);
  panel.append(table, none);
  const rows = new Map();
  return (items, keyOf) => {
    const seen = new Set();
    for (const it of items) {
      const key = keyOf(it);
      seen.add(key);
      let r = rows.get(key);
      if (!r) {
        const cells = columns.map(([k]) => el('td', { class: 'c-' + k }));
        r = { tr: el('tr', { class: cls, dataset: { key } }, ...cells), cells };
        rows.set(key, r);
        tbody.append(r.tr);
      }
      columns.forEach(([, , get], j) => {
        const v = get(it);
        setText(r.cells[j], v);
        if (j === columns.length - 1 || columns[j][0] === 'error') r.cells[j].title = v;
      });
    }
    for (const [key, r] of rows) {
      if (!seen.has(key)) {
        r.tr.remove();
        rows.delete(key);
      }
    }
    table.hidden = rows.size === 0;
    none.hidden = rows.size !== 0;
    return rows;
  };
}

function peerProgress(p) {
  if (typeof p.progress === 'number') return p.progress;
  if (!p.bitfield_length) return null;
  // Decoding costs little but happens every update: keep it per bitfield.
  if (p._pb !== p.bitfield_base64) {
    p._pb = p.bitfield_base64;
    p._pv = countBits(decodeBase64(p.bitfield_base64)) / p.bitfield_length;
  }
  return p._pv;
}

function peerFlags(p) {
  let s = '';
  if (p.encrypted) s += 'E';
  if (p.utp) s += 'U';
  if (p.outgoing) s += 'O';
  if (p.seed) s += 'S';
  return s;
}

function peersTab(panel) {
  const legend = el('p', { class: 'd-legend' }, 'Flags: E encrypted, U uTP, O outgoing (we dialed), S seed.');
  panel.append(legend);
  const table = keyedTable(panel, 'peer-row', [
    ['host', 'Host', (p) => p.host],
    ['client', 'Client', (p) => p.client || (p.connected ? '?' : 'not connected')],
    ['down', 'Down', (p) => fmtRate(p.downrate)],
    ['up', 'Up', (p) => fmtRate(p.uprate)],
    ['progress', 'Progress', (p) => {
      const v = peerProgress(p);
      return v === null ? '—' : fmtPct(v);
    }],
    ['flags', 'Flags', peerFlags],
    ['downloaded', 'Downloaded', (p) => fmtBytes((p.downloaded || 0) * 1024)],
    ['uploaded', 'Uploaded', (p) => fmtBytes((p.uploaded || 0) * 1024)],
  ], 'No peers.');
  return {
    update(list) {
      const rows = table(list, (p) => p.host);
      for (const p of list) {
        const r = rows.get(p.host);
        r.tr.classList.toggle('disconnected', p.connected === false);
        r.tr.dataset.host = p.host;
      }
    },
  };
}

function trackersTab(panel) {
  panel.append(el('h3', null, 'Trackers'));
  const trackers = keyedTable(panel, 'tracker-row', [
    ['url', 'URL', (t) => t.url],
    ['status', 'Status', (t) => t.status || ''],
    ['seeders', 'Seeders', (t) => (t.seeders >= 0 ? t.seeders : '—')],
    ['leechers', 'Leechers', (t) => (t.leechers >= 0 ? t.leechers : '—')],
    ['peers', 'Peers', (t) => t.peers ?? '—'],
    ['announce', 'Last announce', (t) => fmtTime(t.lastannounce)],
    ['error', 'Error', (t) => t.error || ''],
  ], 'No trackers.');
  panel.append(el('h3', null, 'Web seeds'));
  const webseeds = keyedTable(panel, 'webseed-row', [
    ['url', 'URL', (w) => w.url],
    ['status', 'Status', (w) => w.status || ''],
    ['downloaded', 'Downloaded', (w) => fmtBytes((w.downloaded || 0) * 1024)],
    ['down', 'Rate', (w) => fmtRate(w.downrate)],
    ['retry', 'Next retry', (w) => (w.next_retry ? fmtTime(w.next_retry) : '—')],
    ['error', 'Error', (w) => w.error || ''],
  ], 'No web seeds.');
  return {
    update(ts, ws) {
      const tr = trackers(ts, (t) => t.url);
      for (const t of ts) tr.get(t.url).tr.classList.toggle('failing', !!t.error);
      const wr = webseeds(ws, (w) => w.url);
      for (const w of ws) wr.get(w.url).tr.classList.toggle('failing', !!w.error);
    },
  };
}

// piecesTab draws the bitfield on canvas#piece-map: one device pixel column
// covers n/width pieces and is coloured by the share of them we have.
function piecesTab(panel) {
  const canvas = el('canvas', { id: 'piece-map', height: 40 });
  const caption = el('p', { class: 'd-pieces' });
  panel.append(canvas, caption);
  let drawn = ''; // bitfield, length and size of the last drawing

  function colours() {
    const cs = getComputedStyle(canvas);
    return {
      have: parse(cs.getPropertyValue('--have'), [46, 160, 67]),
      missing: parse(cs.getPropertyValue('--missing'), [225, 228, 232]),
    };
  }
  function parse(v, dflt) {
    const m = /^\s*#([0-9a-f]{6})\s*$/i.exec(v || '');
    if (!m) return dflt;
    const n = parseInt(m[1], 16);
    return [n >> 16, (n >> 8) & 255, n & 255];
  }

  let counted = '';
  function count(t) {
    if (counted === t.bitfield_base64 + t.bitfield_length) return;
    counted = t.bitfield_base64 + t.bitfield_length;
    const n = t.bitfield_length || 0;
    const have = Math.min(countBits(decodeBase64(t.bitfield_base64)), n);
    setText(caption, n ? `${have} of ${n} pieces (${fmtPct(have / n)})` : 'No pieces known yet.');
  }

  return {
    count,
    draw(t) {
      count(t);
      const dpr = window.devicePixelRatio || 1;
      const cssW = canvas.clientWidth || canvas.parentElement.clientWidth;
      const cssH = canvas.clientHeight || 40;
      if (!cssW) return; // not laid out: drawn when its tab shows
      const w = Math.max(1, Math.round(cssW * dpr)), h = Math.max(1, Math.round(cssH * dpr));
      const key = `${t.bitfield_base64}|${t.bitfield_length}|${w}x${h}`;
      if (key === drawn) return;
      drawn = key;
      if (canvas.width !== w) canvas.width = w;
      if (canvas.height !== h) canvas.height = h;
      const g = canvas.getContext('2d');
      const n = t.bitfield_length || 0;
      const bits = decodeBase64(t.bitfield_base64);
      const { have, missing } = colours();
      const img = g.createImageData(w, 1);
      for (let x = 0; x < w; x++) {
        let share = 0;
        if (n > 0) {
          // Columns split the pieces evenly; with fewer pieces than columns
          // a piece spans several columns.
          const a = Math.floor((x * n) / w);
          const b = Math.max(a + 1, Math.floor(((x + 1) * n) / w));
          let got = 0;
          for (let i = a; i < b; i++) if (bits[i >> 3] & (0x80 >> (i & 7))) got++;
          share = got / (b - a);
        }
        const o = x * 4;
        for (let c = 0; c < 3; c++) img.data[o + c] = Math.round(missing[c] + (have[c] - missing[c]) * share);
        img.data[o + 3] = 255;
      }
      for (let y = 0; y < h; y++) g.putImageData(img, 0, y);
    },
  };
}

// settingsTab: limits, ratio and seed time (global, none or a value), label,
// sequential, and move. Fields follow the torrent until the operator edits
// one; Save sends only what differs from the torrent.
function settingsTab(panel, call, current, refresh) {
  const num = (id, attrs) => el('input', { id, type: 'number', min: '0', ...attrs });
  const mode = (id) => el('select', { id, class: 'limit-mode' },
    el('option', { value: 'global' }, 'global'), el('option', { value: 'none' }, 'none'), el('option', { value: 'value' }, 'value'));
  const f = {
    maxdown: num('detail-maxdown', { step: '1', title: 'KiB/s, 0 unlimited' }),
    maxup: num('detail-maxup', { step: '1', title: 'KiB/s, 0 unlimited' }),
    ratioMode: mode('detail-ratio-mode'),
    ratio: num('detail-ratio', { step: '0.01' }),
    seedMode: mode('detail-seedtime-mode'),
    seedtime: num('detail-seedtime', { step: '1', title: 'minutes' }),
    label: el('input', { id: 'detail-label', type: 'text', maxLength: 128 }),
    sequential: el('input', { id: 'detail-sequential', type: 'checkbox' }),
    save: el('button', { id: 'detail-save', type: 'submit' }, 'Save'),
    status: el('span', { id: 'detail-save-status', class: 'd-status', role: 'status' }),
  };
  const field = (label, ...inputs) => el('label', { class: 'd-field' }, el('span', null, label), el('span', { class: 'd-inputs' }, ...inputs));
  const form = el('form', { id: 'detail-settings', class: 'd-form' },
    field('Download limit (KiB/s, 0 = none)', f.maxdown),
    field('Upload limit (KiB/s, 0 = none)', f.maxup),
    field('Ratio limit', f.ratioMode, f.ratio),
    field('Seed time limit (minutes)', f.seedMode, f.seedtime),
    field('Label', f.label),
    field('Download in order', f.sequential),
    el('div', { class: 'd-actions' }, f.save, f.status));
  const move = {
    path: el('input', { id: 'detail-move-path', type: 'text', placeholder: 'folder under the download root' }),
    button: el('button', { id: 'detail-move', type: 'submit' }, 'Move'),
    status: el('span', { id: 'detail-move-status', class: 'd-status', role: 'status' }),
  };
  const moveForm = el('form', { id: 'detail-move-form', class: 'd-form' },
    field('Move data to', move.path), el('div', { class: 'd-actions' }, move.button, move.status));
  panel.append(form, el('h3', null, 'Move'), moveForm);

  let dirty = false;
  let shown = {}; // the number inputs' values as last filled in
  // Which mode selects the operator picked since the fill: a picked mode
  // wins over a number typed before.
  let chosen = {};
  form.addEventListener('input', (ev) => {
    dirty = true;
    // Typing a number means "this value".
    if (ev.target === f.ratio) f.ratioMode.value = 'value';
    if (ev.target === f.seedtime) f.seedMode.value = 'value';
    syncModes();
  });
  form.addEventListener('change', (ev) => {
    dirty = true;
    if (ev.target === f.ratioMode) chosen.ratio = true;
    if (ev.target === f.seedMode) chosen.seedtime = true;
    syncModes();
  });
  function syncModes() {
    f.ratio.classList.toggle('inactive', f.ratioMode.value !== 'value');
    f.seedtime.classList.toggle('inactive', f.seedMode.value !== 'value');
  }

  const settingsOf = (t) => ({
    maxdown: t.maxdown || 0, maxup: t.maxup || 0, ratio: t.ratio_limit ?? -1, seedtime: t.seed_time_limit ?? -1,
    label: t.label || '', sequential: !!t.sequential,
  });
  let base = {};
  function fill(t) {
    base = settingsOf(t);
    f.maxdown.value = String(t.maxdown || 0);
    f.maxup.value = String(t.maxup || 0);
    const rl = t.ratio_limit ?? -1, sl = t.seed_time_limit ?? -1;
    f.ratioMode.value = rl === -1 ? 'global' : rl === 0 ? 'none' : 'value';
    f.ratio.value = rl > 0 ? String(rl) : '';
    f.seedMode.value = sl === -1 ? 'global' : sl === 0 ? 'none' : 'value';
    f.seedtime.value = sl > 0 ? String(sl) : '';
    f.label.value = t.label || '';
    f.sequential.checked = !!t.sequential;
    shown = { ratio: f.ratio.value, seedtime: f.seedtime.value };
    chosen = {};
    syncModes();
  }

  // limitValue reads a mode select and its number. A number changed since
  // the fill counts as "value" unless the select was picked after: fields
  // set by a script fire no events, and the number alone then says it.
  function limitValue(sel, input, was, picked, integer) {
    let m = sel.value;
    if (!picked && m !== 'value' && input.value !== was && input.value !== '') m = 'value';
    if (m === 'global') return -1;
    if (m === 'none') return 0;
    const v = integer ? Math.round(Number(input.value)) : Number(input.value);
    return Number.isFinite(v) && v > 0 ? v : NaN;
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = current();
    if (!t) return;
    const rate = (input) => Math.round(Number(input.value || 0));
    const want = {
      maxdown: rate(f.maxdown), maxup: rate(f.maxup),
      ratio: limitValue(f.ratioMode, f.ratio, shown.ratio, chosen.ratio, false),
      seedtime: limitValue(f.seedMode, f.seedtime, shown.seedtime, chosen.seedtime, true),
      label: f.label.value.trim(), sequential: f.sequential.checked,
    };
    for (const k of ['maxdown', 'maxup', 'ratio', 'seedtime']) {
      if (!Number.isFinite(want[k]) || want[k] < -1) {
        setText(f.status, `${k}: not a valid number`);
        f.status.dataset.result = 'error';
        return;
      }
    }
    // A field is sent when it differs from the torrent as last seen or as
    // the form was filled: either may be an answer older than the other.
    const now = settingsOf(t);
    const differs = (k) => want[k] !== now[k] || want[k] !== base[k];
    const calls = [];
    if (differs('maxdown')) calls.push(['/setdownrate', { rate: String(want.maxdown) }, 'download limit']);
    if (differs('maxup')) calls.push(['/setuprate', { rate: String(want.maxup) }, 'upload limit']);
    if (differs('ratio')) calls.push(['/setratiolimit', { ratio: String(want.ratio) }, 'ratio limit']);
    if (differs('seedtime')) calls.push(['/setseedtimelimit', { minutes: String(want.seedtime) }, 'seed time limit']);
    if (differs('label')) calls.push(['/setlabel', { label: want.label }, 'label']);
    if (differs('sequential')) calls.push(['/setsequential', { value: String(want.sequential) }, 'sequential']);
    f.save.disabled = true;
    setText(f.status, calls.length ? 'Saving…' : 'Nothing changed.');
    delete f.status.dataset.result;
    let failed = 0;
    for (const [path, params, what] of calls) {
      try {
        await call(path, params, what);
      } catch {
        failed++;
      }
    }
    // The form shows the torrent as it now is before it says so.
    dirty = false;
    await refresh();
    f.save.disabled = false;
    if (calls.length) {
      setText(f.status, failed ? `${failed} of ${calls.length} changes failed.` : 'Saved.');
      f.status.dataset.result = failed ? 'error' : 'ok';
    }
  });

  moveForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const path = move.path.value.trim();
    if (!path) {
      setText(move.status, 'Give a folder.');
      return;
    }
    move.button.disabled = true;
    setText(move.status, 'Moving…');
    const t = current();
    try {
      await call('/movetorrent', { path }, 'move');
      // Done once the torrent left "moving" with another folder: an
      // answer from before the move started shows neither.
      moving = { from: t ? t.path : '', seen: false };
      move.status.dataset.result = 'pending';
    } catch (err) {
      setText(move.status, `Failed: ${err && err.message ? err.message : err}`);
      move.status.dataset.result = 'error';
    } finally {
      move.button.disabled = false;
    }
    await refresh();
  });

  let first = true;
  let moving = null;
  return {
    update(t) {
      if (first || !dirty) fill(t);
      first = false;
      if (moving && t.state === 'moving') moving.seen = true;
      if (moving && t.state !== 'moving' && (moving.seen || t.path !== moving.from || t.error)) {
        moving = null;
        setText(move.status, t.error ? `Failed: ${t.error}` : `Moved to ${t.path}.`);
        move.status.dataset.result = t.error ? 'error' : 'ok';
      }
      if (!move.path.value && document.activeElement !== move.path) move.path.placeholder = t.path || '';
    },
  };
}
