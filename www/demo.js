// The resumable-fetch demo page: one download at a time, driven by the form,
// plus the list of everything stored in this origin. Plain ES module, no build.
import init, { Download } from '/pkg/resumable_fetch.js';
// The form's settings, checked and remembered in localStorage by a small Rust
// module (www/settings, gloo-storage).
import initSettings, { Settings, loadSettings as storedSettings } from '/settings/demo_settings.js';

const MiB = 1024 * 1024;
const DEFAULT_URL = new URL('/slow/sample.bin', location.origin).href;
const LIST_REFRESH_MS = 1000;
const STORE_NAMES = { indexeddb: 'IndexedDB', opfs: 'OPFS, in a worker', memory: 'memory (lost on reload)' };

const $ = (id) => document.getElementById(id);
const ui = {
  form: $('settings'), url: $('url'), useSlow: $('use-slow'), useFast: $('use-fast'),
  connections: $('connections'), blockSize: $('block-size'), worker: $('worker'),
  start: $('start'), pause: $('pause'), resume: $('resume'), cancel: $('cancel'), save: $('save'),
  progress: $('progress'), status: $('status'), amount: $('amount'), rate: $('rate'),
  state: $('state'), store: $('store'), resumable: $('resumable'),
  notice: $('notice'), error: $('error'), errorCode: $('error-code'), errorMessage: $('error-message'),
  list: $('downloads'), empty: $('empty'), refresh: $('refresh'), template: $('entry-template'),
  usage: $('usage'),
};

// ---- state --------------------------------------------------------------

let ready = false;
/** The Download the controls act on: the URL field's (or a list entry's). */
let current = null;
/** What `current` was opened with, to reopen when the form changes. */
let currentKey = '';
/** The last progress event of `current` while it runs (counts bytes in flight). */
let live = null;
/** An action (open, pause, cancel, save…) is in progress: controls wait. */
let busy = 0;
/** A list entry chosen with its own id (kept until the URL is edited). */
let pinnedId = null;
let cancelling = false;
/** The stored downloads, from `Download.list()`. */
let entries = [];
let listSeq = 0;
let lastListAt = 0;
let listTimer = 0;
let openChain = Promise.resolve();

// ---- formatting -----------------------------------------------------------

function bytes(n) {
  if (n === undefined || n === null || !Number.isFinite(n)) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  const digits = i === 0 || n >= 100 ? 0 : 1;
  return `${n.toFixed(digits)} ${units[i]}`;
}

