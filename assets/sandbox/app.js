// The sandbox page: plain DOM, no framework. The server pushes trace lines
// and "something changed" notes over Server-Sent Events; the page then
// fetches only what it shows (expanded directories, the selected node, the
// open tab).

const token = new URLSearchParams(location.search).get('token') ?? '';
const $ = (id) => document.getElementById(id);
const FRESH_MS = 4000;
const EVENTS_KEPT = 3000;
const EVENTS_SHOWN = 600;

function url(path, params = {}) {
  const u = new URL(path, location.href);
  u.search = new URLSearchParams({ ...params, token }).toString();
  return u;
}

async function getJson(path, params) {
  const r = await fetch(url(path, params));
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).message ?? r.statusText);
  return r.json();
}

async function post(path, body, type = 'application/json') {
  const r = await fetch(url(path), { method: 'POST', headers: { 'content-type': type }, body: type === 'application/json' ? JSON.stringify(body) : body });
  const answer = await r.json().catch(() => ({}));
  if (!r.ok && r.status !== 202) throw new Error(answer.message ?? r.statusText);
  return answer;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c);
  return e;
}

// --- the tree ---------------------------------------------------------------

const tree = {
  expanded: new Set(['/']),
  /** path -> { children: [...], total } for expanded directories */
  dirs: new Map(),
  /** path -> gen last seen, to mark what changed */
  gens: new Map(),
  /** path -> time it was seen changing */
  fresh: new Map(),
};

async function loadDir(path, count) {
  const children = [];
  let total = 0;
  do {
    const page = await getJson('/api/dir', { path, offset: children.length });
    if (!page) return null;
    total = page.total;
    children.push(...page.children);
    if (page.children.length === 0) break;
  } while (children.length < count && children.length < total);
  return { children, total };
}

/** Marks a node that changed since last seen, or that is new in a directory already shown. */
function noteGen(node, dirShown) {
  const seen = tree.gens.get(node.path);
  if (seen === undefined ? dirShown : seen !== node.gen) tree.fresh.set(node.path, Date.now());
  tree.gens.set(node.path, node.gen);
}

let refreshing = null;
let refreshAgain = false;

async function refreshTree() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      for (const path of [...tree.expanded]) {
        const shown = tree.dirs.get(path)?.children.length ?? 0;
        try {
          const dir = await loadDir(path, Math.max(shown, 1));
          if (!dir) throw new Error('gone');
          const shownBefore = tree.dirs.has(path);
          for (const child of dir.children) noteGen(child, shownBefore);
          tree.dirs.set(path, dir);
        } catch {
          tree.expanded.delete(path);
          tree.dirs.delete(path);
        }
      }
      renderTree();
    } while (refreshAgain);
    refreshing = null;
  })();
  return refreshing;
}

function shortValue(node) {
  if (node.hex !== undefined) return `hex ${node.hex.slice(0, 24)}${node.hex.length > 24 ? '…' : ''}`;
  return node.text.length > 60 ? `${node.text.slice(0, 60)}…` : node.text;
}

function nodeRow(node, depth) {
  const open = tree.expanded.has(node.path);
  const fresh = Date.now() - (tree.fresh.get(node.path) ?? 0) < FRESH_MS;
  const toggle = el('span', { class: 'toggle' }, node.children > 0 ? (open ? '▾' : '▸') : '·');
  const row = el('div', {
    class: `row${fresh ? ' fresh' : ''}${state.selected === node.path ? ' selected' : ''}`,
    role: 'treeitem', 'data-path': node.path, style: `padding-left:${depth * 14 + 4}px`,
  },
  toggle,
  el('span', { class: 'name' }, node.name),
  node.children > 0 ? el('span', { class: 'count' }, String(node.children)) : null,
  el('span', { class: 'value' }, shortValue(node)),
  el('span', { class: 'perms' }, node.perms.join(' ')));
  toggle.addEventListener('click', (e) => {
    e.stopPropagation();
    if (node.children === 0) return;
    if (open) tree.expanded.delete(node.path);
    else tree.expanded.add(node.path);
    refreshTree();
  });
  row.addEventListener('click', () => select(node.path));
  return row;
}

function renderDir(path, depth, out) {
  const dir = tree.dirs.get(path);
  if (!dir) return;
  for (const child of dir.children) {
    out.push(nodeRow(child, depth));
    if (tree.expanded.has(child.path)) renderDir(child.path, depth + 1, out);
  }
  if (dir.children.length < dir.total) {
    out.push(el('div', { class: 'row more', style: `padding-left:${depth * 14 + 4}px` },
      el('button', { onclick: () => loadMore(path) }, `load more (${dir.children.length} of ${dir.total})`)));
  }
}

