// The benchmark's page side: each contender downloads the file once when
// bench/run.mjs calls `bench.run(name, url)`, and the result stays in
// `lastBlob` for `bench.digests()` to check. Every wait on the network or on
// storage is bounded by run.mjs's evaluate timeout, and `settle()` bounds
// the storage cleanup here, since a blocked IndexedDB deletion never settles.

import init, { Download } from '/pkg/resumable_fetch.js';

const wasm = await init();
const MiB = 1 << 20;
const BLOCK = 8 * MiB;
const LANES = 4;
const BLOCKS_DB = 'bench-js-blocks';
/** The object stores of blocks for `jsBlocks(url, { lanes: true })`. */
const LANE_STORES = Array.from({ length: LANES }, (_, i) => `blocks-${i}`);
const PIPE_FILE = 'bench-pipe.bin';

let lastBlob = null;

/** `promise`, or a rejection naming `what` after `ms`. */
function settle(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function committed(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

async function get(url, init = {}) {
  const response = await fetch(url, { cache: 'no-store', ...init });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}

// ---- the JS-only contenders ----------------------------------------------

/** Larger bodies than this fail `arrayBuffer()` in Chromium ("Failed to fetch"). */
const WHOLE_BUFFER_MAX = 1024 * MiB;

/** No persistence: the ceiling. Past WHOLE_BUFFER_MAX the body is read and dropped instead. */
async function ceiling(url, size) {
  const response = await get(url);
  if (size <= WHOLE_BUFFER_MAX) return { bytes: (await response.arrayBuffer()).byteLength };
  const reader = response.body.getReader();
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes };
    bytes += value.length;
  }
}

/** The usual persistent JS approach: the body piped into an OPFS writable. */
async function pipeOpfs(url) {
  const root = await navigator.storage.getDirectory();
  const handle = await root.getFileHandle(PIPE_FILE, { create: true });
  const writable = await handle.createWritable();
  await (await get(url)).body.pipeTo(writable);
  lastBlob = await handle.getFile();
  return { bytes: lastBlob.size };
}

function openBlocksDb() {
  const req = indexedDB.open(BLOCKS_DB, 1);
  req.onupgradeneeded = () => {
    for (const name of ['blocks', 'meta', ...LANE_STORES]) req.result.createObjectStore(name);
  };
  return request(req);
}

async function put(db, stores, fill) {
  const tx = db.transaction(stores, 'readwrite', { durability: 'relaxed' });
  fill(...stores.map((name) => tx.objectStore(name)));
  await committed(tx);
}

/**
 * The usual JS-only persistent approach in blocks: 8 MiB Range blocks over 4
 * connections, each stored as a Blob value in IndexedDB with the list of
 * blocks done, in one relaxed transaction. Like any resumable client it
 * learns the length from the first block's Content-Range.
 *
 * With `lanes`, what resumable-fetch does (src/web/idb.rs): block i goes to
 * object store `blocks-(i mod 4)` in a transaction of its own, and the list
 * of blocks done follows in another, so the connections' writes do not wait
 * for each other.
 */
async function jsBlocks(url, { lanes = false } = {}) {
  const db = await openBlocksDb();
  const done = [];
  const where = (index) => (lanes ? LANE_STORES[index % LANES] : 'blocks');
  const fetchBlock = async (index, total) => {
    const start = index * BLOCK;
    const end = Math.min(start + BLOCK, total ?? Infinity) - 1;
    const response = await get(url, { headers: { Range: `bytes=${start}-${end}` } });
    if (response.status !== 206) throw new Error(`block ${index}: HTTP ${response.status}, not 206`);
    const length = Number(/\/(\d+)$/.exec(response.headers.get('content-range') ?? '')?.[1]);
    const blob = await response.blob();
    const want = Math.min(start + BLOCK, length) - start;
    if (blob.size !== want) throw new Error(`block ${index}: ${blob.size} bytes, not ${want}`);
    if (lanes) {
      await put(db, [where(index)], (blocks) => blocks.put(blob, index));
      done.push(index);
      await put(db, ['meta'], (meta) => meta.put(done.slice(), 'done'));
    } else {
      done.push(index);
      await put(db, ['blocks', 'meta'], (blocks, meta) => {
        blocks.put(blob, index);
        meta.put(done.slice(), 'done');
      });
    }
    return length;
  };
  const total = await fetchBlock(0);
  const count = Math.ceil(total / BLOCK);
  let next = 1;
  const lane = async () => {
    while (next < count) await fetchBlock(next++, total);
  };
  await Promise.all(Array.from({ length: LANES }, lane));
  const tx = db.transaction(lanes ? LANE_STORES : ['blocks']);
  const blocks = await Promise.all(
    Array.from({ length: count }, (_, i) => request(tx.objectStore(where(i)).get(i))),
  );
  db.close();
  lastBlob = new Blob(blocks);
  return { bytes: lastBlob.size };
}