function duration(seconds) {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

function percent(received, total) {
  if (!total) return '';
  return `${((received / total) * 100).toFixed(1)} %`;
}

// ---- settings -------------------------------------------------------------

function loadSettings() {
  let saved;
  try {
    saved = storedSettings(DEFAULT_URL);
  } catch (e) {
    console.warn('resumable-fetch demo: settings not readable, using the defaults', e);
    return;
  }
  ui.url.value = saved.url;
  ui.connections.value = saved.connections;
  ui.blockSize.value = saved.blockSizeMiB;
  ui.worker.checked = saved.worker;
  saved.free();
}

/** The form's settings, checked (throws an INVALID_ARGUMENT error). */
function formSettings() {
  try {
    return new Settings(ui.url.value, Number(ui.connections.value), Number(ui.blockSize.value), ui.worker.checked);
  } catch (e) {
    throw invalid(e.message);
  }
}

/** Remembers the form when it is valid (private mode may refuse: then it is not remembered). */
function storeSettings() {
  let settings;
  try { settings = formSettings(); } catch { return; }
  settings.save();
  settings.free();
}

/** A DownloadError-like error for mistakes the page catches itself. */
function invalid(message) {
  const e = new Error(message);
  e.name = 'DownloadError';
  e.code = 'INVALID_ARGUMENT';
  return e;
}

function options() {
  const settings = formSettings();
  const opts = { connections: settings.connections, blockSize: settings.blockSizeMiB * MiB };
  if (settings.worker) opts.worker = true;
  settings.free();
  return opts;
}

/** The download the URL field names: its id is the URL without fragment. */
function fieldTarget() {
  const text = ui.url.value.trim();
  formSettings().free(); // checks the form: an empty field says so
  let url;
  try { url = new URL(text, location.href); } catch { throw invalid(`${JSON.stringify(text)} is not a valid URL.`); }
  const absolute = url.href;
  url.hash = '';
  return { id: pinnedId ?? url.href, url: absolute };
}

// ---- the current download -------------------------------------------------

/** Running, or holding while offline (the start() promise is still pending). */
function isRunning(dl = current) {
  return !!dl && (dl.state === 'running' || dl.state === 'offline');
}

/** Opens (or keeps) the Download for `target`; serialized, so opens never race. */
function select(target) {
  const run = openChain.then(() => doSelect(target));
  openChain = run.catch(() => {});
  return run;
}

async function doSelect(target) {
  const opts = options();
  const key = JSON.stringify([target.id, target.url, opts.connections, opts.blockSize, !!opts.worker]);
  if (current && current.id === target.id && (isRunning() || key === currentKey)) return current;
  if (isRunning()) {
    const e = new Error('Another download is running here; pause it first.');
    e.name = 'DownloadError';
    e.code = 'INVALID_STATE';
    throw e;
  }
  const dl = await Download.open(target.url, { id: target.id, ...opts });
  const old = current;
  current = dl;
  currentKey = key;
  live = null;
  if (old && old !== dl) {
    old.onprogress = null;
    old.onrestart = null;
    try { old.free(); } catch { /* already freed */ }
  }
  dl.onprogress = (progress) => {
    if (dl !== current) return;
    live = progress;
    renderStatus();
    renderControls();
    scheduleListRefresh();
  };
  dl.onrestart = ({ reason, message }) => {
    if (dl !== current) return;
    live = null; // the stored bytes are gone; the next progress event counts from 0
    showNotice(`Started over (${reason}): ${message}`, 'restart');
    render();
    refreshList();
  };
  render();
  return dl;
}

/** Opens the URL field's download (no request is made) to show its state. */
async function selectField() {
  if (!ready || isRunning()) return;
  let target;
  try {
    target = fieldTarget();
    options();
  } catch (e) {
    render();
    return;
  }
  try {
    const dl = await select(target);
    if (dl.state === 'paused' && dl.received > 0) {
      showNotice(`${bytes(dl.received)} of this file ${dl.total ? `(${bytes(dl.total)}) ` : ''}is already stored. Resume continues from there.`, 'stored');
    } else if (noticeKind() === 'stored') {
      hideNotice();
    }
  } catch (e) {
    showError(e);
  }
  render();
}

/** Start and Resume: open (resuming whatever is stored) and run until done. */
async function go(target) {
  clearError();
  let dl;
  busy += 1;
  render();
  try {
    dl = await select(target);
  } catch (e) {
    showError(e);
    return;
  } finally {
    busy -= 1;
    render();
  }
  if (isRunning(dl)) return;
  hideNotice();
  live = null;
  const run = dl.start();
  render();
  refreshList();
  try {
    await run;
  } catch (e) {
    if (!(cancelling && e && e.code === 'ABORTED')) showError(e);
  }
  if (dl === current) live = null;
  render();
  refreshList();
}

/** Runs a short action with the controls held. */
async function act(fn) {
  clearError();
  busy += 1;
  render();
  try {
    await fn();
  } catch (e) {
    showError(e);
  } finally {
    busy -= 1;
    render();
    refreshList();
  }
}

async function pause() {
  if (!current) return;
  await act(() => current.pause());
}

async function cancel() {
  if (!current) return;
  const dl = current;
  await act(async () => {
    cancelling = true;
    try {
      await dl.cancel();
    } finally {
      cancelling = false;
    }
    if (dl === current) live = null;
    showNotice('Cancelled: everything stored for this download was deleted.', 'cancel');
  });
}

async function save(target) {
  await act(async () => {
    const dl = target ? await select(target) : current;
    if (!dl) return;
    await dl.save();
  });
}

async function removeEntry(entry) {
  await act(async () => {
    if (current && current.id === entry.id) {
      await current.cancel(); // also forgets the bytes the open Download counted
      live = null;
    } else {
      await Download.remove(entry.id);
    }
  });
}

// ---- messages ---------------------------------------------------------------

function showError(e) {
  const code = (e && typeof e.code === 'string' && e.code) || (e && e.name) || 'ERROR';
  const message = (e && e.message) || String(e);
  ui.errorCode.textContent = code;
  ui.errorMessage.textContent = message;
  ui.error.dataset.code = code;
  ui.error.hidden = false;
  console.error('resumable-fetch demo:', e);
}

function clearError() {
  ui.error.hidden = true;
  delete ui.error.dataset.code;
  ui.errorCode.textContent = '';
  ui.errorMessage.textContent = '';
}

function showNotice(text, kind) {
  ui.notice.textContent = text;
  ui.notice.dataset.kind = kind;
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
  delete ui.notice.dataset.kind;
}

function noticeKind() {
  return ui.notice.hidden ? '' : ui.notice.dataset.kind || '';
}

// ---- rendering ----------------------------------------------------------------

function snapshot() {
  if (!current) return { id: '', state: 'idle', received: 0, stored: 0, total: undefined, store: '', resumable: undefined };
  const state = current.state;
  const stored = current.received;
  const total = current.total ?? live?.total;
  const received = isRunning() && live ? Math.max(live.received, stored) : stored;
  return { id: current.id, state, received, stored, total, store: current.store, resumable: current.resumable };
}

function renderStatus() {
  const s = snapshot();
  const running = s.state === 'running' || s.state === 'offline';
  if (s.total) {
    ui.progress.max = s.total;
    ui.progress.value = Math.min(s.received, s.total);
  } else if (running) {
    ui.progress.removeAttribute('value'); // indeterminate until the length is known
  } else {
    ui.progress.max = 1;
    ui.progress.value = s.state === 'complete' ? 1 : 0;
  }
  const of = s.total !== undefined ? ` of ${bytes(s.total)}` : '';
  const pct = s.total ? ` · ${percent(s.received, s.total)}` : '';
  ui.amount.textContent = !current
    ? '—'
    : s.state === 'idle' && s.received === 0
      ? 'Not started'
      : `${bytes(s.received)}${of}${pct}`;
  if (s.state === 'offline') {
    ui.rate.textContent = 'offline: waiting for the network';
  } else if (running && live) {
    const eta = duration(live.etaSeconds);
    ui.rate.textContent = `${bytes(live.bytesPerSecond)}/s${eta ? ` · ${eta} left` : ''}`;
  } else if (running) {
    ui.rate.textContent = 'connecting…';
  } else {
    ui.rate.textContent = '';
  }
  ui.status.dataset.state = s.state;
  ui.status.dataset.received = String(s.received);
  ui.status.dataset.stored = String(s.stored);
  ui.status.dataset.total = s.total === undefined ? '' : String(s.total);
  ui.status.dataset.id = s.id;
  ui.status.dataset.store = s.store;
  ui.status.dataset.resumable = s.resumable === undefined ? '' : String(s.resumable);
  ui.state.textContent = current ? s.state : '—';
  ui.state.dataset.state = s.state;
  ui.store.textContent = STORE_NAMES[s.store] ?? (s.store || '—');
  ui.resumable.textContent = s.resumable === undefined ? 'not known yet' : s.resumable ? 'yes' : 'no (ignores Range)';
}

function renderControls() {
  const s = snapshot();
  const running = s.state === 'running' || s.state === 'offline';
  const idle = busy > 0 || !ready;
  const failedEmpty = s.state === 'failed' && s.stored === 0;
  ui.start.disabled = idle || running || !(current === null || s.state === 'idle' || failedEmpty);
  ui.pause.disabled = idle || !running;
  ui.resume.disabled = idle || running || !(s.state === 'paused' || (s.state === 'failed' && s.stored > 0));
  ui.cancel.disabled = idle || !(running || s.state === 'paused' || (s.state === 'failed' && s.stored > 0));
  ui.save.disabled = idle || s.state !== 'complete';
  for (const input of [ui.url, ui.connections, ui.blockSize, ui.worker, ui.useSlow, ui.useFast]) {
    input.disabled = running || !ready;
  }
}

let listSignature = '';

function renderList() {
  const running = isRunning();
  // Rebuilt only when something shown changed, so a click is never lost.
  const signature = JSON.stringify([
    entries, running, busy > 0, current?.id, running ? current.received : 0,
  ]);
  if (signature === listSignature) return;
  listSignature = signature;
  ui.list.replaceChildren();
  ui.empty.hidden = entries.length > 0;
  for (const entry of entries) {
    const li = ui.template.content.firstElementChild.cloneNode(true);
    const mine = current && current.id === entry.id;
    const active = mine && running;
    // The running download's own count is fresher than the last list.
    const received = active ? current.received : entry.received;
    const total = entry.total ?? (mine ? current.total : undefined);
    li.dataset.id = entry.id;
    li.dataset.url = entry.url;
    li.dataset.received = String(received);
    li.dataset.total = total === undefined ? '' : String(total);
    li.dataset.state = entry.state;
    li.dataset.store = entry.store;
    if (active) li.dataset.running = 'true';
    li.querySelector('.entry-name').textContent = entry.filename || entry.url;
    const url = li.querySelector('.entry-url');
    url.textContent = entry.url;
    url.title = entry.id === entry.url ? entry.url : `${entry.url} (id ${entry.id})`;
    const bar = li.querySelector('.entry-progress');
    bar.max = total || 1;
    bar.value = total ? Math.min(received, total) : entry.state === 'complete' ? 1 : 0;
    const when = new Date(entry.updatedAt).toLocaleString();
    const label = active ? 'downloading' : entry.state;
    li.querySelector('.entry-meta').textContent =
      `${bytes(received)} of ${bytes(total)} stored${total ? ` (${percent(received, total)})` : ''} · ${label} · ${STORE_NAMES[entry.store] ?? entry.store} · ${when}`;
    const resume = li.querySelector('.entry-resume');
    const saveButton = li.querySelector('.entry-save');
    const del = li.querySelector('.entry-delete');
    resume.hidden = entry.state !== 'partial' || active;
    resume.disabled = busy > 0 || running;
    saveButton.hidden = entry.state !== 'complete';
    saveButton.disabled = busy > 0 || running;
    del.disabled = busy > 0 || active;
    resume.addEventListener('click', () => go(chooseEntry(entry)));
    saveButton.addEventListener('click', () => save(chooseEntry(entry)));
    del.addEventListener('click', () => removeEntry(entry));
    ui.list.append(li);
  }
}

/** A list entry becomes the form's download (its id is kept as it is), run where its bytes are. */
function chooseEntry(entry) {
  clearTimeout(fieldTimer);
  pinnedId = entry.id;
  ui.url.value = entry.url;
  ui.worker.checked = entry.store === 'opfs';
  storeSettings();
  return { id: entry.id, url: entry.url };
}

function render() {
  renderStatus();
  renderControls();
  renderList();
}

async function refreshList() {
  const seq = ++listSeq;
  lastListAt = Date.now();
  try {
    const found = await Download.list();
    if (seq !== listSeq) return;
    entries = found.sort((a, b) => b.updatedAt - a.updatedAt);
  } catch (e) {
    if (seq === listSeq) showError(e);
  }
  if (seq === listSeq) renderList();
  await renderUsage();
}

/** The origin's storage use and quota, as the browser estimates them. */
async function renderUsage() {
  const storage = navigator.storage;
  if (!storage || !storage.estimate) {
    ui.usage.textContent = 'This browser does not report its storage use.';
    return;
  }
  try {
    const [{ usage, quota }, persisted] = await Promise.all([
      storage.estimate(),
      storage.persisted ? storage.persisted() : false,
    ]);
    ui.usage.dataset.usage = String(usage);
    ui.usage.dataset.quota = String(quota);
    ui.usage.textContent = `Storage: ${bytes(usage)} used of ${bytes(quota)} available to this site` +
      (persisted ? ' · persistent' : ' · may be evicted under storage pressure');
  } catch (e) {
    ui.usage.textContent = `Storage use unknown: ${e.message}`;
  }
}

/** While a download runs, the list follows what is stored, once a second. */
function scheduleListRefresh() {
  if (listTimer) return;
  const wait = Math.max(0, LIST_REFRESH_MS - (Date.now() - lastListAt));
  listTimer = setTimeout(() => {
    listTimer = 0;
    refreshList();
  }, wait);
}

// ---- wiring ---------------------------------------------------------------------

let fieldTimer = 0;
function fieldChanged({ url = false, debounce = 0 } = {}) {
  if (url) pinnedId = null;
  storeSettings();
  clearTimeout(fieldTimer);
  fieldTimer = setTimeout(selectField, debounce);
}

function usePreset(path) {
  ui.url.value = new URL(path, location.origin).href;
  fieldChanged({ url: true });
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!ui.start.disabled) ui.start.click();
  else if (!ui.resume.disabled) ui.resume.click();
});
ui.url.addEventListener('input', () => fieldChanged({ url: true, debounce: 400 }));
ui.url.addEventListener('change', () => fieldChanged({ url: true }));
for (const input of [ui.connections, ui.blockSize]) {
  input.addEventListener('input', () => storeSettings());
}
ui.worker.addEventListener('change', () => fieldChanged());
ui.useSlow.addEventListener('click', () => usePreset('/slow/sample.bin'));
ui.useFast.addEventListener('click', () => usePreset('/files/sample.bin'));

