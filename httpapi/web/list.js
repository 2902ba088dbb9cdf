// The virtualized torrent list. Torrents live in a plain array of row
// records (and a Map by infohash); the view is the filtered, sorted array
// of those records. Only the rows in sight (plus a margin) have elements,
// recycled as the list scrolls; each element remembers what it shows, so
// an update writes only the text that changed. Everything happens in one
// requestAnimationFrame pass a frame, each in bounded slices so that no
// frame holds the page for long with 10,000 torrents: the events queued
// since the last frame (hooks.beforeRender, a few ms), a slice of a view
// rebuild (filtering and a merge sort that resume where they stopped), then
// the rows in sight. Changes that move rows (a sort key or filtered field)
// rebuild the view at most once a second; the user's sort and filter at
// once. Single-threaded like all page code: everything runs on the page's
// event loop.

import { bytes, rate, pct, ratio, shortDate, el, SLICE_MS } from './api.js';

const ROW_H = 26;
// Rows kept beyond each edge of the viewport: a short scroll shows rows
// already painted; a long jump repaints the screen either way.
const OVERSCAN = 4;
// A change to a sort key or a filtered field rebuilds the view at most this
// often, so a list sorted by rate does not reshuffle under the pointer
// every frame, and 10,000 rows are not re-sorted per event.
const RESORT_MS = 1000;
// How long a frame may spend applying queued events (hooks.beforeRender).
const EVENT_MS = 4;
// A first screen's rows are picked (top k) rather than sorted when the
// view has to be built from scratch: up to this many.
const QUICK_ROWS = 300;
// The merge sort's first pass sorts runs of this many rows natively.
const RUN = 256;

const CELLS = ['t-name', 't-state', 't-progress', 't-size', 't-down', 't-up', 't-ratio', 't-label', 't-added'];

/** rowFrom makes a row record from partial fields (an added event). */
export function rowFrom(t) {
  const r = { infohash: t.infohash, name: '', state: '', progress: 0, size: 0, downrate: 0, uprate: 0, ratio: 0,
    label: '', added: 0, nameKey: '', gone: false };
  applyTorrent(r, t);
  return r;
}

/**
 * rowReader answers a function making a row record from a /torrents row,
 * given the answer's fields (looked up by name: new fields may come).
 */
