// The global panel: rates plotted over the last 5 minutes from /stats
// (sampled every 2 s), totals and free space, the settings form
// (GET/POST /settings) and the daemon's recent log lines (/logs). Timers
// start with start() and end with stop(), at sign-out.

import { api, bytes, rate, el } from './api.js';

const SAMPLE_MS = 2000;
const SAMPLES = 150; // 5 minutes
const MAX_LOG_LINES = 500;
const LOG_LINES_A_FRAME = 50;

export class GlobalPanel {
  constructor(toast) {
    this.toast = toast;
    this.down = [];
    this.up = [];
    this.timers = [];
    this.logAfter = 0;
    this.logQueue = []; // lines fetched, not yet shown
    this.logFrame = 0;
    this.logsMissing = false;
    this.canvas = document.getElementById('rate-chart');
    this.form = document.getElementById('settings-form');
    this.logBox = document.getElementById('log-lines');
    // The chart's size, kept from the resize observer: draw runs in an
    // animation frame that may follow the list's writes, where reading
    // clientWidth would force a layout.
    this.chartW = 0;
    this.chartH = 0;
    new ResizeObserver((es) => {
      const r = es[es.length - 1].contentRect;
      this.chartW = r.width;
      this.chartH = r.height;
    }).observe(this.canvas);
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.saveSettings(); });
    this.form.addEventListener('input', () => { this.formDirty = true; });
  }

  start() {
    this.stop();
    this.sampleStats();
    this.loadSettings();
    this.pollLogs();
    this.timers.push(setInterval(() => this.sampleStats(), SAMPLE_MS));
    this.timers.push(setInterval(() => this.pollLogs(), SAMPLE_MS));
  }

  stop() {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  async sampleStats() {
    let s;
    try { s = await api('/stats'); } catch { return; }
    this.down.push(s.downrate || 0);
    this.up.push(s.uprate || 0);
    if (this.down.length > SAMPLES) { this.down.shift(); this.up.shift(); }
    set('stat-down', rate(s.downrate));
    set('stat-up', rate(s.uprate));
    set('stat-downloaded', bytes(s.downloaded));
    set('stat-uploaded', bytes(s.uploaded));
    set('stat-free', bytes(s.free_space));
    set('stat-peers', String(s.peers));
    set('stat-version', s.version || '–');
    requestAnimationFrame(() => this.draw());
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = this.chartW || 300, h = this.chartH || 110;
    if (c.width !== Math.round(w * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const max = Math.max(16, ...this.down, ...this.up) * 1.15;
    // Grid: three lines, the top one labelled.
    g.strokeStyle = '#eef0f3';
    g.lineWidth = 1;
    g.font = '10px system-ui, sans-serif';
    g.fillStyle = '#687084';
    for (let i = 1; i <= 3; i++) {
      const y = Math.round(h - (h * i) / 3) + 0.5;
      g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke();
    }
    g.fillText(rate(Math.round(max)), 3, 10);
    g.fillText('5 min', w - 30, h - 3);
    const step = w / (SAMPLES - 1);
    const plot = (data, color, fill) => {
      if (data.length < 2) return;
      const x0 = w - (data.length - 1) * step;
      g.beginPath();
      data.forEach((v, i) => {
        const x = x0 + i * step, y = h - (v / max) * h;
        if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.strokeStyle = color;
      g.lineWidth = 1.5;
      g.stroke();
      g.lineTo(w, h); g.lineTo(x0, h); g.closePath();
      g.fillStyle = fill;
      g.fill();
    };
    plot(this.down, '#2463d6', 'rgba(36,99,214,.12)');
    plot(this.up, '#1d8a4c', 'rgba(29,138,76,.12)');
  }

  async loadSettings(force) {
    if (this.formDirty && !force) return;
    let s;
    try { s = await api('/settings'); } catch { return; }
    for (const [k, v] of Object.entries(s)) {
      const input = this.form.elements.namedItem(k);
      if (input && document.activeElement !== input) input.value = v;
    }
    this.formDirty = false;
  }

  async saveSettings() {
    const body = {};
    for (const input of this.form.elements) {
      if (!input.name) continue;
      if (input.type === 'number') {
        if (input.value === '') continue;
        body[input.name] = Number(input.value);
      } else {
        body[input.name] = input.value;
      }
    }
    const status = document.getElementById('settings-status');
    try {
      await api('/settings', { json: body });
      this.formDirty = false;
      status.textContent = 'Saved';
      await this.loadSettings(true);
      setTimeout(() => { status.textContent = ''; }, 2500);
    } catch (e) {
      status.textContent = '';
      this.toast('Settings: ' + e.message, true);
    }
  }

  async pollLogs() {
    if (this.logsMissing || this.logBusy) return;
    this.logBusy = true;
    try {
      const r = await api('/logs?after=' + this.logAfter);
      if (typeof r.last === 'number') this.logAfter = r.last;
      const lines = r.lines || [];
      // Shown a slice a frame: a busy daemon gives 500 lines a poll.
      for (const l of lines.slice(-MAX_LOG_LINES)) this.logQueue.push(l);
      if (this.logQueue.length > MAX_LOG_LINES) this.logQueue.splice(0, this.logQueue.length - MAX_LOG_LINES);
      if (this.logQueue.length && !this.logFrame) this.logFrame = whenIdle(() => this.showLogs());
    } catch (e) {
      if (e.status === 404) this.logsMissing = true; // a daemon without /logs
    } finally {
      this.logBusy = false;
    }
  }

  showLogs() {
    this.logFrame = 0;
    const box = this.logBox;
    // Newest first in the DOM: the box is a column-reverse flex box, whose
    // scroll origin is its bottom, so it follows new lines (or keeps the
    // reader's place) without reading or setting a scroll position, each
    // a forced layout, and whatever height the lines out of sight are
    // guessed at (content-visibility).
    const frag = document.createDocumentFragment();
    const batch = this.logQueue.splice(0, LOG_LINES_A_FRAME);
    for (let i = batch.length - 1; i >= 0; i--) frag.append(logLine(batch[i]));
    box.prepend(frag);
    let extra = box.childElementCount - MAX_LOG_LINES;
    while (extra-- > 0) box.lastElementChild.remove();
    if (this.logQueue.length) this.logFrame = whenIdle(() => this.showLogs());
  }
}

// whenIdle runs fn when the page is idle (within a second): log lines are
// added outside the list's animation frames, so their style and layout
// (#log-lines is contained) never lengthen a frame of list updates.
function whenIdle(fn) {
  if (globalThis.requestIdleCallback) return requestIdleCallback(fn, { timeout: 1000 });
  return setTimeout(fn, 50);
}

// toLocaleTimeString builds a formatter per call: slow for 500 lines.
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function logLine(l) {
  const d = el('div', 'log-line ' + (l.level || ''));
  const t = l.time ? new Date(l.time) : null;
  d.append(el('span', 'time', t && !Number.isNaN(t.getTime()) ? timeFormat.format(t) : ''));
  d.append(el('span', 'lvl', l.level || ''));
  let text = l.msg || '';
  if (l.attrs) {
    for (const [k, v] of Object.entries(l.attrs)) text += ' ' + k + '=' + (typeof v === 'string' ? v : JSON.stringify(v));
  }
  d.append(document.createTextNode(text));
  return d;
}

function set(id, text) {
  const e = document.getElementById(id);
  if (e.textContent !== text) e.textContent = text;
}
