// Small helpers of the detail pane's modules: building elements without
// inline styles (the CSP forbids them), writing text only when it changed,
// and formatting the API's figures. No state; safe to share.

// el makes an element; attrs go through properties or setAttribute, never
// an inline style string (the CSP forbids those).
export function el(tag, attrs, ...children) {
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
export function setText(node, text) {
  text = String(text);
  if (node.textContent !== text) node.textContent = text;
}

export function fmtBytes(n) {
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
export const fmtRate = (kib) => (kib > 0 ? fmtBytes(kib * 1024) + '/s' : '0');
export const fmtPct = (f) => ((f || 0) * 100).toFixed(1) + '%';

export function fmtDuration(s) {
  if (!(s > 0)) return '0s';
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${Math.floor(s % 60)}s`;
  return `${Math.floor(s)}s`;
}

export function fmtTime(t) {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toLocaleString();
}

export function fmtLimit(v, unit) {
  if (v === -1) return 'global';
  if (v === 0 || v === undefined || v === null) return 'none';
  return v + unit;
}

export function decodeBase64(s) {
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

export function countBits(bytes) {
  let n = 0;
  for (const b of bytes) n += POPCOUNT[b];
  return n;
}
