// Test-only stand-in for app.js around detail.js: the ctx it passes (api,
// subscribe, toast) and the update calls it makes on events of the
// torrent, at most once a second. The Go test's server adds the bearer
// token, so fetches here are plain same-origin requests.
import { openDetail } from '/ui/detail.js';

async function api(path, options) {
  const r = await fetch(path, { credentials: 'same-origin', ...options });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}

const listeners = new Set();
const source = new EventSource('/events');
for (const type of ['added', 'removed', 'state', 'progress', 'completed', 'error', 'limit', 'settings', 'reset']) {
  source.addEventListener(type, (ev) => {
    let data = null;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return;
    }
    for (const fn of listeners) fn({ type, data });
  });
}

function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function toast(msg) {
  const li = document.createElement('li');
  li.className = 'toast';
  li.textContent = msg;
  document.getElementById('toasts').append(li);
}

const infohash = location.hash.slice(1);
const pane = openDetail(document.getElementById('detail'), infohash, { api, subscribe, toast });
let due = 0;
let timer = null;
subscribe((ev) => {
  if (!ev.data || ev.data.infohash !== infohash || timer) return;
  timer = setTimeout(async () => {
    timer = null;
    due = Date.now() + 1000;
    try {
      pane.update(await api(`/torrentdata?infohash=${infohash}`));
    } catch (err) {
      toast(String(err));
    }
  }, Math.max(0, due - Date.now()));
});
window.gtsDetail = pane;
document.body.dataset.ready = '1';
