// The virtualized torrent list. Torrents live in a plain array of row
// records (and a Map by infohash); the view is the filtered, sorted array
// of those records. Only the rows in sight (plus a margin) have elements,
// recycled as the list scrolls; each element remembers what it shows, so
// an update writes only the text that changed. Changes are batched: they
// mark the list dirty and one requestAnimationFrame applies them, so a
// burst of events costs one pass per frame. Single-threaded like all page
// code: everything runs on the page's event loop.

import { bytes, rate, pct, ratio, shortDate, el } from './api.js';

const ROW_H = 26;
const OVERSCAN = 8;
// The sort keys whose values events change often: a change to one of them
// re-sorts at most this often, so a list sorted by rate does not reshuffle
// under the pointer every frame.
const RESORT_MS = 1000;
const LIVE_KEYS = new Set(['progress', 'downrate', 'uprate', 'ratio']);

const CELLS = ['t-name', 't-state', 't-progress', 't-size', 't-down', 't-up', 't-ratio', 't-label', 't-added'];

/** rowFrom makes a row record from an /alldata session or an added event. */
export function rowFrom(t) {
  const r = { infohash: t.infohash, name: '', state: '', progress: 0, size: 0, downrate: 0, uprate: 0, ratio: 0,
    label: '', added: '', nameKey: '', addedKey: 0 };
  applyTorrent(r, t);
  return r;
}

/** applyTorrent copies the fields the list shows from t into r. */
export function applyTorrent(r, t) {
  if (t.name !== undefined && t.name !== r.name) { r.name = t.name; r.nameKey = t.name.toLowerCase(); }
  if (t.state !== undefined) r.state = t.state;
  if (t.progress !== undefined) r.progress = t.progress;
  if (t.size !== undefined) r.size = t.size;
  if (t.downrate !== undefined) r.downrate = t.downrate;
  if (t.uprate !== undefined) r.uprate = t.uprate;
  if (t.ratio !== undefined) r.ratio = t.ratio;
  if (t.label !== undefined) r.label = t.label;
  if (t.added !== undefined && t.added !== null && t.added !== r.added) {
    r.added = t.added;
    r.addedKey = Date.parse(t.added) || 0;
  }
}

const compare = {
  name: (a, b) => (a.nameKey < b.nameKey ? -1 : a.nameKey > b.nameKey ? 1 : 0),
  state: (a, b) => (a.state < b.state ? -1 : a.state > b.state ? 1 : 0),
  label: (a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0),
  progress: (a, b) => a.progress - b.progress,
  size: (a, b) => a.size - b.size,
  downrate: (a, b) => a.downrate - b.downrate,
  uprate: (a, b) => a.uprate - b.uprate,
  ratio: (a, b) => (a.ratio || 0) - (b.ratio || 0),
  added: (a, b) => a.addedKey - b.addedKey,
};

export class TorrentList {
  /**
   * @param {HTMLElement} scroller #torrent-list
   * @param {HTMLElement} spacer the tall child the rows sit in
   * @param {object} hooks onSelection(), onRender(first), onOpen(row)
   */
  constructor(scroller, spacer, hooks) {
    this.scroller = scroller;
    this.spacer = spacer;
    this.hooks = hooks;
    this.rows = [];           // every torrent, in no order
    this.byHash = new Map();  // infohash -> row record
    this.view = [];           // filtered and sorted rows
    this.sortKey = 'added';
    this.sortDir = -1;        // newest first
    this.filter = { text: '', state: '', label: '' };
    this.selected = new Set(); // infohashes
    this.anchor = null;        // infohash shift-click ranges from
    this.pool = [];            // row elements, index = slot
    this.dirtyRows = new Set(); // rows whose figures changed
    this.needView = true;      // refilter and resort
    this.needResort = false;   // a live sort key changed
    this.lastSort = 0;
    this.frame = 0;
    this.rendered = false;
    scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(scroller);
    scroller.addEventListener('click', (e) => this.click(e));
    scroller.addEventListener('dblclick', (e) => {
      const row = this.rowAt(e);
      if (row) hooks.onOpen?.(row);
    });
  }

