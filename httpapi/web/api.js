// Same-origin calls to the daemon's API with the session cookie, and the
// number formats the page shows. No state of its own beside the
// unauthorized hook app.js installs.

let onUnauthorized = () => {};

/** setUnauthorized installs what happens when a call answers 401. */
export function setUnauthorized(fn) { onUnauthorized = fn; }

/** APIError carries the HTTP status beside the API's error message. */
export class APIError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/**
 * api fetches path and answers its JSON; a non-2xx answer throws an
 * APIError with the API's {"error"} message. options are fetch's, with
 * json (an object sent as a JSON body) beside them.
 */
export async function api(path, options = {}) {
  const init = { credentials: 'same-origin', ...options };
  if (options.json !== undefined) {
    init.method = init.method || 'POST';
    init.headers = { 'Content-Type': 'application/json', ...(options.headers || {}) };
    init.body = JSON.stringify(options.json);
    delete init.json;
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new APIError(0, 'the daemon does not answer (' + e.message + ')');
  }
  const text = await resp.text();
  let body = null;
  if (text) {
    try { body = JSON.parse(text); } catch { body = null; }
  }
  if (!resp.ok) throw failure(resp, body, options);
  return body;
}

function failure(resp, body, options) {
  const msg = (body && body.error) || resp.statusText || ('HTTP ' + resp.status);
  if (resp.status === 401 && !options.noAuthHook) onUnauthorized();
  return new APIError(resp.status, msg, resp.headers.get('Retry-After'));
}

/** SLICE_MS is how long page work may run before it lets the page paint. */
export const SLICE_MS = 5;

/**
 * yieldToPage resolves in a new task, after the browser had the chance to
 * paint and handle input: scheduler.yield where there is one, else a
 * message to ourselves (setTimeout would be clamped to 4 ms).
 */
export function yieldToPage() {
  if (globalThis.scheduler?.yield) return globalThis.scheduler.yield();
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = resolve;
    ch.port2.postMessage(0);
  });
}

/**
 * apiRows reads a /torrents answer as it arrives: it calls onHead with the
 * answer's fields, then onRow with each row, parsing one line at a time
 * (the server writes a row a line) and yielding to the page every
 * SLICE_MS, so that a 10,000-row answer never blocks the page for long.
 */
export async function apiRows(path, onHead, onRow) {
  let resp;
  try {
    resp = await fetch(path, { credentials: 'same-origin' });
  } catch (e) {
    throw new APIError(0, 'the daemon does not answer (' + e.message + ')');
  }
  if (!resp.ok) {
    let body = null;
    try { body = JSON.parse(await resp.text()); } catch { body = null; }
    throw failure(resp, body, {});
  }
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let carry = '';
  let head = true;
  let sliceStart = performance.now();
  const line = (l) => {
    if (head) {
      head = false;
      // '{"time":...,"fields":[...],"rows":[' closed to parse it alone.
      onHead(JSON.parse(l + ']}'));
      return;
    }
    if (l.charCodeAt(0) !== 91) return; // '[': a row; the closing ']}' is not
    onRow(JSON.parse(l.charCodeAt(l.length - 1) === 44 ? l.slice(0, -1) : l));
  };
  for (;;) {
    const { done, value } = await reader.read();
    const text = carry + (done ? dec.decode() : dec.decode(value, { stream: true }));
    const lines = text.split('\n');
    carry = done ? '' : lines.pop();
    for (let i = 0; i < lines.length; i++) {
      if (lines[i]) line(lines[i]);
      if ((i & 63) === 63 && performance.now() - sliceStart > SLICE_MS) {
        await yieldToPage();
        sliceStart = performance.now();
      }
    }
    if (done) break;
    if (performance.now() - sliceStart > SLICE_MS) {
      await yieldToPage();
      sliceStart = performance.now();
    }
  }
  if (head) throw new APIError(0, 'empty answer from ' + path);
}

/** q builds a query string from an object, leaving out undefined values. */
export function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null) u.set(k, String(v));
  }
  return u.toString();
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** bytes formats a byte count: "1.4 GiB". */
export function bytes(n) {
  if (!Number.isFinite(n) || n < 0) return '–';
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)) + ' ' + units[i];
}

/** rate formats KiB/s as the API gives it; 0 shows blank in the list. */
export function rate(kib, blankZero) {
  if (!kib) return blankZero ? '' : '0 B/s';
  return bytes(kib * 1024) + '/s';
}

/** pct formats a 0..1 share as "42.0%". */
export function pct(p) {
  if (!Number.isFinite(p)) p = 0;
  return (Math.floor(Math.min(1, Math.max(0, p)) * 1000) / 10).toFixed(1) + '%';
}

/** ratio formats a share ratio with two decimals; Infinity as ∞. */
export function ratio(r) {
  if (!Number.isFinite(r)) return r > 0 ? '∞' : '–';
  return r.toFixed(2);
}

/** shortDate formats an RFC 3339 time (or ms since 1970) as "2026-12-02 03:00". */
export function shortDate(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** el creates an element with a class and text. */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