// ---- resumable-fetch ----------------------------------------------------------

async function resumableFetch(url, options) {
  const dl = await Download.open(url, options);
  const state = await dl.start();
  if (state !== 'complete') throw new Error(`start() resolved '${state}'`);
  lastBlob = await dl.blob();
  return { bytes: lastBlob.size, store: dl.store };
}

/** Options by contender name; `integrity` is filled in by run.mjs. */
const RF = {
  'rf-default': {},
  'rf-idb-c1': { store: 'indexeddb', connections: 1 },
  'rf-idb-c3': { store: 'indexeddb', connections: 3 },
  'rf-idb-integrity': { store: 'indexeddb', integrity: true },
  'rf-worker-c1': { worker: true, connections: 1 },
  'rf-worker-c4': { worker: true },
};

function rfOptions(name, integrity) {
  const options = { ...RF[name] };
  if (options.integrity) options.integrity = integrity;
  return options;
}

// ---- what run.mjs calls ---------------------------------------------------------

/** Deletes everything stored on this origin: downloads, OPFS files, databases. */
async function clean() {
  for (const d of await settle(Download.list(), 10_000, 'Download.list()')) {
    await settle(Download.remove(d.id), 10_000, 'Download.remove()');
  }
  const root = await navigator.storage.getDirectory();
  const names = [];
  for await (const name of root.keys()) names.push(name);
  for (const name of names) await root.removeEntry(name, { recursive: true });
  for (const { name } of await indexedDB.databases()) {
    await settle(request(indexedDB.deleteDatabase(name)), 10_000, `deleting database ${name}`);
  }
}

/** One download by contender `name` of the file of `size` bytes; times it from its first call to the stored result. */
async function run(name, url, size, integrity) {
  lastBlob = null;
  const started = performance.now();
  let result;
  if (name === 'ceiling') result = await ceiling(url, size);
  else if (name === 'js-pipe-opfs') result = await pipeOpfs(url);
  else if (name === 'js-idb-blocks') result = await jsBlocks(url);
  else if (name === 'js-idb-lanes') result = await jsBlocks(url, { lanes: true });
  else if (name in RF) result = await resumableFetch(url, rfOptions(name, integrity));
  else throw new Error(`no contender ${name}`);
  return { ms: performance.now() - started, ...result, wasmBytes: wasm.memory.buffer.byteLength };
}

/** SHA-256 of each `slice` bytes of the last result, hex: checked against the file by run.mjs. */
async function digests(slice) {
  if (!lastBlob) return null;
  const out = [];
  for (let at = 0; at < lastBlob.size; at += slice) {
    const bytes = await lastBlob.slice(at, Math.min(lastBlob.size, at + slice)).arrayBuffer();
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    out.push(Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''));
  }
  return out;
}

/** Starts the download to be interrupted by a reload; run.mjs polls `received()`. */
async function resumeBegin(name, url) {
  globalThis.dl = await Download.open(url, rfOptions(name));
  globalThis.running = globalThis.dl.start().catch((e) => e);
}

/** After the reload: from `Download.open` to the first progress beyond what was stored, then to the end. */
async function resumeMeasure(name, url) {
  const started = performance.now();
  const dl = await Download.open(url, rfOptions(name));
  const opened = performance.now();
  const stored = dl.received;
  let first = null;
  dl.onprogress = ({ received }) => {
    if (first === null && received > stored) first = performance.now();
  };
  const state = await dl.start();
  const ended = performance.now();
  if (state !== 'complete') throw new Error(`start() resolved '${state}'`);
  lastBlob = await dl.blob();
  return {
    stored,
    bytes: lastBlob.size,
    openMs: opened - started,
    firstByteMs: first === null ? null : first - started,
    ms: ended - started,
    wasmBytes: wasm.memory.buffer.byteLength,
  };
}

globalThis.bench = {
  WHOLE_BUFFER_MAX,
  clean,
  run,
  digests,
  resumeBegin,
  resumeMeasure,
  received: () => globalThis.dl?.received ?? 0,
  contenders: ['ceiling', 'js-pipe-opfs', 'js-idb-blocks', 'js-idb-lanes', ...Object.keys(RF)],
};
document.documentElement.dataset.ready = 'true';