function startField() {
  let target;
  try {
    storeSettings();
    target = fieldTarget();
  } catch (e) {
    showError(e);
    return;
  }
  go(target);
}
ui.start.addEventListener('click', startField);
// Resume continues the URL field's download (or the list entry last resumed,
// which set the field): opening it picks up exactly what is stored.
ui.resume.addEventListener('click', startField);
ui.pause.addEventListener('click', pause);
ui.cancel.addEventListener('click', cancel);
ui.save.addEventListener('click', () => save());
ui.refresh.addEventListener('click', refreshList);
window.addEventListener('focus', () => { if (ready) refreshList(); });

// Read-only state for tests and the console.
Object.defineProperty(window, 'demo', {
  value: Object.freeze({
    get ready() { return ready; },
    get state() { return snapshot().state; },
    get received() { return snapshot().received; },
    get stored() { return snapshot().stored; },
    get total() { return snapshot().total; },
    get id() { return snapshot().id; },
    get store() { return snapshot().store; },
    get entries() { return entries.map((e) => ({ ...e })); },
  }),
  writable: false,
  configurable: false,
});

async function main() {
  render();
  try {
    await Promise.all([init(), initSettings()]);
    loadSettings();
  } catch (e) {
    showError(e);
    return;
  }
  ready = true;
  await Promise.all([selectField(), refreshList()]);
  render();
  document.documentElement.dataset.ready = 'true';
}

main();