async function loadMore(path) {
  const dir = tree.dirs.get(path);
  const page = await getJson('/api/dir', { path, offset: dir.children.length });
  if (!page) return;
  for (const child of page.children) noteGen(child, false);
  dir.children.push(...page.children);
  renderTree();
}

function renderTree() {
  if (state.filter) return;
  const rows = [];
  const root = tree.dirs.get('/');
  rows.push(el('div', { class: `row${state.selected === '/' ? ' selected' : ''}`, 'data-path': '/', onclick: () => select('/') },
    el('span', { class: 'toggle' }, '▾'), el('span', { class: 'name' }, '/'),
    root ? el('span', { class: 'count' }, String(root.total)) : null));
  renderDir('/', 1, rows);
  $('tree').replaceChildren(...rows);
  $('tree-count').textContent = root ? `${root.total} at top level` : '';
}

// Fade the "recently changed" marks without waiting for the next change.
setInterval(() => {
  const now = Date.now();
  for (const [path, at] of tree.fresh) if (now - at >= FRESH_MS) tree.fresh.delete(path);
  for (const row of document.querySelectorAll('.row.fresh')) {
    if (!tree.fresh.has(row.dataset.path)) row.classList.remove('fresh');
  }
}, 500);

let filterTimer;
$('filter').addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(runFilter, 150);
});

async function runFilter() {
  state.filter = $('filter').value.trim();
  if (!state.filter) {
    renderTree();
    return;
  }
  const { paths, complete } = await getJson('/api/search', { q: state.filter });
  const rows = paths.map((p) => el('div', { class: `row${state.selected === p ? ' selected' : ''}`, 'data-path': p, onclick: () => select(p) }, el('span', { class: 'name path' }, p)));
  if (!complete) rows.push(el('div', { class: 'row muted' }, `first ${paths.length} matches shown`));
  if (paths.length === 0) rows.push(el('div', { class: 'row muted' }, 'no path matches'));
  $('tree').replaceChildren(...rows);
}

// --- the selected node and the actions ----------------------------------------

const state = {
  selected: '/',
  filter: '',
  as: 0,
  /** domid -> open transaction id made from this page */
  tx: new Map(),
  domains: [],
};

async function select(path) {
  state.selected = path;
  $('node-path').value = path;
  await showNode(true);
  if (state.filter) runFilter();
  else renderTree();
}

async function showNode(fillEditor) {
  const facts = $('node-facts');
  const node = await getJson('/api/node', { path: state.selected }).catch(() => null);
  if (!node) {
    facts.replaceChildren(el('dt', {}, 'state'), el('dd', {}, 'no such node'));
    $('node-hex').textContent = '';
    return;
  }
  if (fillEditor) {
    $('node-value').value = node.text;
    $('node-perms').value = node.perms.join(' ');
  }
  $('node-hex').textContent = node.hex === undefined ? '' : `hex: ${node.hex.replace(/(..)/g, '$1 ').trim()}`;
  const owner = node.perms[0] ?? '';
  facts.replaceChildren(
    el('dt', {}, 'owner'), el('dd', {}, `domain ${owner.slice(1)} (others: ${owner[0]})`),
    el('dt', {}, 'permissions'), el('dd', {}, node.perms.join(' ')),
    el('dt', {}, 'size'), el('dd', {}, `${node.size} bytes`),
    el('dt', {}, 'children'), el('dd', {}, String(node.children)),
    el('dt', {}, 'generation'), el('dd', {}, String(node.gen)));
}

function showResult(text, good) {
  const r = $('result');
  r.textContent = text;
  r.className = `result ${good ? 'good' : 'bad'}`;
}

function renderTxState() {
  const id = state.tx.get(state.as);
  $('tx-state').textContent = id === undefined ? 'none' : `#${id} (domain ${state.as})`;
}