  /** load replaces every row with an /alldata answer's sessions. */
  load(sessions) {
    this.rows = sessions.map(rowFrom);
    this.byHash = new Map(this.rows.map((r) => [r.infohash, r]));
    for (const ih of [...this.selected]) if (!this.byHash.has(ih)) this.selected.delete(ih);
    this.needView = true;
    this.schedule();
    this.hooks.onSelection?.();
  }

  /** upsert adds or updates a torrent from partial fields. */
  upsert(t) {
    let r = this.byHash.get(t.infohash);
    if (!r) {
      r = rowFrom(t);
      this.rows.push(r);
      this.byHash.set(r.infohash, r);
      this.needView = true;
    } else {
      this.update(r, t);
    }
    this.schedule();
    return r;
  }

  /** update applies partial fields to a known row and marks what to redo. */
  update(r, t) {
    const before = this.sortKey === 'name' ? r.nameKey : r[this.sortKey];
    const st = r.state, lb = r.label, nm = r.name;
    applyTorrent(r, t);
    const f = this.filter;
    if ((f.state && st !== r.state) || (f.label && lb !== r.label) || (f.text && nm !== r.name)) this.needView = true;
    const after = this.sortKey === 'name' ? r.nameKey : r[this.sortKey];
    if (before !== after) {
      if (LIVE_KEYS.has(this.sortKey)) this.needResort = true;
      else this.needView = true;
    }
    this.dirtyRows.add(r);
    this.schedule();
  }

  remove(infohash) {
    const r = this.byHash.get(infohash);
    if (!r) return;
    this.byHash.delete(infohash);
    const i = this.rows.indexOf(r);
    if (i >= 0) { this.rows[i] = this.rows[this.rows.length - 1]; this.rows.pop(); }
    if (this.selected.delete(infohash)) this.hooks.onSelection?.();
    this.needView = true;
    this.schedule();
  }

  setFilter(f) {
    Object.assign(this.filter, f);
    this.needView = true;
    this.schedule();
  }

  /** sortBy sorts by key; the same key again flips the direction. */
  sortBy(key) {
    if (!compare[key]) return;
    if (this.sortKey === key) this.sortDir = -this.sortDir;
    else { this.sortKey = key; this.sortDir = key === 'name' || key === 'state' || key === 'label' ? 1 : -1; }
    this.needView = true;
    this.schedule();
  }

