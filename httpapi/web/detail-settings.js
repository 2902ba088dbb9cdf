// The detail pane's settings tab: limits, ratio and seed time, label,
// sequential, and move (detail.js builds the pane).

import { el, setText } from './detail-util.js';

// settingsTab: limits, ratio and seed time (global, none or a value), label,
// sequential, and move. Fields follow the torrent until the operator edits
// one; Save sends only what differs from the torrent.
export function settingsTab(panel, call, current, refresh) {
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
