// The detail pane's files tab: the torrent's files as a folder tree with
// priorities (detail.js builds the pane).

import { el, setText, fmtBytes } from './detail-util.js';

const PRIORITIES = [[0, 'Skip'], [1, 'Normal'], [2, 'High']];

export function prioritySelect(cls, withMixed) {
  const s = el('select', { class: cls });
  if (withMixed) s.append(el('option', { value: '' }, 'Mixed'));
  for (const [v, label] of PRIORITIES) s.append(el('option', { value: String(v) }, label));
  return s;
}

// filesTab: the files as a folder tree. Each file row is keyed by its index
// in the torrent's files; folders hold a "set all" select and collapse.
export function filesTab(panel, call) {
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