async function act(op) {
  const path = $('node-path').value.trim();
  const action = { as: state.as, op, path, tx: state.tx.get(state.as) };
  if (op === 'write') action.value = $('node-value').value;
  if (op === 'set-perms') action.perms = $('node-perms').value.trim().split(/\s+/).filter(Boolean);
  if (op === 'tx-start') delete action.tx;
  if ((op === 'tx-commit' || op === 'tx-abort') && action.tx === undefined) {
    showResult('no transaction open for this domain', false);
    return;
  }
  const who = state.as === 0 ? 'dom0' : `domain ${state.as}`;
  try {
    const out = await post('/api/node', action);
    if (op === 'tx-start' && out.ok) state.tx.set(state.as, out.value);
    if (op === 'tx-commit' || op === 'tx-abort') state.tx.delete(state.as);
    renderTxState();
    if (out.ok) {
      showResult(`${who} ${op} ${op.startsWith('tx') ? '' : path}: OK${out.value !== undefined ? ` → ${out.value}` : ''}`, true);
      if (op === 'read') $('node-value').value = out.value;
    } else {
      showResult(`${who} ${op} ${path}: ${out.error}`, false);
    }
  } catch (e) {
    showResult(`${op}: ${e.message}`, false);
  }
  // Relative paths are a guest's: below its home, as the daemon resolves them.
  const absolute = /^[/@]/.test(path) ? path : `/local/domain/${state.as}/${path}`;
  if (absolute !== state.selected && op !== 'rm' && !op.startsWith('tx')) state.selected = absolute;
  showNode(op === 'read' ? false : op !== 'write');
}

for (const b of document.querySelectorAll('#node-panel [data-op]')) b.addEventListener('click', () => act(b.dataset.op));

$('act-as').addEventListener('change', () => {
  state.as = Number($('act-as').value);
  renderTxState();
  showResult(state.as === 0 ? 'acting as dom0 (the main socket)' : `acting as domain ${state.as}, through its own connection`, true);
});

// --- side tabs ------------------------------------------------------------------

let tab = 'events';
for (const b of document.querySelectorAll('.tabs button')) {
  b.addEventListener('click', () => {
    tab = b.dataset.tab;
    for (const o of document.querySelectorAll('.tabs button')) o.classList.toggle('active', o === b);
    for (const t of document.querySelectorAll('.tab')) t.hidden = t.id !== `tab-${tab}`;
    refreshSide();
    if (tab === 'stream') listRundirFiles();
  });
}

function quotaBar(q) {
  const share = q.limit > 0 ? Math.min(1, q.used / q.limit) : 0;
  return el('div', { class: 'quota' }, el('span', {}, `${q.name} ${q.used}/${q.limit}`),
    el('span', { class: 'bar' }, el('span', { style: `width:${(share * 100).toFixed(1)}%` })));
}

function renderConnections(list) {
  $('connections').replaceChildren(...list.map((c) => el('div', { class: 'card' },
    el('h4', {}, `conn${c.id} `, el('span', { class: 'muted' },
      c.kind === 'guest' ? `domain ${c.domid} ring${c.attached ? ', client attached' : ', no client'}` : 'dom0 socket')),
    c.privileged ? null : el('div', { class: 'quotas' }, ...c.quotas.map(quotaBar)),
    c.watches.length ? el('ul', {}, ...c.watches.map((w) => el('li', {}, `watch ${w.path} token ${w.token}${w.depth === undefined ? '' : ` depth ${w.depth}`}`))) : null,
    c.transactions.length ? el('ul', {}, ...c.transactions.map((t) => el('li', { class: 'tx' }, `transaction ${t.id}: read ${t.read.join(', ') || '—'}; wrote ${t.written.join(', ') || '—'}`))) : null)));
}

function renderDomains(list) {
  state.domains = list;
  $('domains').replaceChildren(
    el('tr', {}, el('th', {}, 'domid'), el('th', {}, 'hypervisor'), el('th', {}, 'introduced'), el('th', {}, 'nodes owned')),
    ...list.map((d) => el('tr', {}, el('td', {}, String(d.domid)), el('td', { class: `state-${d.state ?? 'gone'}` }, d.state ?? 'destroyed'),
      el('td', {}, d.introduced ? 'yes' : 'no'), el('td', {}, String(d.nodes)))));
  const select = $('act-as');
  const wanted = ['0', ...list.filter((d) => d.introduced && d.domid !== 0).map((d) => String(d.domid))];
  const have = [...select.options].map((o) => o.value);
  if (wanted.join() !== have.join()) {
    select.replaceChildren(...wanted.map((id) => el('option', { value: id }, id === '0' ? 'dom0' : `domain ${id}`)));
    select.value = wanted.includes(String(state.as)) ? String(state.as) : '0';
    state.as = Number(select.value);
    renderTxState();
  }
}

