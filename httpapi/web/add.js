// The add dialog: .torrent files (chosen or dropped on the dialog or the
// list) and magnet links, with folder, label, start and limits.

import { api, q } from './api.js';

export function setupAdd(toast) {
  const dialog = document.getElementById('add-dialog');
  const fileInput = document.getElementById('add-file');
  const drop = document.getElementById('add-drop');
  const list = document.getElementById('torrent-list');
  const status = document.getElementById('add-status');
  const chosen = document.getElementById('add-files-chosen');
  const val = (id) => document.getElementById(id).value.trim();

  const options = () => ({
    path: val('add-path'),
    label: val('add-label'),
    start: document.getElementById('add-start').checked,
    maxdown: Number(val('add-maxdown')) || 0,
    maxup: Number(val('add-maxup')) || 0,
  });

  const say = (text, error) => {
    status.textContent = text;
    status.classList.toggle('error', !!error);
  };

  async function addFiles(files) {
    const o = options();
    const lines = [];
    let failed = 0;
    for (const f of files) {
      try {
        const body = await f.arrayBuffer();
        const r = await api('/addtorrentfile?' + q({ path: o.path, start: o.start, label: o.label, maxdown: o.maxdown, maxup: o.maxup }), {
          method: 'POST', body, headers: { 'Content-Type': 'application/x-bittorrent' },
        });
        lines.push(`Added ${f.name} (${r.infohash.slice(0, 8)}…)`);
      } catch (e) {
        failed++;
        lines.push(`${f.name}: ${e.message}`);
      }
    }
    return { lines, failed };
  }

  async function addMagnet(url) {
    const o = options();
    try {
      const r = await api('/addmagnet', { json: { url, targetdir: o.path, start: o.start, label: o.label, maxdown: o.maxdown, maxup: o.maxup } });
      return { lines: [`Added magnet (${r.infohash.slice(0, 8)}…)`], failed: 0 };
    } catch (e) {
      return { lines: ['Magnet: ' + e.message], failed: 1 };
    }
  }

  async function submit() {
    const files = [...fileInput.files];
    const magnet = val('add-magnet');
    if (!files.length && !magnet) {
      say('Choose .torrent files or paste a magnet link.', true);
      return;
    }
    say('Adding…');
    const out = { lines: [], failed: 0 };
    for (const r of [files.length ? await addFiles(files) : null, magnet ? await addMagnet(magnet) : null]) {
      if (r) { out.lines.push(...r.lines); out.failed += r.failed; }
    }
    say(out.lines.join('\n'), out.failed > 0);
    if (!out.failed) {
      fileInput.value = '';
      chosen.textContent = '';
      document.getElementById('add-magnet').value = '';
    }
  }

  async function dropped(files, fromList) {
    const torrents = [...files].filter((f) => f.name.toLowerCase().endsWith('.torrent'));
    if (!torrents.length) {
      toast('Drop .torrent files to add them', true);
      return;
    }
    const r = await addFiles(torrents);
    if (fromList) toast(r.lines.join('; '), r.failed > 0);
    else say(r.lines.join('\n'), r.failed > 0);
  }

  document.getElementById('add-open').addEventListener('click', () => {
    say('');
    dialog.showModal();
  });
  document.getElementById('add-submit').addEventListener('click', submit);
  fileInput.addEventListener('change', () => {
    chosen.textContent = [...fileInput.files].map((f) => f.name).join(', ');
  });
  for (const [zone, fromList] of [[drop, false], [list, true]]) {
    let depth = 0;
    const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
    zone.addEventListener('dragenter', (e) => { if (hasFiles(e)) { depth++; zone.classList.add('dragging'); e.preventDefault(); } });
    zone.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
    zone.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; zone.classList.remove('dragging'); } });
    zone.addEventListener('drop', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      zone.classList.remove('dragging');
      dropped(e.dataTransfer.files, fromList);
    });
  }
}