export function rowReader(fields) {
  const at = (name) => fields.indexOf(name);
  const ih = at('infohash'), nm = at('name'), st = at('state'), pr = at('progress'), sz = at('size'),
    dr = at('downrate'), ur = at('uprate'), rt = at('ratio'), lb = at('label'), ad = at('added');
  return (v) => ({ infohash: v[ih], name: v[nm], state: v[st], progress: v[pr], size: v[sz], downrate: v[dr],
    uprate: v[ur], ratio: v[rt], label: v[lb], added: (v[ad] || 0) * 1000, nameKey: v[nm].toLowerCase(), gone: false });
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
  if (t.added !== undefined && t.added !== null) {
    r.added = typeof t.added === 'number' ? t.added : (Date.parse(t.added) || 0);
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
  added: (a, b) => a.added - b.added,
};

/**
 * ViewJob builds a view in slices: it filters a copy of the rows, sorts
 * runs of RUN rows natively, then merges runs pairwise (a bottom-up merge
 * sort), stopping whenever its slice is spent and resuming in the next
 * frame. Rows changing meanwhile only cost a later rebuild.
 */
class ViewJob {
  constructor(rows, keep, cmp) {
    this.src = rows.slice();
    this.keep = keep;
    this.cmp = cmp;
    this.a = [];
    this.phase = 0; // 0 filter, 1 runs, 2 merges, 3 done
    this.i = 0;
    this.width = RUN;
  }

  /** step works until deadline and says whether the view is done. */
  step(deadline) {
    const cmp = this.cmp;
    if (this.phase === 0) {
      const src = this.src, keep = this.keep, a = this.a;
      while (this.i < src.length) {
        const end = Math.min(src.length, this.i + 1024);
        for (let i = this.i; i < end; i++) if (keep(src[i])) a.push(src[i]);
        this.i = end;
        if (performance.now() > deadline) return false;
      }
      this.src = null;
      this.phase = 1;
      this.i = 0;
    }
    const a = this.a, n = a.length;
    if (this.phase === 1) {
      while (this.i < n) {
        const end = Math.min(n, this.i + RUN);
        const part = a.slice(this.i, end).sort(cmp);
        for (let j = 0; j < part.length; j++) a[this.i + j] = part[j];
        this.i = end;
        if (performance.now() > deadline) return false;
      }
      this.phase = 2;
      this.i = 0;
      this.dst = new Array(n);
    }
    if (this.phase === 2) {
      while (this.width < n) {
        const w = this.width, src = this.a, dst = this.dst;
        while (this.i < n) {
          const lo = this.i, mid = Math.min(n, lo + w), hi = Math.min(n, lo + 2 * w);
          let x = lo, y = mid, k = lo;
          while (x < mid && y < hi) dst[k++] = cmp(src[y], src[x]) < 0 ? src[y++] : src[x++];
          while (x < mid) dst[k++] = src[x++];
          while (y < hi) dst[k++] = src[y++];
          this.i = hi;
          if (performance.now() > deadline && this.i < n) return false;
        }
        this.a = dst;
        this.dst = src;
        this.width *= 2;
        this.i = 0;
        if (performance.now() > deadline) return false;
      }
      this.phase = 3;
    }
    return true;
  }
}

export class TorrentList {
  /**
   * @param {HTMLElement} scroller #torrent-list
   * @param {HTMLElement} spacer the tall child the rows sit in
   * @param {object} hooks onSelection(), onRender(shown, total), onOpen(row),
   *   beforeRender(deadline): apply queued changes until deadline, answer
   *   whether some are left for the next frame
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
    this.viewWanted = false;   // rows moved: rebuild the view
    this.viewUrgent = false;   // the user asked: rebuild now
    this.job = null;           // the ViewJob under way
    this.jobAdds = 0;          // rows added since the job began
    this.viewTimer = 0;
    this.lastSort = 0;
    this.frame = 0;
    this.rendered = false;
    this.allDirty = false;
    // The viewport's height, kept from the resize observer so a frame
    // never asks for it (a layout read after the frame's writes).
    this.viewH = 0;
    scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver((es) => {
      this.viewH = es[es.length - 1].contentRect.height;
      this.schedule();
    }).observe(scroller);
    scroller.addEventListener('click', (e) => this.click(e));
    scroller.addEventListener('dblclick', (e) => {
      const row = this.rowAt(e);
      if (row) hooks.onOpen?.(row);
    });
  }

  /**
   * load replaces every row with records (rowReader's). The first screen
   * shows at the next frame: the old view's order where there was one (a
   * reload), else the first rows picked from the unsorted ones; the full
   * view follows in slices.
   */
  load(records) {
    const old = this.view;
    for (const r of this.rows) r.gone = true;
    this.rows = records;
    this.byHash = new Map();
    for (const r of records) this.byHash.set(r.infohash, r);
    for (const ih of [...this.selected]) if (!this.byHash.has(ih)) this.selected.delete(ih);
    this.job = null;
    if (old.length) {
      const keep = this.matcher();
      const seen = new Set();
      const v = [];
      for (const o of old) {
        const r = this.byHash.get(o.infohash);
        if (r && keep(r)) { v.push(r); seen.add(r); }
      }
      for (const r of records) if (!seen.has(r) && keep(r)) v.push(r);
      this.view = v;
    } else {
      this.view = this.quickView();
    }
    this.allDirty = true;
    this.requestView(true);
    this.hooks.onSelection?.();
  }

  /**
   * quickView is the view with only its first rows in order: the filter in
   * one pass, and the QUICK_ROWS first by the sort picked by insertion; the
   * rest follow unordered until the ViewJob is done.
   */
  quickView() {
    const keep = this.matcher(), cmp = this.comparator();
    const k = Math.min(QUICK_ROWS, Math.ceil((this.scroller.scrollTop + (this.scroller.clientHeight || 600)) / ROW_H) + OVERSCAN);
    const top = [], rest = [];
    for (const r of this.rows) {
      if (!keep(r)) continue;
      if (top.length < k) { top.splice(this.place(top, r, cmp), 0, r); continue; }
      if (cmp(r, top[k - 1]) >= 0) { rest.push(r); continue; }
      top.splice(this.place(top, r, cmp), 0, r);
      rest.push(top.pop());
    }
    return top.concat(rest);
  }

  /** place is where r goes in the sorted array a (binary search). */
  place(a, r, cmp) {
    let lo = 0, hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmp(a[mid], r) <= 0) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /** comparator orders rows by the sort, ties by name then infohash. */
  comparator() {
    const cmp = compare[this.sortKey], dir = this.sortDir, byName = compare.name;
    return (a, b) => dir * cmp(a, b) || byName(a, b) || (a.infohash < b.infohash ? -1 : a.infohash > b.infohash ? 1 : 0);
  }

  /** matcher answers whether a row passes the filter. */
  matcher() {
    const f = this.filter;
    const text = f.text.toLowerCase(), state = f.state, label = f.label;
    if (!text && !state && !label) return (r) => !r.gone;
    return (r) => !r.gone && (!state || r.state === state) && (!label || r.label === label) &&
      (!text || r.nameKey.includes(text));
  }

  /** upsert adds or updates a torrent from partial fields. */
  upsert(t) {
    let r = this.byHash.get(t.infohash);
    if (!r) {
      r = rowFrom(t);
      this.rows.push(r);
      this.byHash.set(r.infohash, r);
      this.jobAdds++;
      // In its place at once: a binary search, not a rebuild. The view
      // may be out of order (changes since the last rebuild): the place
      // is then approximate until the next one.
      if (this.matcher()(r)) {
        const cmp = this.comparator();
        this.view.splice(this.place(this.view, r, cmp), 0, r);
        this.allDirty = true;
      }
    } else {
      this.update(r, t);
    }
    this.schedule();
    return r;
  }

  /** update applies partial fields to a known row and marks what to redo. */
  update(r, t) {
    const key = this.sortKey === 'name' ? 'nameKey' : this.sortKey;
    const before = r[key], st = r.state, lb = r.label, nm = r.name;
    applyTorrent(r, t);
    const f = this.filter;
    if (before !== r[key] || (f.state && st !== r.state) || (f.label && lb !== r.label) || (f.text && nm !== r.name)) {
      this.requestView(false);
    }
    this.dirtyRows.add(r);
    this.schedule();
  }

  remove(infohash) {
    const r = this.byHash.get(infohash);
    if (!r) return;
    r.gone = true;
    this.byHash.delete(infohash);
    const i = this.rows.indexOf(r);
    if (i >= 0) { this.rows[i] = this.rows[this.rows.length - 1]; this.rows.pop(); }
    const j = this.view.indexOf(r);
    if (j >= 0) { this.view.splice(j, 1); this.allDirty = true; }
    if (this.selected.delete(infohash)) this.hooks.onSelection?.();
    this.schedule();
  }

  setFilter(f) {
    Object.assign(this.filter, f);
    this.requestView(true);
  }

  /** sortBy sorts by key; the same key again flips the direction. */
  sortBy(key) {
    if (!compare[key]) return;
    if (this.sortKey === key) this.sortDir = -this.sortDir;
    else { this.sortKey = key; this.sortDir = key === 'name' || key === 'state' || key === 'label' ? 1 : -1; }
    this.requestView(true);
  }

  labels() {
    const s = new Set();
    for (const r of this.rows) if (r.label) s.add(r.label);
    return [...s].sort();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  /** requestView asks for a rebuild: now when urgent, else within RESORT_MS. */
  requestView(urgent) {
    this.viewWanted = true;
    if (urgent) {
      this.viewUrgent = true;
      this.job = null; // its sort or filter is out of date
    }
    this.schedule();
  }

  render() {
    const start = performance.now();
    // Layout is read once, first, before this frame writes anything.
    const top = this.scroller.scrollTop;
    const height = this.viewH || this.scroller.clientHeight || 600;
    let again = false;
    if (this.hooks.beforeRender?.(start + EVENT_MS)) again = true;
    if (this.viewWanted && !this.job) {
      const due = this.lastSort + RESORT_MS;
      if (this.viewUrgent || start >= due) {
        this.job = new ViewJob(this.rows, this.matcher(), this.comparator());
        this.jobAdds = 0;
        this.viewWanted = this.viewUrgent = false;
      } else if (!this.viewTimer) {
        this.viewTimer = setTimeout(() => { this.viewTimer = 0; this.schedule(); }, due - start);
      }
    }
    if (this.job) {
      if (this.job.step(performance.now() + SLICE_MS)) {
        let v = this.job.a;
        if (v.some((r) => r.gone)) v = v.filter((r) => !r.gone);
        this.view = v;
        if (this.jobAdds) this.requestView(true); // rows it did not see
        this.job = null;
        this.lastSort = performance.now();
        this.allDirty = true;
      } else {
        again = true;
      }
    }
    const all = this.allDirty;
    this.allDirty = false;
    const total = this.view.length;
    const h = total * ROW_H;
    if (this.spacerH !== h) { this.spacer.style.height = h + 'px'; this.spacerH = h; }
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(total, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const n = Math.max(0, last - first);
    while (this.pool.length < n) {
      const e = el('div', 'torrent-row');
      e.append(el('span', 'c-sel'));
      for (const c of CELLS) e.append(el('span', c));
      e._cells = Array.from(e.children).slice(1);
      // Each cell keeps one text node whose data changes: no node made
      // and dropped (and restyled) per changed figure.
      e._texts = e._cells.map((c) => c.appendChild(document.createTextNode('')));
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
    if (again) this.schedule();
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
      if (e._shown[i] !== texts[i]) { e._texts[i].data = texts[i]; e._shown[i] = texts[i]; }
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
