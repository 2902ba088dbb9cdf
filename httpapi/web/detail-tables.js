// The detail pane's peers, trackers and web seeds tables, kept row by row,
// and its piece map (detail.js builds the pane).

import { el, setText, fmtBytes, fmtRate, fmtPct, fmtTime, decodeBase64, countBits } from './detail-util.js';

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

export function peersTab(panel) {
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

export function trackersTab(panel) {
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
export function piecesTab(panel) {
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