  labels() {
    const s = new Set();
    for (const r of this.rows) if (r.label) s.add(r.label);
    return [...s].sort();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  rebuildView() {
    const f = this.filter;
    const text = f.text.toLowerCase();
    let v = this.rows;
    if (text || f.state || f.label) {
      v = v.filter((r) => (!f.state || r.state === f.state) && (!f.label || r.label === f.label) &&
        (!text || r.nameKey.includes(text)));
    } else {
      v = v.slice();
    }
    const cmp = compare[this.sortKey], dir = this.sortDir;
    // Ties by name then infohash, so the order is stable across re-sorts.
    v.sort((a, b) => dir * cmp(a, b) || compare.name(a, b) || (a.infohash < b.infohash ? -1 : 1));
    this.view = v;
    this.needView = this.needResort = false;
    this.lastSort = performance.now();
  }

  render() {
    let all = false;
    if (this.needView || (this.needResort && performance.now() - this.lastSort >= RESORT_MS)) {
      this.rebuildView();
      all = true;
    } else if (this.needResort) {
      this.schedule(); // resort once RESORT_MS has passed
    }
    const total = this.view.length;
    const h = total * ROW_H;
    if (this.spacerH !== h) { this.spacer.style.height = h + 'px'; this.spacerH = h; }
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(total, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const n = last - first;
    while (this.pool.length < n) {
      const e = el('div', 'torrent-row');
      e.append(el('span', 'c-sel'));
      for (const c of CELLS) e.append(el('span', c));
      e._cells = Array.from(e.children).slice(1);
      e._shown = new Array(CELLS.length).fill(null);
      e._row = null;
      this.spacer.append(e);
      this.pool.push(e);
    }
    // Elements past what is in sight leave the DOM (a filter that
    // shows fewer rows), so only shown rows carry a data-infohash.
    while (this.pool.length > n) this.pool.pop().remove();
    for (let i = 0; i < n; i++) {
      const e = this.pool[i];
      const r = this.view[first + i];
      const y = (first + i) * ROW_H;
      if (e._y !== y) { e.style.transform = `translateY(${y}px)`; e._y = y; }
      if (e._row !== r || all || this.dirtyRows.has(r)) this.paint(e, r);
    }
    this.dirtyRows.clear();
    this.hooks.onRender?.(total, this.rows.length, this.rendered);
    this.rendered = true;
  }

  /** paint writes r's figures into e, touching only what differs. */
  paint(e, r) {
    if (e._row !== r) {
      e._row = r;
      e.dataset.infohash = r.infohash;
    }
    if (e._state !== r.state) { e.dataset.state = r.state; e._state = r.state; }
    const sel = this.selected.has(r.infohash);
    if (e._sel !== sel) { e.classList.toggle('selected', sel); e._sel = sel; }
    const p = pct(r.progress);
    const texts = [r.name, r.state, p, bytes(r.size), rate(r.downrate, true), rate(r.uprate, true),
      ratio(r.ratio), r.label, shortDate(r.added)];
    for (let i = 0; i < texts.length; i++) {
      if (e._shown[i] !== texts[i]) { e._cells[i].textContent = texts[i]; e._shown[i] = texts[i]; }
    }
    if (e._p !== p) { e._cells[2].style.setProperty('--p', p); e._p = p; }
    if (e._title !== r.name) { e._cells[0].title = r.name; e._title = r.name; }
  }

  /** repaintSelection refreshes the selected look of the rows in sight. */
  repaintSelection() {
    for (const e of this.pool) {
      if (!e._row) continue;
      const sel = this.selected.has(e._row.infohash);
      if (e._sel !== sel) { e.classList.toggle('selected', sel); e._sel = sel; }
    }
    this.hooks.onSelection?.();
  }

  rowAt(ev) {
    const e = ev.target.closest('.torrent-row');
    return e && e._row;
  }

  click(ev) {
    const r = this.rowAt(ev);
    if (!r) return;
    const ih = r.infohash;
    if (ev.shiftKey && this.anchor && this.byHash.has(this.anchor)) {
      const a = this.view.indexOf(this.byHash.get(this.anchor));
      const b = this.view.indexOf(r);
      if (!(ev.ctrlKey || ev.metaKey)) this.selected.clear();
      for (let i = Math.min(a, b); i <= Math.max(a, b); i++) if (i >= 0) this.selected.add(this.view[i].infohash);
    } else if (ev.ctrlKey || ev.metaKey || ev.target.classList.contains('c-sel')) {
      if (!this.selected.delete(ih)) this.selected.add(ih);
      this.anchor = ih;
    } else {
      this.selected.clear();
      this.selected.add(ih);
      this.anchor = ih;
    }
    this.repaintSelection();
  }

  /** selectAll selects every row in the view, or clears when all are. */
  selectAll(on) {
    if (on) for (const r of this.view) this.selected.add(r.infohash);
    else this.selected.clear();
    this.repaintSelection();
  }

  setSelection(hashes) {
    this.selected = new Set(hashes);
    this.repaintSelection();
  }

  /** allShownSelected: the view is not empty and all of it is selected. */
  allShownSelected() {
    return this.view.length > 0 && this.view.every((r) => this.selected.has(r.infohash));
  }

  /** reveal scrolls r into sight. */
  reveal(infohash) {
    const i = this.view.findIndex((r) => r.infohash === infohash);
    if (i < 0) return;
    const y = i * ROW_H;
    if (y < this.scroller.scrollTop || y + ROW_H > this.scroller.scrollTop + this.scroller.clientHeight) {
      this.scroller.scrollTop = y - this.scroller.clientHeight / 2;
    }
  }
}