let sideRequests = 0;
async function refreshSide() {
  // Answers can overtake each other: only the latest request's are shown.
  const mine = ++sideRequests;
  try {
    const [doms, conns] = await Promise.all([getJson('/api/domains'), tab === 'connections' ? getJson('/api/connections') : null]);
    if (mine !== sideRequests) return;
    renderDomains(doms);
    if (conns) renderConnections(conns);
  } catch {
    // The next change tries again (e.g. during a live update).
  }
}

for (const b of document.querySelectorAll('[data-domain]')) {
  b.addEventListener('click', async () => {
    const domid = Number($('dom-id').value);
    try {
      const out = await post('/api/domain', { op: b.dataset.domain, domid });
      showResult(out.ok ? `domain ${domid} ${b.dataset.domain}: ${out.value ?? 'OK'}` : `domain ${domid} ${b.dataset.domain}: ${out.error}`, out.ok);
    } catch (e) {
      showResult(e.message, false);
    }
  });
}

// --- the event stream -------------------------------------------------------

const events = [];
const LINE = /^(IN |OUT|EVT) conn(\d+) (\S+) (\S+)(.*)$/;

const REQUEST = / req (\d+) tx \d+ \((\S*)/;
const EVENT_PATH = / \((\S*)/;
/** conn:req -> the request's first argument, so a reply matches its request's path. */
const requestPaths = new Map();

function parseLine(text) {
  const m = LINE.exec(text);
  if (!m) return { text, dir: 'LOG', conn: '', type: 'LOG', rest: text, path: '' };
  const e = { text, dir: m[1].trim(), conn: m[2], time: m[3], type: m[4], rest: m[5], path: '' };
  const r = REQUEST.exec(e.rest);
  if (e.dir === 'IN' && r) {
    e.path = r[2];
    requestPaths.set(`${e.conn}:${r[1]}`, e.path);
    if (requestPaths.size > 10000) requestPaths.delete(requestPaths.keys().next().value);
  } else if (e.dir === 'OUT' && r) {
    e.path = requestPaths.get(`${e.conn}:${r[1]}`) ?? '';
  } else if (e.dir === 'EVT') {
    e.path = EVENT_PATH.exec(e.rest)?.[1] ?? '';
  }
  return e;
}

function eventMatches(e) {
  const conn = $('ev-conn').value.trim().replace(/^conn/, '');
  const type = $('ev-type').value;
  const path = $('ev-path').value.trim();
  return (!conn || e.conn === conn) && (!type || e.type === type) && (!path || e.path.includes(path) || e.rest.includes(path));
}

function eventRow(e) {
  const isError = e.type === 'ERROR';
  return el('div', { class: `ev ev-${e.dir}${isError ? ' ev-error' : ''}` },
    el('span', { class: 'dir' }, e.dir), el('span', { class: 'conn' }, e.conn ? `conn${e.conn}` : ''),
    el('span', { class: 'time' }, e.time ? e.time.slice(11, 23) : ''), el('span', { class: 'type' }, e.type), el('span', { class: 'rest' }, e.rest));
}

const knownTypes = new Set();
function noteType(type) {
  if (knownTypes.has(type)) return;
  knownTypes.add(type);
  $('ev-type').append(el('option', { value: type }, type));
}

function renderEvents() {
  const shown = events.filter(eventMatches).slice(-EVENTS_SHOWN);
  const box = $('events');
  box.replaceChildren(...shown.map(eventRow));
  if ($('ev-follow').checked) box.scrollTop = box.scrollHeight;
}

for (const id of ['ev-conn', 'ev-type', 'ev-path']) $(id).addEventListener('input', renderEvents);

let lastBacklogLine = '';
function addLines(lines, dropped) {
  // A reconnection sends the backlog again: skip what is already here.
  const start = lines.lastIndexOf(lastBacklogLine) + 1;
  for (const text of lines.slice(start)) {
    const e = parseLine(text);
    noteType(e.type);
    events.push(e);
  }
  if (dropped) events.push(parseLine(`… ${dropped} lines not shown (too many at once)`));
  if (lines.length) lastBacklogLine = lines[lines.length - 1];
  if (events.length > EVENTS_KEPT) events.splice(0, events.length - EVENTS_KEPT);
  renderEvents();
}

// --- live update, dump and streams --------------------------------------------

let update = null;

$('live-update').addEventListener('click', async () => {
  $('live-update').disabled = true;
  try {
    const before = await post('/api/live-update', {});
    update = { before, at: Date.now() };
    report(`Live update started: pid ${before.pid}, ${before.nodes} nodes, ${before.transactions} open transactions, state ${before.digest}. Waiting for the new image…`, 'pending');
  } catch (e) {
    report(`Live update could not start: ${e.message}`, 'bad');
    $('live-update').disabled = false;
  }
});

function report(text, kind) {
  const r = $('lu-report');
  r.hidden = false;
  r.className = kind;
  r.textContent = text;
}

async function finishUpdate() {
  if (!update) return;
  const after = await getJson('/api/state');
  const b = update.before;
  const same = after.digest === b.digest && after.nodes === b.nodes && after.transactions === b.transactions;
  const pause = ((Date.now() - update.at) / 1000).toFixed(2);
  const image = after.pid === b.pid ? 'same process' : 'new process (spawned successor: no re-exec addon)';
  report(`Live update done in ${pause} s (page paused meanwhile). Before: pid ${b.pid}, ${b.nodes} nodes, ${b.transactions} open transactions, state ${b.digest}. ` +
    `After: pid ${after.pid}, ${after.nodes} nodes, ${after.transactions} open transactions, state ${after.digest}. ${same ? `Same state ✓, ${image}` : `State differs ✗, ${image}`}`,
  same ? 'good' : 'bad');
  update = null;
  $('live-update').disabled = false;
}

$('dump').href = url('/api/dump').toString();

function renderStream(name, view) {
  const rows = view.records.map((r) => el('tr', {}, el('td', {}, `0x${r.offset.toString(16).padStart(6, '0')}`), el('td', {}, r.type), el('td', { class: 'fields' }, r.fields)));
  $('stream').replaceChildren(el('div', {},
    el('p', {}, el('strong', {}, name), ` — ${view.header || 'not a stream'}, ${view.records.length + view.more} records`),
    view.problem ? el('p', { class: 'bad' }, view.problem) : null,
    el('table', { class: 'records' }, ...rows),
    view.more ? el('p', { class: 'muted' }, `${view.more} more records not listed`) : null));
}

function showTab(name) {
  document.querySelector(`.tabs button[data-tab="${name}"]`).click();
}

$('stream-file').addEventListener('change', async () => {
  const file = $('stream-file').files[0];
  if (!file) return;
  showTab('stream');
  try {
    renderStream(file.name, await post('/api/stream', await file.arrayBuffer(), 'application/octet-stream'));
  } catch (e) {
    $('stream').replaceChildren(el('p', { class: 'bad' }, e.message));
  }
  $('stream-file').value = '';
});

async function listRundirFiles() {
  const files = await getJson('/api/files').catch(() => []);
  $('stream-rundir').replaceChildren(el('option', { value: '' }, 'a file in the run directory…'), ...files.map((f) => el('option', { value: f }, f)));
}

$('stream-rundir').addEventListener('change', async () => {
  const name = $('stream-rundir').value;
  if (!name) return;
  try {
    renderStream(name, await getJson('/api/stream', { file: name }));
  } catch (e) {
    $('stream').replaceChildren(el('p', { class: 'bad' }, e.message));
  }
});

// --- the push channel --------------------------------------------------------------

async function refreshAll() {
  await Promise.all([refreshTree(), refreshSide(), showNode(false)]);
}

function setStatus(text, kind) {
  $('status').textContent = text;
  $('status').className = `pill ${kind}`;
}

function connect() {
  const source = new EventSource(url('/api/events'));
  source.addEventListener('hello', (m) => {
    const hello = JSON.parse(m.data);
    setStatus('live', 'live');
    $('daemon-info').textContent = `pid ${hello.pid}`;
    refreshAll().then(finishUpdate);
  });
  source.addEventListener('lines', (m) => {
    const { lines, dropped } = JSON.parse(m.data);
    addLines(lines, dropped);
  });
  source.addEventListener('changed', () => {
    refreshTree();
    refreshSide();
    showNode(false);
  });
  source.addEventListener('live-update', (m) => {
    const note = JSON.parse(m.data);
    if (note.phase === 'failed') {
      report(`Live update failed: ${note.reason}`, 'bad');
      update = null;
      $('live-update').disabled = false;
    }
  });
  source.addEventListener('error', () => setStatus(update ? 'paused: live update' : 'reconnecting…', 'paused'));
}

renderTxState();
connect();
